//! Transient balancer faults are retried, lasting ones reported. A [`Retrying`] client wraps
//! any [`Balancer`]: a call that fails as [`ErrorKind::Unreachable`] (nothing answered) or
//! [`ErrorKind::Unavailable`] (HTTP 429, 502, 503, 504: the balancer or the proxy before it
//! cannot serve now) is tried again with exponential backoff and jitter (the `backon` crate),
//! at most [`Policy::attempts`] times in all. Wrong secrets, refusals and answers that cannot
//! be read are never retried: they will not go away.
//!
//! The calls are made safe to repeat: `list`, `update` (brings a server to the desired
//! values) and `set_state` are idempotent; `add` is not (a request that timed out may have
//! added the server), so before each further attempt the wrapper lists the servers and, if
//! the node is there already, returns it instead of adding it twice.
//!
//! Every retry is told to the [`Notify`] callback (`rollout -v` prints it).

use super::{Balancer, BalancerError, Desired, ErrorKind, Result, Server, State, find};
use crate::connection::BoxFuture;
use backon::{ExponentialBuilder, Retryable};
use std::sync::Arc;
use std::time::Duration;

/// Told of each retry: the call, its error and the wait before the next attempt, in words.
pub type Notify = Arc<dyn Fn(String) + Send + Sync>;

/// How often and how patiently transient faults are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: usize,
    /// The wait before the second attempt; each later wait doubles, up to `max_delay`.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for Policy {
    /// 4 attempts, waiting about 0.5 s, 1 s and 2 s (with jitter) in between: a balancer
    /// restart or a proxy's brief 502 is ridden out within about 4 s plus the requests'
    /// own timeouts; a balancer that is really down is reported soon after.
    fn default() -> Self {
        Policy {
            attempts: 4,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl Policy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1))
            .with_jitter()
    }
}

/// Whether `e` may go away by itself.
pub fn is_transient(e: &BalancerError) -> bool {
    matches!(e.kind, ErrorKind::Unreachable | ErrorKind::Unavailable)
}

/// A [`Balancer`] that retries transient faults of `inner`; see the module.
pub struct Retrying {
    inner: Arc<dyn Balancer>,
    policy: Policy,
    notify: Notify,
}

impl Retrying {
    /// Wraps `inner`; `notify` hears of each retry.
    pub fn new(inner: Arc<dyn Balancer>, policy: Policy, notify: Notify) -> Retrying {
        Retrying {
            inner,
            policy,
            notify,
        }
    }

    fn note(&self, call: &str, e: &BalancerError, wait: Duration) {
        (self.notify)(format!(
            "{call}: {e}; retrying in {:.1} s",
            wait.as_secs_f64()
        ));
    }

    async fn again<T, F, Fut>(&self, call: &str, f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        f.retry(self.policy.backoff())
            .sleep(tokio::time::sleep)
            .when(is_transient)
            .notify(|e, wait| self.note(call, e, wait))
            .await
    }

    /// `add`, made safe to repeat: before every attempt but the first, a server that an
    /// earlier attempt added (found by URL) is returned instead.
    async fn add_once(&self, d: &Desired) -> Result<Server> {
        let attempted = std::sync::atomic::AtomicBool::new(false);
        self.again("adding the server", || async {
            if attempted.swap(true, std::sync::atomic::Ordering::SeqCst)
                && let Some(s) = find(&self.inner.list().await?, &d.url)
            {
                return Ok(s.clone());
            }
            self.inner.add(d).await
        })
        .await
    }
}

impl Balancer for Retrying {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<Server>>> {
        Box::pin(self.again("listing the servers", || self.inner.list()))
    }
    fn add<'a>(&'a self, d: &'a Desired) -> BoxFuture<'a, Result<Server>> {
        Box::pin(self.add_once(d))
    }
    fn update<'a>(&'a self, s: &'a Server, d: &'a Desired) -> BoxFuture<'a, Result<Server>> {
        Box::pin(self.again("updating the server", || self.inner.update(s, d)))
    }
    fn set_state<'a>(&'a self, s: &'a Server, to: State) -> BoxFuture<'a, Result<Server>> {
        Box::pin(self.again("changing the server's state", move || {
            self.inner.set_state(s, to)
        }))
    }
    fn routable<'a>(&'a self, s: &'a Server) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.again("waiting until the server is routable", move || {
            self.inner.routable(s)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A balancer whose calls fail with the queued errors first, then succeed; `add` may
    /// "succeed on the balancer" while its answer is lost.
    #[derive(Default)]
    struct Flaky {
        failures: Mutex<Vec<ErrorKind>>,
        servers: Mutex<Vec<Server>>,
        calls: Mutex<Vec<&'static str>>,
        add_lost_answer: bool,
    }

    fn server(url: &str) -> Server {
        Server::new("id1", url, State::Disabled)
    }

    impl Flaky {
        fn fail(&self, call: &'static str) -> Result<()> {
            self.calls.lock().unwrap().push(call);
            match self.failures.lock().unwrap().pop() {
                Some(kind) => Err(BalancerError::new(kind, format!("{call} failed"))),
                None => Ok(()),
            }
        }
    }

    impl Balancer for Flaky {
        fn describe(&self) -> String {
            "flaky".into()
        }
        fn list(&self) -> BoxFuture<'_, Result<Vec<Server>>> {
            Box::pin(async move {
                self.fail("list")?;
                Ok(self.servers.lock().unwrap().clone())
            })
        }
        fn add<'a>(&'a self, d: &'a Desired) -> BoxFuture<'a, Result<Server>> {
            Box::pin(async move {
                let s = server(&d.url);
                if self.add_lost_answer && self.servers.lock().unwrap().is_empty() {
                    self.calls.lock().unwrap().push("add");
                    self.servers.lock().unwrap().push(s);
                    return Err(BalancerError::new(ErrorKind::Unreachable, "timed out"));
                }
                self.fail("add")?;
                self.servers.lock().unwrap().push(s.clone());
                Ok(s)
            })
        }
        fn update<'a>(&'a self, s: &'a Server, _d: &'a Desired) -> BoxFuture<'a, Result<Server>> {
            Box::pin(async move {
                self.fail("update")?;
                Ok(s.clone())
            })
        }
        fn set_state<'a>(&'a self, s: &'a Server, _to: State) -> BoxFuture<'a, Result<Server>> {
            Box::pin(async move {
                self.fail("set_state")?;
                Ok(s.clone())
            })
        }
    }

    fn quick() -> Policy {
        Policy {
            attempts: 4,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    fn wrap(flaky: Arc<Flaky>) -> (Retrying, Arc<Mutex<Vec<String>>>) {
        let notes = Arc::new(Mutex::new(Vec::new()));
        let n = notes.clone();
        let notify: Notify = Arc::new(move |s| n.lock().unwrap().push(s));
        (Retrying::new(flaky, quick(), notify), notes)
    }

    fn desired() -> Desired {
        Desired {
            url: "https://bbb1.example.org/bigbluebutton/api".into(),
            secret: "s".into(),
            load_multiplier: 1.0,
            tag: String::new(),
        }
    }

    #[tokio::test]
    async fn transient_faults_are_retried_within_the_bound() {
        use ErrorKind::*;
        // (errors before success, listed last-first) -> succeeds, calls made
        let rows: &[(&[ErrorKind], bool, usize)] = &[
            (&[], true, 1),
            (&[Unavailable], true, 2),
            (&[Unreachable, Unavailable, Unreachable], true, 4),
            (&[Unavailable; 4], false, 4), // the bound: 4 attempts in all
            (&[Auth], false, 1),           // a wrong secret does not go away
            (&[Refused], false, 1),
            (&[Malformed], false, 1),
            (&[Auth, Unavailable], false, 2),
        ];
        for (errors, ok, calls) in rows {
            let flaky = Arc::new(Flaky::default());
            *flaky.failures.lock().unwrap() = errors.to_vec();
            let (r, notes) = wrap(flaky.clone());
            let got = r.list().await;
            assert_eq!(got.is_ok(), *ok, "{errors:?}: {got:?}");
            assert_eq!(flaky.calls.lock().unwrap().len(), *calls, "{errors:?}");
            assert_eq!(notes.lock().unwrap().len(), calls - 1, "{errors:?}");
        }
    }

    #[tokio::test]
    async fn each_idempotent_call_is_retried_and_told() {
        let flaky = Arc::new(Flaky::default());
        let (r, notes) = wrap(flaky.clone());
        let s = server("u");
        *flaky.failures.lock().unwrap() = vec![ErrorKind::Unavailable];
        r.update(&s, &desired()).await.unwrap();
        *flaky.failures.lock().unwrap() = vec![ErrorKind::Unreachable];
        r.set_state(&s, State::Enabled).await.unwrap();
        let notes = notes.lock().unwrap();
        assert_eq!(notes.len(), 2);
        assert!(
            notes[0].starts_with("updating the server: update failed; retrying in"),
            "{notes:?}"
        );
        assert!(notes[1].starts_with("changing the server's state: set_state failed"));
    }

    #[tokio::test]
    async fn an_add_whose_answer_was_lost_is_not_repeated() {
        let flaky = Arc::new(Flaky {
            add_lost_answer: true,
            ..Flaky::default()
        });
        let (r, _) = wrap(flaky.clone());
        let got = r.add(&desired()).await.unwrap();
        assert_eq!(got.url, desired().url);
        assert_eq!(flaky.servers.lock().unwrap().len(), 1, "added once");
        assert_eq!(*flaky.calls.lock().unwrap(), vec!["add", "list"]);
    }

    #[tokio::test]
    async fn an_add_that_did_not_happen_is_tried_again() {
        let flaky = Arc::new(Flaky::default());
        *flaky.failures.lock().unwrap() = vec![ErrorKind::Unavailable];
        let (r, _) = wrap(flaky.clone());
        r.add(&desired()).await.unwrap();
        assert_eq!(flaky.servers.lock().unwrap().len(), 1);
        assert_eq!(*flaky.calls.lock().unwrap(), vec!["add", "list", "add"]);
    }
}
