//! A node's own BigBlueButton API, as the controller sees it: the health check (the API
//! answers, and accepts our checksum), the meetings a drain waits for, and `end` for
//! `--force`. Checksum: hex SHA-256 of call name + query string + shared secret (BBB's API
//! reference, docs.bigbluebutton.org `development/api`).
//! Answers are XML documents read with roxmltree (entities, CDATA, and meeting metadata whose
//! elements may bear any name); anything that is not a BBB `<response>` is a clear error.

use crate::http::{CaFile, Http, HttpError, printable_url};
use crate::script::sha256_hex;

/// One node's API endpoint and secret (`bbb_api_url`, `bbb_secret`), and the CA its
/// HTTPS certificate must chain to (`bbb_api_ca_file`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https://host/bigbluebutton/api`, no trailing slash.
    pub url: String,
    /// The node's shared secret (`securitySalt`, `bbb-conf --secret`). Never printed.
    pub secret: String,
    /// The CA certificates trusted for this node's HTTPS instead of the built-in web roots
    /// (`bbb_api_ca_file`); `None`: the client's own trust.
    pub ca: Option<CaFile>,
}

/// A meeting on a node, from a `<meeting>` of getMeetings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    /// `<meetingID>`.
    pub id: String,
    /// `<meetingName>`, or the id when the node sends none.
    pub name: String,
    /// `<participantCount>` (0 when absent or not a number).
    pub participants: u64,
    /// `<moderatorPW>`, which `end` sends as `password`; `None` when empty or absent.
    pub moderator_pw: Option<String>,
    /// `<isBreakout>` is `true`: a breakout room of another meeting.
    pub breakout: bool,
    /// `<hasBeenForciblyEnded>` is `true`: `end` was called and BBB is removing it.
    pub ended: bool,
    /// `<startTime>`: when the first participant joined, in milliseconds since the Unix
    /// epoch on the node's clock; `None` when absent or 0 (nobody joined yet).
    pub start_ms: Option<u64>,
    /// `<duration>`: the meeting's scheduled length in minutes (`duration` of `create`,
    /// else bbb-web's `defaultMeetingDuration`); BBB ends it that long after `startTime`.
    /// `None` when absent or 0 (no limit).
    pub duration_min: Option<u64>,
}

impl Meeting {
    /// When BBB will end the meeting by itself (`startTime` + `duration`), in milliseconds
    /// since the Unix epoch on the node's clock; `None` when the API gives no such end.
    pub fn scheduled_end_ms(&self) -> Option<u64> {
        Some(self.start_ms? + self.duration_min? * 60_000)
    }
}

/// The meeting ID prefix of the health check's own meetings ([`Endpoint::round_trip`]), so
/// that an operator reading a node's getMeetings knows whose they are.
pub const HEALTH_MEETING_PREFIX: &str = "rollout-health-";

/// What the health check learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `<bbbVersion>` (empty unless bbb-web reveals it).
    pub version: Option<String>,
    /// The meetings running on the node at the check.
    pub meetings: Vec<Meeting>,
}

/// Why a call failed; the message never contains the secret or the checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BbbError {
    /// Nothing listens at the API's address: the connection was refused or the host name
    /// does not resolve. No client can reach a meeting on such a node either.
    #[error("BBB API at {url} unreachable: {why}")]
    NothingListens {
        /// The endpoint's URL, printable.
        url: String,
        /// What failed, from [`HttpError::NothingListens`].
        why: String,
    },
    /// No HTTP answer (or one that is not HTTP).
    #[error("BBB API at {url} unreachable: {why}")]
    Unreachable {
        /// The endpoint's URL, printable.
        url: String,
        /// What failed, from [`HttpError`].
        why: String,
    },
    /// A `<response>` whose `<returncode>` is not `SUCCESS`.
    #[error("BBB API at {url} refused {call}: {key}: {message}{hint}")]
    Failed {
        /// The endpoint's URL.
        url: String,
        /// The call's name (`getMeetings`, `end`, `the version call`).
        call: String,
        /// BBB's `<messageKey>` (such as `checksumError`); may be empty.
        key: String,
        /// BBB's `<message>`; may be empty.
        message: String,
        /// Advice appended to the message (for `checksumError`), else empty.
        hint: String,
    },
    /// An answer that is not a BBB `<response>`, or lacks what the call needs.
    #[error("BBB API at {url} answered {call} with {what}")]
    Malformed {
        /// The endpoint's URL.
        url: String,
        /// The call's name.
        call: String,
        /// What the answer was or lacked.
        what: String,
    },
}

impl Endpoint {
    /// The endpoint at `url` (a trailing slash is dropped) with `secret`.
    pub fn new(url: &str, secret: &str) -> Endpoint {
        Endpoint {
            url: url.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            ca: None,
        }
    }

    /// The same endpoint, its HTTPS trusted through `ca` (`bbb_api_ca_file`).
    pub fn with_ca(self, ca: Option<CaFile>) -> Endpoint {
        Endpoint { ca, ..self }
    }

    /// The signed URL of `call` with an already encoded `query` (see [`encode`]): the query
    /// plus `checksum=`, which makes the URL itself a secret (print it with
    /// [`printable_url`]).
    pub fn signed(&self, call: &str, query: &str) -> String {
        let checksum = sha256_hex(format!("{call}{query}{}", self.secret).as_bytes());
        let sep = if query.is_empty() { "" } else { "&" };
        format!("{}/{call}?{query}{sep}checksum={checksum}", self.url)
    }

    /// Calls `call` and hands the `<response>` of a SUCCESS answer to `read`, whose error
    /// text says what the answer lacked.
    fn call<T>(
        &self,
        http: &Http,
        call: &str,
        query: &str,
        read: impl FnOnce(Node) -> Result<T, String>,
    ) -> Result<T, BbbError> {
        let url = if call.is_empty() {
            self.url.clone()
        } else {
            self.signed(call, query)
        };
        let name = if call.is_empty() {
            "the version call".to_string()
        } else {
            call.to_string()
        };
        let reply = http
            .get_trusting(&url, &[], self.ca.as_ref(), "bbb_api_ca_file")
            .map_err(|e| match e {
                HttpError::NothingListens(why) => BbbError::NothingListens {
                    url: printable_url(&self.url),
                    why,
                },
                HttpError::Unreachable(why) | HttpError::Broken(why) | HttpError::Refused(why) => {
                    BbbError::Unreachable {
                        url: printable_url(&self.url),
                        why,
                    }
                }
            })?;
        let malformed = |what: String| BbbError::Malformed {
            url: self.url.clone(),
            call: name.clone(),
            what,
        };
        let doc = roxmltree::Document::parse(&reply.body).ok();
        let Some(body) = doc.as_ref().and_then(response) else {
            return Err(malformed(format!(
                "HTTP {} and {} instead of a BBB <response>",
                reply.status,
                reply.excerpt()
            )));
        };
        match text(body, "returncode").as_deref() {
            Some("SUCCESS") => read(body).map_err(malformed),
            Some(_) => {
                let key = text(body, "messageKey").unwrap_or_default();
                let hint = if key == "checksumError" {
                    " (is `bbb_secret` the node's securitySalt? `bbb-conf --secret` shows it)"
                        .to_string()
                } else {
                    String::new()
                };
                Err(BbbError::Failed {
                    url: self.url.clone(),
                    call: name,
                    key,
                    message: text(body, "message").unwrap_or_default(),
                    hint,
                })
            }
            None => Err(malformed("a <response> without <returncode>".into())),
        }
    }

    /// The meetings running on the node (getMeetings; `noMeetings` is an empty list).
    ///
    /// # Errors
    /// [`BbbError`]: unreachable, refused (a wrong secret is `checksumError`) or malformed.
    pub fn meetings(&self, http: &Http) -> Result<Vec<Meeting>, BbbError> {
        self.call(http, "getMeetings", "", read_meetings)
    }

    /// The health check: the API answers its version call (the unsigned API root) and
    /// accepts our checksum (getMeetings).
    ///
    /// # Errors
    /// The first failing call's [`BbbError`].
    pub fn health(&self, http: &Http) -> Result<Health, BbbError> {
        let version = self.call(http, "", "", |index| {
            Ok(text(index, "bbbVersion").filter(|v| !v.is_empty()))
        })?;
        let meetings = self.meetings(http)?;
        Ok(Health { version, meetings })
    }

    /// The API round trip of the health check: `create` a meeting `id` (which should start
    /// with [`HEALTH_MEETING_PREFIX`]; no recording, a `duration` of 1 minute so that BBB
    /// itself ends it should `end` never arrive), `join` it with `redirect=false` and
    /// require the join URL in the answer (`<url>`, what a browser would be sent to), then
    /// `end` it and wait up to `settle` until getMeetings no longer lists it (or lists it as
    /// `hasBeenForciblyEnded`, BBB removing it). Only meeting `id` is ever touched.
    /// Parameters as BBB 3.0's API reference (docs.bigbluebutton.org `development/api`):
    /// `role=VIEWER` instead of the deprecated attendee password.
    ///
    /// # Errors
    /// The first failing call's [`BbbError`] (its `call` names it); a join answer without
    /// `<url>`, or the meeting still running after `end`, is [`BbbError::Malformed`].
    pub fn round_trip(
        &self,
        http: &Http,
        id: &str,
        settle: std::time::Duration,
    ) -> Result<(), BbbError> {
        let mid = encode(id);
        let create = format!(
            "meetingID={mid}&name={}&record=false&duration=1",
            encode("rollout health check")
        );
        let moderator_pw = self.call(http, "create", &create, |r| {
            if text(r, "meetingID").as_deref() != Some(id) {
                return Err(format!("a <response> without <meetingID>{id}</meetingID>"));
            }
            Ok(text(r, "moderatorPW").filter(|p| !p.is_empty()))
        })?;
        let join = format!(
            "meetingID={mid}&fullName={}&role=VIEWER&redirect=false",
            encode("rollout health check")
        );
        let joined = self.call(http, "join", &join, |r| match text(r, "url") {
            Some(u) if !u.is_empty() => Ok(()),
            _ => Err("SUCCESS without a join <url>".into()),
        });
        // End it whether or not the join worked: the check leaves no meeting behind.
        let ours = Meeting {
            id: id.to_string(),
            name: id.to_string(),
            participants: 0,
            moderator_pw,
            breakout: false,
            ended: false,
            start_ms: None,
            duration_min: None,
        };
        let ended = self.end(http, &ours);
        joined?;
        ended?;
        let deadline = std::time::Instant::now() + settle;
        loop {
            let listed = self.meetings(http)?.into_iter().find(|m| m.id == id);
            match listed {
                None => return Ok(()),
                Some(m) if m.ended && std::time::Instant::now() >= deadline => return Ok(()),
                Some(_) if std::time::Instant::now() >= deadline => {
                    return Err(BbbError::Malformed {
                        url: self.url.clone(),
                        call: "end".into(),
                        what: format!(
                            "SUCCESS, but meeting {id} still runs {} s later",
                            settle.as_secs()
                        ),
                    });
                }
                Some(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
    }

    /// Ends a meeting (asynchronous on the node: it disappears a moment later).
    ///
    /// # Errors
    /// [`BbbError`], as for [`Endpoint::meetings`].
    pub fn end(&self, http: &Http, m: &Meeting) -> Result<(), BbbError> {
        let mut query = format!("meetingID={}", encode(&m.id));
        if let Some(pw) = &m.moderator_pw {
            query.push_str(&format!("&password={}", encode(pw)));
        }
        self.call(http, "end", &query, |_| Ok(()))
    }
}

/// Total participants of a meeting list.
pub fn participants(meetings: &[Meeting]) -> u64 {
    meetings.iter().map(|m| m.participants).sum()
}

/// Percent-encodes a query value (unreserved characters stay, like the BBB API examples).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An element of a parsed answer.
type Node<'a, 'input> = roxmltree::Node<'a, 'input>;

/// The document's `<response>` root, if it is a BBB answer at all.
fn response<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Option<Node<'a, 'i>> {
    let root = doc.root_element();
    root.has_tag_name("response").then_some(root)
}

/// The child element `<tag>` of `node`. Only children count: meeting metadata may hold
/// elements of any name (`<metadata><meetingID>`), and they are not the meeting's own.
fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(tag))
}

/// The text of the child `<tag>` (entities and CDATA resolved, trimmed; empty for `<tag/>`).
fn text(node: Node, tag: &str) -> Option<String> {
    let el = child(node, tag)?;
    let all: String = el.children().filter_map(|c| c.text()).collect();
    Some(all.trim().to_string())
}

/// The meetings of a getMeetings `<response>`; the error says what the answer lacked.
fn read_meetings(body: Node) -> Result<Vec<Meeting>, String> {
    let Some(list) = child(body, "meetings") else {
        if text(body, "messageKey").as_deref() == Some("noMeetings") {
            return Ok(vec![]);
        }
        return Err("SUCCESS without <meetings>".into());
    };
    let mut out = Vec::new();
    for m in list.children().filter(|c| c.has_tag_name("meeting")) {
        let Some(id) = text(m, "meetingID") else {
            return Err("a <meeting> without <meetingID>".into());
        };
        out.push(Meeting {
            name: text(m, "meetingName").unwrap_or_else(|| id.clone()),
            id,
            participants: text(m, "participantCount")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            moderator_pw: text(m, "moderatorPW").filter(|p| !p.is_empty()),
            breakout: text(m, "isBreakout").as_deref() == Some("true"),
            ended: text(m, "hasBeenForciblyEnded").as_deref() == Some("true"),
            start_ms: text(m, "startTime")
                .and_then(|t| t.parse().ok())
                .filter(|t| *t > 0),
            duration_min: text(m, "duration")
                .and_then(|t| t.parse().ok())
                .filter(|t| *t > 0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_sha256_of_call_query_and_secret() {
        let e = Endpoint::new("http://n/bigbluebutton/api/", "s3cret");
        let expected = sha256_hex(b"getMeetingss3cret");
        assert_eq!(
            e.signed("getMeetings", ""),
            format!("http://n/bigbluebutton/api/getMeetings?checksum={expected}")
        );
        let expected = sha256_hex(b"endmeetingID=a%20bs3cret");
        assert_eq!(
            e.signed("end", "meetingID=a%20b"),
            format!("http://n/bigbluebutton/api/end?meetingID=a%20b&checksum={expected}")
        );
    }

    fn meetings_of(xml: &str) -> Result<Vec<Meeting>, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        read_meetings(response(&doc).ok_or("no <response>")?)
    }

    #[test]
    fn reads_meetings_and_ignores_nested_lookalikes() {
        let xml = "<response><returncode>SUCCESS</returncode><meetings><meeting><meetingName>Math &amp; more</meetingName>\
            <meetingID>m1</meetingID><moderatorPW>mp</moderatorPW><participantCount>3</participantCount>\
            <attendees><attendee><userID>u</userID></attendee></attendees><metadata><meetingID>x</meetingID></metadata>\
            <isBreakout>false</isBreakout></meeting><meeting><meetingID>m2</meetingID><participantCount>0</participantCount>\
            </meeting></meetings></response>";
        let ms = meetings_of(xml).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].name, "Math & more");
        assert_eq!(ms[0].id, "m1");
        assert_eq!(ms[1].participants, 0);
        assert_eq!((ms[0].start_ms, ms[0].scheduled_end_ms()), (None, None));
        assert_eq!(meetings_of("<response><meetings/></response>"), Ok(vec![]));
        assert!(meetings_of("<response><meetingsX>1</meetingsX></response>").is_err());
    }

    #[test]
    fn reads_start_time_and_duration_for_the_scheduled_end() {
        // get-meetings.ftlx: <startTime> in ms since the epoch, <duration> in minutes; 0 for
        // either means none (nobody joined yet, no limit).
        let xml = "<response><returncode>SUCCESS</returncode><meetings>\
            <meeting><meetingID>a</meetingID><duration>90</duration><startTime>1700000000000</startTime></meeting>\
            <meeting><meetingID>b</meetingID><duration>0</duration><startTime>1700000000000</startTime></meeting>\
            <meeting><meetingID>c</meetingID><duration>30</duration><startTime>0</startTime></meeting>\
            </meetings></response>";
        let ms = meetings_of(xml).unwrap();
        assert_eq!(
            ms[0].scheduled_end_ms(),
            Some(1_700_000_000_000 + 90 * 60_000)
        );
        assert_eq!(ms[1].duration_min, None);
        assert_eq!(ms[1].scheduled_end_ms(), None);
        assert_eq!(ms[2].start_ms, None);
        assert_eq!(ms[2].scheduled_end_ms(), None);
    }

    #[test]
    fn metadata_named_like_fields_does_not_shadow_them() {
        // Substring search took the first `<participantCount>` in the text: the one in
        // the metadata, which comes before the meeting's own.
        let xml = "<response><returncode>SUCCESS</returncode><meetings><meeting>\
            <metadata><meetingID>fake</meetingID><participantCount>0</participantCount>\
            <isBreakout>true</isBreakout></metadata>\
            <meetingID>real</meetingID><participantCount>42</participantCount>\
            </meeting></meetings></response>";
        let ms = meetings_of(xml).unwrap();
        assert_eq!(ms[0].id, "real");
        assert_eq!(ms[0].participants, 42);
        assert!(!ms[0].breakout);
    }

    #[test]
    fn entities_and_cdata_are_read_as_xml_says() {
        // The hand-written reader knew five named entities and a CDATA section only when
        // it was the whole text; `&#38;` stayed as written.
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><returncode>SUCCESS</returncode>\
            <meetings><meeting><meetingID>a&#38;b&#x26;c&amp;d</meetingID>\
            <meetingName>x <![CDATA[<Math> & ]]>more</meetingName></meeting></meetings></response>";
        let ms = meetings_of(xml).unwrap();
        assert_eq!(ms[0].id, "a&b&c&d");
        assert_eq!(ms[0].name, "x <Math> & more");
    }

    #[test]
    fn a_first_nested_match_does_not_win() {
        // `<meetings>` nested in a meeting's metadata came first in the text and ended the
        // list early for the substring reader.
        let xml = "<response><returncode>SUCCESS</returncode><meetings>\
            <meeting><meetingID>m1</meetingID><metadata><meetings>2</meetings><meeting>x</meeting></metadata></meeting>\
            <meeting><meetingID>m2</meetingID></meeting></meetings></response>";
        let ids: Vec<String> = meetings_of(xml)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["m1", "m2"]);
        let doc = roxmltree::Document::parse(
            "<response><x><returncode>FAILED</returncode></x><returncode>SUCCESS</returncode></response>",
        )
        .unwrap();
        assert_eq!(
            text(response(&doc).unwrap(), "returncode").unwrap(),
            "SUCCESS"
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
