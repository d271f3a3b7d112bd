//! Scalelite's server-management API (`/scalelite/api`, Scalelite 1.6 and later):
//! `getServers`, `addServer`, `updateServer` (state enable/cordon/disable, secret, load
//! multiplier, tag). Every request carries `checksum = hex(SHA-256(action + query string +
//! LOADBALANCER_SECRET))`; parameters go in a JSON body, which the checksum does not cover.
//! Scalelite answers checksum and routing errors as BBB-style XML with HTTP 200, and
//! everything else as JSON with a status code.
//!
//! Upstream: Scalelite's `app/controllers/api/servers_controller.rb` (actions, parameters,
//! the server JSON, `404 {"error": "No servers are configured"}` for an empty pool) and
//! `verify_checksum` with `use_loadbalancer_secret` in its API helper.

use super::{BalancerError, Desired, ErrorKind, Result, Server, State, SyncBalancer};
use crate::http::{Http, HttpError, Reply};
use crate::script::sha256_hex;
use serde_json::{Value, json};

/// A client of one Scalelite's server API. Calls block (see [`super::Blocking`]).
pub struct Scalelite {
    base: String,
    secret: String,
    http: Http,
}

impl Scalelite {
    /// `base` is the `/scalelite/api` URL, `secret` Scalelite's `LOADBALANCER_SECRET`; no
    /// request is made yet.
    pub fn new(base: &str, secret: &str, http: Http) -> Scalelite {
        Scalelite {
            base: base.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            http,
        }
    }

    fn err(&self, kind: ErrorKind, msg: String) -> BalancerError {
        BalancerError::new(kind, format!("Scalelite at {}: {msg}", self.base))
    }

    fn call(&self, action: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let checksum = sha256_hex(format!("{action}{}", self.secret).as_bytes());
        let url = format!("{}/{action}?checksum={checksum}", self.base);
        let reply = match &body {
            None => self.http.get(&url, &[]),
            Some(b) => self.http.send_json("POST", &url, &[], b),
        }
        .map_err(|e| match e {
            HttpError::NothingListens(m) | HttpError::Unreachable(m) => {
                self.err(ErrorKind::Unreachable, format!("unreachable: {m}"))
            }
            HttpError::Broken(m) => self.err(ErrorKind::Malformed, format!("{action}: {m}")),
            HttpError::Refused(m) => self.err(ErrorKind::Refused, format!("{action}: {m}")),
        })?;
        if reply.is_unavailable() {
            return Err(self.err(
                ErrorKind::Unavailable,
                format!("{action}: HTTP {} with {}", reply.status, reply.excerpt()),
            ));
        }
        self.read(action, &reply)
    }

    fn read(&self, action: &str, reply: &Reply) -> Result<(u16, Value)> {
        let body = reply.body.trim_start();
        if body.starts_with('<') {
            // Scalelite's own errors (checksum, unknown route) are XML with HTTP 200.
            let (key, message) = xml_error(body);
            return Err(match key.as_str() {
                "checksumError" => self.err(
                    ErrorKind::Auth,
                    format!("{action} was refused: checksumError ({message}); is `balancer.secret` Scalelite's LOADBALANCER_SECRET?"),
                ),
                "unsupportedRequest" => self.err(
                    ErrorKind::Malformed,
                    format!("{action} is not supported there ({message}); is `balancer.url` the /scalelite/api base of Scalelite 1.6 or later?"),
                ),
                "" => self.err(ErrorKind::Malformed, format!("{action}: HTTP {} with {} instead of JSON", reply.status, reply.excerpt())),
                _ => self.err(ErrorKind::Refused, format!("{action} was refused: {key}: {message}")),
            });
        }
        let value: Value = serde_json::from_str(body).map_err(|_| {
            self.err(
                ErrorKind::Malformed,
                format!(
                    "{action}: HTTP {} with {} instead of JSON",
                    reply.status,
                    reply.excerpt()
                ),
            )
        })?;
        Ok((reply.status, value))
    }

    fn server_reply(&self, action: &str, status: u16, v: &Value) -> Result<Server> {
        if !(200..300).contains(&status) {
            return Err(self.refused(action, status, v));
        }
        parse_server(v).map_err(|m| {
            self.err(
                ErrorKind::Malformed,
                format!("{action} answered a server {m}"),
            )
        })
    }

    fn refused(&self, action: &str, status: u16, v: &Value) -> BalancerError {
        let why = v
            .get("error")
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        self.err(
            ErrorKind::Refused,
            format!("{action} was refused (HTTP {status}): {why}"),
        )
    }
}

impl SyncBalancer for Scalelite {
    fn describe(&self) -> String {
        format!("Scalelite at {}", self.base)
    }

    fn list(&self) -> Result<Vec<Server>> {
        let (status, v) = self.call("getServers", None)?;
        if status == 404
            && v.get("error").and_then(Value::as_str) == Some("No servers are configured")
        {
            return Ok(vec![]);
        }
        if status != 200 {
            return Err(self.refused("getServers", status, &v));
        }
        let Value::Array(items) = v else {
            return Err(self.err(
                ErrorKind::Malformed,
                "getServers answered JSON that is not a list of servers".into(),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, s)| {
                parse_server(s).map_err(|m| {
                    self.err(
                        ErrorKind::Malformed,
                        format!("getServers: server {} {m}", i + 1),
                    )
                })
            })
            .collect()
    }

    /// With `SERVER_ID_IS_HOSTNAME=true` (what the roles deploy) Scalelite makes a new
    /// server's id its URL's host name and refuses, with a bare HTTP 500, a URL whose host
    /// already names a server; so a server holding that id for another URL is named here,
    /// before anything is sent.
    fn add(&self, d: &Desired) -> Result<Server> {
        if let Some(id) = hostname_id(&d.url)
            && let Some(other) = self
                .list()?
                .into_iter()
                .find(|s| s.id == id && !super::same_url(&s.url, &d.url))
        {
            return Err(self.err(
                ErrorKind::Refused,
                format!(
                    "cannot add {}: Scalelite already has a server with id `{id}`, this URL's host name (SERVER_ID_IS_HOSTNAME=true), at {}; remove that server or give this node its own host name",
                    printable(&d.url),
                    printable(&other.url)
                ),
            ));
        }
        let body = json!({"server": {"url": d.url, "secret": d.secret, "load_multiplier": d.load_multiplier, "tag": d.tag}});
        let (status, v) = self.call("addServer", Some(body))?;
        self.server_reply("addServer", status, &v)
    }

    fn update(&self, s: &Server, d: &Desired) -> Result<Server> {
        let body = json!({"id": s.id, "server": {"secret": d.secret, "load_multiplier": d.load_multiplier, "tag": d.tag}});
        let (status, v) = self.call("updateServer", Some(body))?;
        self.server_reply("updateServer", status, &v)
    }

    fn set_state(&self, s: &Server, to: State) -> Result<Server> {
        if to == State::Disabled && s.load.is_some_and(|l| l > 0.0) {
            return Err(self.err(
                ErrorKind::Refused,
                format!("refusing to disable server {} while it carries load; cordon it and wait for its meetings to end", s.id),
            ));
        }
        let state = match to {
            State::Enabled => "enable",
            State::Cordoned => "cordon",
            State::Disabled => "disable",
        };
        let (status, v) = self.call(
            "updateServer",
            Some(json!({"id": s.id, "server": {"state": state}})),
        )?;
        self.server_reply("updateServer", status, &v)
    }
}

/// The id Scalelite gives a server added for `url` with `SERVER_ID_IS_HOSTNAME=true`:
/// `URI.parse(url).host.downcase(:ascii)` (app/models/server.rb, v1.8.5), the host without
/// its port, an IPv6 address in brackets. `None` when `url` has no host.
fn hostname_id(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(u.host_str()?.to_ascii_lowercase())
}

/// `url` as printed: without its query and fragment (which could carry a checksum).
fn printable(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_string()
}

/// Reads one server object of the API (`server_to_json` in Scalelite's servers_controller.rb):
/// `id`, `url`, `state` (`enabled`/`cordoned`/`disabled`) required; `secret`, `load` (a number
/// or `unavailable`), `load_multiplier` (default 1.0), `online` (`online`/`offline`), `tag`,
/// `bbb_version` read when present. Numbers may come as JSON strings.
///
/// # Errors
/// What the object lacks, worded to follow "server": `without `id``, `with unknown state ...`.
pub fn parse_server(v: &Value) -> std::result::Result<Server, String> {
    let field = |k: &str| v.get(k).ok_or_else(|| format!("without `{k}`"));
    let string = |k: &str| -> std::result::Result<String, String> {
        match field(k)? {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(format!("whose `{k}` is not a string")),
        }
    };
    let state = match string("state")?.as_str() {
        "enabled" => State::Enabled,
        "cordoned" => State::Cordoned,
        "disabled" => State::Disabled,
        other => return Err(format!("with unknown state `{other}`")),
    };
    let online = match v.get("online") {
        Some(Value::String(s)) if s == "online" => Some(true),
        Some(Value::String(s)) if s == "offline" => Some(false),
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    let number = |x: Option<&Value>| match x {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let opt_string = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    };
    Ok(Server {
        id: string("id")?,
        url: string("url")?,
        secret: string("secret").unwrap_or_default(),
        state,
        online,
        load: number(v.get("load")),
        load_multiplier: number(v.get("load_multiplier")).unwrap_or(1.0),
        tag: opt_string("tag").unwrap_or_default(),
        bbb_version: opt_string("bbb_version"),
        meetings: None,
        participants: None,
        unadmitted: false,
    })
}

/// `messageKey` and `message` of a BBB-style XML `<response>` (empty when absent or when the
/// body is not such a document). Only the response's own children count.
fn xml_error(body: &str) -> (String, String) {
    let Ok(doc) = roxmltree::Document::parse(body) else {
        return (String::new(), String::new());
    };
    let root = doc.root_element();
    let text = |tag: &str| -> String {
        root.children()
            .find(|c| root.has_tag_name("response") && c.has_tag_name(tag))
            .map(|c| c.children().filter_map(|t| t.text()).collect::<String>())
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    (text("messageKey"), text("message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_ids_are_what_scalelite_makes() {
        for (url, id) in [
            (
                "https://BBB1.Example.org:8443/bigbluebutton/api",
                Some("bbb1.example.org"),
            ),
            (
                "http://u:p@127.0.0.11:18001/bigbluebutton/api",
                Some("127.0.0.11"),
            ),
            ("http://[FD00::5]:8443/bigbluebutton/api", Some("[fd00::5]")),
            ("no-scheme/bigbluebutton/api", None),
        ] {
            assert_eq!(hostname_id(url).as_deref(), id, "{url}");
        }
    }

    #[test]
    fn parses_server_json_as_rails_renders_it() {
        let v = json!({"id":"a","url":"https://n/bigbluebutton/api","secret":"s","tag":"","bbb_version":"",
            "state":"cordoned","load":"unavailable","load_multiplier":"2.5","online":"offline"});
        let s = parse_server(&v).unwrap();
        assert_eq!(s.state, State::Cordoned);
        assert_eq!(s.load, None);
        assert_eq!(s.load_multiplier, 2.5);
        assert_eq!(s.online, Some(false));
        assert_eq!(s.bbb_version, None);
        assert!(
            parse_server(&json!({"id":"a","url":"u","state":"weird"}))
                .unwrap_err()
                .contains("unknown state")
        );
        assert!(
            parse_server(&json!({"url":"u","state":"enabled"}))
                .unwrap_err()
                .contains("without `id`")
        );
    }

    #[test]
    fn xml_errors_are_read_as_xml() {
        // Substring search kept `&#39;` and `&amp;` as written and took the first
        // `<message>` anywhere, even one nested deeper than the response's own.
        let body = "<?xml version=\"1.0\"?><response><returncode>FAILED</returncode>\
            <detail><message>inner</message></detail>\
            <messageKey>checksumError</messageKey><message>Checksum &#39;x&#39; &amp; more</message></response>";
        assert_eq!(
            xml_error(body),
            ("checksumError".into(), "Checksum 'x' & more".into())
        );
        let cdata = "<response><messageKey><![CDATA[unsupportedRequest]]></messageKey></response>";
        assert_eq!(xml_error(cdata).0, "unsupportedRequest");
        assert_eq!(
            xml_error("<html><p>oops</html>"),
            (String::new(), String::new())
        );
    }
}
