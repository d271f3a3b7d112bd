//! The balancer's model of a node: a registered [`Server`] with its [`State`], the [`Desired`]
//! registration the inventory asks for, and how a node's URL finds its server ([`same_url`],
//! [`find`]). Every balancer client speaks in these terms, so they live apart from the clients
//! and the [`Balancer`](super::Balancer) trait.

use serde::Serialize;

/// A server's place in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Gets new meetings.
    Enabled,
    /// Drained: no new meetings; running meetings continue.
    Cordoned,
    /// Out of the pool.
    Disabled,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Enabled => "enabled",
            State::Cordoned => "cordoned",
            State::Disabled => "disabled",
        })
    }
}

/// A server as the balancer knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// The balancer's id for the server (Scalelite's server id, b3scale's backend id); the
    /// handle of every later call.
    pub id: String,
    /// The BBB API URL it was registered with.
    pub url: String,
    /// The node's BBB secret as the balancer stores it. Never printed.
    pub secret: String,
    /// Whether it gets new meetings.
    pub state: State,
    /// The balancer's own view of the node, when it has one.
    pub online: Option<bool>,
    /// Scalelite's load figure, unitless, from its poller (`None` when Scalelite says
    /// `unavailable`, and always for b3scale). rollout reads above 0 as carrying meetings.
    pub load: Option<f64>,
    /// Scalelite's `load_multiplier` or b3scale's `load_factor`: how heavily the node's load
    /// counts when the balancer picks a node (1.0 when the balancer gives none).
    pub load_multiplier: f64,
    /// Scalelite's tag, or b3scale's `settings.tags` joined with commas; empty for none.
    pub tag: String,
    /// The BBB version the balancer reports (Scalelite's `bbb_version`, when its API sends
    /// one).
    pub bbb_version: Option<String>,
    /// Meetings on the node, as the balancer counts them itself (b3scale's `meetings_count`).
    pub meetings: Option<u64>,
    /// Participants on the node, as the balancer counts them (b3scale's `attendees_count`).
    pub participants: Option<u64>,
    /// Registered but never admitted by anyone: b3scale's `admin_state: init`, a backend its
    /// node agent (`b3scaleagent -a`) registered, waiting to be put into service. Out of
    /// service, but nobody's decision to keep it out (false for Scalelite, whose servers
    /// have no such state).
    pub unadmitted: bool,
}

/// What a node should look like in the balancer.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The node's BBB API URL (`https://host/bigbluebutton/api`), the key that matches it to
    /// a [`Server`] (see [`same_url`]).
    pub url: String,
    /// The node's BBB secret (resolved; never printed).
    pub secret: String,
    /// The weight of the node's load (see [`Server::load_multiplier`]).
    pub load_multiplier: f64,
    /// The tag (b3scale: comma-separated tags); empty for none.
    pub tag: String,
}

impl Server {
    /// An entry with only its id, URL and state known: no secret, online and load unknown,
    /// load multiplier 1, no tag. Balancers that list servers in parts fill in the rest.
    pub fn new(id: impl Into<String>, url: impl Into<String>, state: State) -> Server {
        Server {
            id: id.into(),
            url: url.into(),
            secret: String::new(),
            state,
            online: None,
            load: None,
            load_multiplier: 1.0,
            tag: String::new(),
            bbb_version: None,
            meetings: None,
            participants: None,
            unadmitted: false,
        }
    }

    /// The fields that differ from `d` (the URL matched already).
    pub fn differences(&self, d: &Desired) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.secret != d.secret {
            out.push("secret");
        }
        if (self.load_multiplier - d.load_multiplier).abs()
            > 1e-4 * d.load_multiplier.abs().max(1.0)
        {
            out.push("load multiplier");
        }
        if self.tag != d.tag {
            out.push("tag");
        }
        out
    }

    /// In service: takes new meetings and the balancer does not consider it offline.
    pub fn in_service(&self) -> bool {
        self.state == State::Enabled && self.online != Some(false)
    }
}

/// Whether two BBB API URLs name the same endpoint as balancers store them: scheme and host
/// in any case, the scheme's default port written or not (`:443`), with or without a
/// trailing slash. The path compares without case too, as it always did. Text that is not
/// a URL compares as text.
pub fn same_url(a: &str, b: &str) -> bool {
    match (UrlKey::of(a), UrlKey::of(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a
            .trim_end_matches('/')
            .eq_ignore_ascii_case(b.trim_end_matches('/')),
    }
}

/// The parts of a URL that decide which endpoint it names.
#[derive(PartialEq, Eq)]
struct UrlKey {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

impl UrlKey {
    fn of(text: &str) -> Option<UrlKey> {
        // The url crate lowercases scheme and host and drops a default port.
        let u = url::Url::parse(text.trim()).ok()?;
        Some(UrlKey {
            scheme: u.scheme().to_string(),
            host: u.host_str()?.to_string(),
            port: u.port_or_known_default(),
            path: u.path().trim_end_matches('/').to_ascii_lowercase(),
            query: u.query().map(str::to_string),
        })
    }
}

/// The server registered for `url`, compared with [`same_url`]; `None` when the balancer
/// does not know it.
pub fn find<'a>(servers: &'a [Server], url: &str) -> Option<&'a Server> {
    servers.iter().find(|s| same_url(&s.url, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Server {
        Server {
            secret: "s".into(),
            online: Some(true),
            ..Server::new("1", "https://n1/bigbluebutton/api/", State::Enabled)
        }
    }

    #[test]
    fn differences_name_fields_not_values() {
        let s = server();
        let mut d = Desired {
            url: "https://n1/bigbluebutton/api".into(),
            secret: "s".into(),
            load_multiplier: 1.0,
            tag: String::new(),
        };
        assert!(s.differences(&d).is_empty());
        d.secret = "t".into();
        d.load_multiplier = 2.0;
        d.tag = "x".into();
        assert_eq!(s.differences(&d), vec!["secret", "load multiplier", "tag"]);
        assert!(same_url(&s.url, &d.url));
        assert!(find(&[s], "https://N1/bigbluebutton/api").is_some());
    }

    #[test]
    fn same_url_sees_one_endpoint_in_its_spellings() {
        // Compared as text, `:443` or a trailing slash made a second balancer entry for
        // one node.
        let url = "https://n1.example.org/bigbluebutton/api";
        for same in [
            "https://n1.example.org:443/bigbluebutton/api",
            "https://n1.example.org/bigbluebutton/api/",
            "HTTPS://N1.Example.ORG:443/bigbluebutton/api/",
            "https://n1.example.org/bigbluebutton/api//",
        ] {
            assert!(same_url(url, same), "{same}");
            assert!(same_url(same, url), "{same}");
        }
        assert!(same_url("http://n1/api", "http://n1:80/api/"));
        for other in [
            "http://n1.example.org/bigbluebutton/api",
            "https://n1.example.org:8443/bigbluebutton/api",
            "https://n2.example.org/bigbluebutton/api",
            "https://n1.example.org/other/api",
        ] {
            assert!(!same_url(url, other), "{other}");
        }
        assert!(same_url("not a url/", "NOT A URL"));
    }
}
