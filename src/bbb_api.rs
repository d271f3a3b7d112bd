//! A node's own BigBlueButton API, as the controller sees it: the health check (the API
//! answers, and accepts our checksum), the meetings a drain waits for, and `end` for
//! `--force`. Checksum: hex SHA-256 of call name + query string + shared secret (api.md).
//! Answers are small, flat XML documents; a few lines read the elements we need, and
//! anything that is not a BBB `<response>` is a clear error.

use crate::balancer::http::{Http, HttpError, printable_url};
use crate::script::sha256_hex;

/// One node's API endpoint and secret (`bbb_api_url`, `bbb_secret`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https://host/bigbluebutton/api`, no trailing slash.
    pub url: String,
    pub secret: String,
}

/// A meeting on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub id: String,
    pub name: String,
    pub participants: u64,
    pub moderator_pw: Option<String>,
    pub breakout: bool,
}

/// What the health check learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `<bbbVersion>` (empty unless bbb-web reveals it).
    pub version: Option<String>,
    pub meetings: Vec<Meeting>,
}

/// Why a call failed; the message never contains the secret or the checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BbbError {
    #[error("BBB API at {url} unreachable: {why}")]
    Unreachable { url: String, why: String },
    #[error("BBB API at {url} refused {call}: {key}: {message}{hint}")]
    Failed {
        url: String,
        call: String,
        key: String,
        message: String,
        hint: String,
    },
    #[error("BBB API at {url} answered {call} with {what}")]
    Malformed {
        url: String,
        call: String,
        what: String,
    },
}

impl Endpoint {
    pub fn new(url: &str, secret: &str) -> Endpoint {
        Endpoint {
            url: url.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
        }
    }

    /// The signed URL of `call` with an already encoded `query`.
    pub fn signed(&self, call: &str, query: &str) -> String {
        let checksum = sha256_hex(format!("{call}{query}{}", self.secret).as_bytes());
        let sep = if query.is_empty() { "" } else { "&" };
        format!("{}/{call}?{query}{sep}checksum={checksum}", self.url)
    }

    fn call(&self, http: &Http, call: &str, query: &str) -> Result<String, BbbError> {
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
        let reply = http.get(&url, &[]).map_err(|e| match e {
            HttpError::Unreachable(why) | HttpError::Broken(why) => BbbError::Unreachable {
                url: printable_url(&self.url),
                why,
            },
        })?;
        let malformed = |what: String| BbbError::Malformed {
            url: self.url.clone(),
            call: name.clone(),
            what,
        };
        let Some(body) = element(&reply.body, "response") else {
            return Err(malformed(format!(
                "HTTP {} and {} instead of a BBB <response>",
                reply.status,
                reply.excerpt()
            )));
        };
        match text(body, "returncode").as_deref() {
            Some("SUCCESS") => Ok(body.to_string()),
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

    /// The meetings running on the node.
    pub fn meetings(&self, http: &Http) -> Result<Vec<Meeting>, BbbError> {
        let body = self.call(http, "getMeetings", "")?;
        let Some(list) = element(&body, "meetings") else {
            if text(&body, "messageKey").as_deref() == Some("noMeetings") {
                return Ok(vec![]);
            }
            return Err(BbbError::Malformed {
                url: self.url.clone(),
                call: "getMeetings".into(),
                what: "SUCCESS without <meetings>".into(),
            });
        };
        let mut out = Vec::new();
        for m in elements(list, "meeting") {
            let Some(id) = text(m, "meetingID") else {
                return Err(BbbError::Malformed {
                    url: self.url.clone(),
                    call: "getMeetings".into(),
                    what: "a <meeting> without <meetingID>".into(),
                });
            };
            out.push(Meeting {
                name: text(m, "meetingName").unwrap_or_else(|| id.clone()),
                id,
                participants: text(m, "participantCount")
                    .and_then(|p| p.trim().parse().ok())
                    .unwrap_or(0),
                moderator_pw: text(m, "moderatorPW").filter(|p| !p.is_empty()),
                breakout: text(m, "isBreakout").as_deref() == Some("true"),
            });
        }
        Ok(out)
    }

    /// The health check: the API answers its version call and accepts our checksum.
    pub fn health(&self, http: &Http) -> Result<Health, BbbError> {
        let index = self.call(http, "", "")?;
        let version = text(&index, "bbbVersion").filter(|v| !v.trim().is_empty());
        let meetings = self.meetings(http)?;
        Ok(Health { version, meetings })
    }

    /// Ends a meeting (asynchronous on the node: it disappears a moment later).
    pub fn end(&self, http: &Http, m: &Meeting) -> Result<(), BbbError> {
        let mut query = format!("meetingID={}", encode(&m.id));
        if let Some(pw) = &m.moderator_pw {
            query.push_str(&format!("&password={}", encode(pw)));
        }
        self.call(http, "end", &query).map(|_| ())
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

/// Finds `<tag>` or `<tag ...>` (not `<tagSuffix>`) at or after `from`.
fn open_tag(xml: &str, tag: &str, from: usize) -> Option<(usize, usize, bool)> {
    let pat = format!("<{tag}");
    let mut at = from;
    while let Some(i) = xml[at..].find(&pat) {
        let start = at + i;
        let rest = &xml[start + pat.len()..];
        match rest.chars().next() {
            Some('>') => return Some((start, start + pat.len() + 1, false)),
            Some(c) if c == '/' || c.is_whitespace() => {
                let close = rest.find('>')?;
                let self_closing = rest[..close].ends_with('/');
                return Some((start, start + pat.len() + close + 1, self_closing));
            }
            _ => at = start + pat.len(),
        }
    }
    None
}

/// The inner text of the first `<tag>` element (empty for `<tag/>`).
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let (_, inner, self_closing) = open_tag(xml, tag, 0)?;
    if self_closing {
        return Some("");
    }
    let end = xml[inner..].find(&format!("</{tag}>"))?;
    Some(&xml[inner..inner + end])
}

/// Every `<tag>` element's inner text, in order (not nested in each other).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut at = 0;
    let close = format!("</{tag}>");
    while let Some((_, inner, self_closing)) = open_tag(xml, tag, at) {
        if self_closing {
            out.push("");
            at = inner;
            continue;
        }
        let Some(end) = xml[inner..].find(&close) else {
            break;
        };
        out.push(&xml[inner..inner + end]);
        at = inner + end + close.len();
    }
    out
}

/// The unescaped text of the first `<tag>`.
fn text(xml: &str, tag: &str) -> Option<String> {
    element(xml, tag).map(unescape)
}

fn unescape(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
        .unwrap_or(s);
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
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

    #[test]
    fn reads_meetings_and_ignores_nested_lookalikes() {
        let xml = "<response><returncode>SUCCESS</returncode><meetings><meeting><meetingName>Math &amp; more</meetingName>\
            <meetingID>m1</meetingID><moderatorPW>mp</moderatorPW><participantCount>3</participantCount>\
            <attendees><attendee><userID>u</userID></attendee></attendees><metadata><meetingID>x</meetingID></metadata>\
            <isBreakout>false</isBreakout></meeting><meeting><meetingID>m2</meetingID><participantCount>0</participantCount>\
            </meeting></meetings></response>";
        let list = element(xml, "meetings").unwrap();
        let ms = elements(list, "meeting");
        assert_eq!(ms.len(), 2);
        assert_eq!(text(ms[0], "meetingName").unwrap(), "Math & more");
        assert_eq!(text(ms[0], "meetingID").unwrap(), "m1");
        assert_eq!(text(ms[1], "participantCount").unwrap(), "0");
        assert_eq!(
            element("<response><meetings/></response>", "meetings"),
            Some("")
        );
        assert_eq!(
            element("<response><meetingsX>1</meetingsX></response>", "meetings"),
            None
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
