//! A recording fake: every script a host receives is recorded, and the answer is computed by
//! a closure from the script (the test's model of remote state). Executor tests use it to
//! assert round trips and exact scripts without SSH.

use super::{BoxFuture, ConnError, Connection, Connector, Finished};
use crate::inventory::Host;
use std::sync::{Arc, Mutex};

/// `(host, script) -> Ok(stdout)` or an error.
pub type Responder = dyn Fn(&str, &str) -> Result<String, ConnError> + Send + Sync;

/// A [`Connector`] whose hosts answer from a [`Responder`]. Clones share one log. Every
/// script exits with code 0 and empty stderr; the responder's error is the run's error.
#[derive(Clone)]
pub struct FakeConnector {
    /// Every script run, as `(host name, script)`, in order.
    pub log: Arc<Mutex<Vec<(String, String)>>>,
    /// Host names whose connect fails as unreachable (an SSH "Connection refused").
    pub unreachable: Vec<String>,
    respond: Arc<Responder>,
}

impl FakeConnector {
    /// A fake answering every script with `respond(host name, script)`; no host unreachable.
    pub fn new(
        respond: impl Fn(&str, &str) -> Result<String, ConnError> + Send + Sync + 'static,
    ) -> Self {
        FakeConnector {
            log: Arc::default(),
            unreachable: vec![],
            respond: Arc::new(respond),
        }
    }

    /// Scripts sent to `host`, in order.
    pub fn scripts(&self, host: &str) -> Vec<String> {
        self.log
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(h, _)| h == host)
            .map(|(_, s)| s.clone())
            .collect()
    }
}

impl Connector for FakeConnector {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Box<dyn Connection>, ConnError>> {
        Box::pin(async move {
            if self.unreachable.contains(&host.name) {
                return Err(ConnError::Unreachable(
                    "ssh: connect to host: Connection refused".into(),
                ));
            }
            Ok(Box::new(FakeConnection {
                host: host.name.clone(),
                fake: self.clone(),
            }) as Box<dyn Connection>)
        })
    }
}

struct FakeConnection {
    host: String,
    fake: FakeConnector,
}

impl Connection for FakeConnection {
    fn run<'a>(
        &'a self,
        script: &'a str,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Finished, ConnError>> {
        Box::pin(async move {
            self.fake
                .log
                .lock()
                .expect("not poisoned")
                .push((self.host.clone(), script.to_string()));
            let out = (self.fake.respond)(&self.host, script)?;
            for l in out.lines() {
                on_line(l);
            }
            Ok(Finished {
                code: Some(0),
                stdout: out,
                stderr: String::new(),
            })
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}
