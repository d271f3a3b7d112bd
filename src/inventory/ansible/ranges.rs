//! Host patterns as ansible-core expands them: `name:port`, `[v6::addr]:port`, and ranges
//! `www[01:50]`, `www[01:50:2]`, `db-[a:f]`, several in one name
//! (lib/ansible/parsing/utils/addresses.py `parse_address`,
//! lib/ansible/plugins/inventory/__init__.py `expand_hostname_range`).

/// Host names and the port that applies to all of them (`None`: none given).
pub type Expanded = (Vec<String>, Option<u16>);

/// The most hosts one pattern may expand to: far beyond a real pool, far below what would
/// exhaust memory (`h[0:99999999999]`).
pub const MAX_HOSTS: usize = 100_000;

/// Splits off a port and expands ranges, as `BaseInventoryPlugin._expand_hostpattern`: a
/// pattern `parse_address` does not recognise is taken whole, without a port.
///
/// # Errors
/// A malformed range (Ansible's message) or more than [`MAX_HOSTS`] hosts.
pub fn expand(pattern: &str) -> Result<Expanded, String> {
    let (name, port) = match parse_address(pattern) {
        Some((host, port)) => (host, port),
        None => (pattern.to_string(), None),
    };
    if name.contains('[') {
        let mut out = Vec::new();
        expand_range(&name, &mut out)?;
        Ok((out, port))
    } else {
        Ok((vec![name], port))
    }
}

/// `parse_address(address, allow_ranges=True)`: `Some((host, port))` if the text is an IPv4
/// or IPv6 address or a host name (each possibly with ranges), with an optional `:port`
/// (for IPv6 only in brackets); `None` if it is none of these.
pub fn parse_address(address: &str) -> Option<(String, Option<u16>)> {
    let (addr, port) = parse_address_any_port(address)?;
    // Python's int() has no upper bound; a port past 65535 is no port rollout can use.
    let port = match port {
        Some(p) => Some(u16::try_from(p).ok()?),
        None => None,
    };
    Some((addr, port))
}

/// Whether ansible-core's `parse_address(address, allow_ranges=True)` accepts the text, a
/// port of any size included (Python's `int()` has no bound): what `split_host_pattern`
/// asks before it splits a pattern at colons.
pub fn is_address(address: &str) -> bool {
    parse_address_any_port(address).is_some()
}

/// [`parse_address`] with the port as Python reads it, any number of digits (saturating).
fn parse_address_any_port(address: &str) -> Option<(String, Option<u64>)> {
    let mut addr = address.to_string();
    let mut port = None;
    // `[host]:port`, then (as Python's loop goes on) `host:port` on what is left.
    if let Some(rest) = addr.strip_prefix('[')
        && let Some(close) = rest.rfind("]:")
        && close > 0
        && is_port(&rest[close + 2..])
    {
        port = Some(rest[close + 2..].parse::<u64>().unwrap_or(u64::MAX));
        addr = rest[..close].to_string();
    }
    if let Some((host, p)) = split_hostport(&addr) {
        port = Some(p.parse::<u64>().unwrap_or(u64::MAX));
        addr = host;
    }
    if !(is_ipv4(&addr) || is_ipv6(&addr) || is_hostname(&addr)) {
        return None;
    }
    Some((addr, port))
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// `^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$`
fn split_hostport(s: &str) -> Option<(String, &str)> {
    let colon = s.rfind(':')?;
    let (host, port) = (&s[..colon], &s[colon + 1..]);
    if !is_port(port) {
        return None;
    }
    let mut in_bracket = false;
    for c in host.chars() {
        match (c, in_bracket) {
            ('[', false) => in_bracket = true,
            (']', true) => in_bracket = false,
            (':' | ']', false) => return None,
            _ => {}
        }
    }
    (!in_bracket).then(|| (host.to_string(), port))
}

/// `\[[0-9]+:[0-9]+(:[0-9]+)?\]` (numeric) or, with `alpha`, also `\[[a-z]:[a-z](:[0-9]+)?\]`;
/// `hex` allows hex digits in the bounds.
fn is_range(s: &str, alpha: bool, hex: bool) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    let parts: Vec<&str> = inner.split(':').collect();
    if !(parts.len() == 2 || parts.len() == 3) {
        return false;
    }
    let num = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
    let hexnum = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_hexdigit());
    let bounds_ok = if hex {
        hexnum(parts[0]) && hexnum(parts[1])
    } else if alpha {
        (num(parts[0]) && num(parts[1]))
            || (parts[0].len() == 1
                && parts[1].len() == 1
                && parts[0].bytes().all(|c| c.is_ascii_alphabetic())
                && parts[1].bytes().all(|c| c.is_ascii_alphabetic()))
    } else {
        num(parts[0]) && num(parts[1])
    };
    bounds_ok && (parts.len() == 2 || num(parts[2]))
}

/// Splits `s` into units: single characters, or whole `[...]` groups.
fn units(s: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            let end = rest.find(']')?;
            out.push(&rest[..=end]);
            rest = &rest[end + 1..];
        } else {
            out.push(&rest[..c.len_utf8()]);
            rest = &rest[c.len_utf8()..];
        }
    }
    Some(out)
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            is_range(p, false, false)
                || (!p.is_empty()
                    && p.len() <= 3
                    && p.bytes().all(|c| c.is_ascii_digit())
                    && (p.len() < 3
                        || p.starts_with(['0', '1'])
                        || p.parse::<u16>().is_ok_and(|v| v <= 255)))
        })
}

fn ipv6_component(p: &str) -> bool {
    (!p.is_empty() && p.len() <= 4 && p.bytes().all(|c| c.is_ascii_hexdigit()))
        || is_range(p, false, true)
}

fn is_ipv6(s: &str) -> bool {
    // IPv4-in-IPv6 forms: the last part is dotted.
    if let Some(dot_start) = s.rfind(':').filter(|_| s.contains('.')) {
        let (head, v4) = (&s[..=dot_start], &s[dot_start + 1..]);
        let v4_ok = {
            let p: Vec<&str> = v4.split('.').collect();
            p.len() == 4 && p.iter().all(|c| ipv6_component(c))
        };
        let h = head.to_ascii_lowercase();
        return v4_ok
            && (h == "0:0:0:0:0:0:" || h == "::" || h == "::ffff:" || h == "0:0:0:0:0:ffff:");
    }
    match s.find("::") {
        Some(i) => {
            if s[i + 2..].contains("::") {
                return false;
            }
            let side = |t: &str| -> Option<usize> {
                if t.is_empty() {
                    return Some(0);
                }
                let parts: Vec<&str> = t.split(':').collect();
                parts
                    .iter()
                    .all(|p| ipv6_component(p))
                    .then_some(parts.len())
            };
            match (side(&s[..i]), side(&s[i + 2..])) {
                (Some(l), Some(r)) => l + r <= 7 && l <= 6 && r <= 6 || (l + r == 0),
                _ => false,
            }
        }
        None => {
            let parts: Vec<&str> = s.split(':').collect();
            parts.len() == 8 && parts.iter().all(|p| ipv6_component(p))
        }
    }
}

/// A DNS-like name whose labels are word characters, `-` and alphanumeric ranges, each
/// label starting with a word character or a range and not ending in `-` or `_`.
fn is_hostname(s: &str) -> bool {
    s.split('.').all(|label| {
        let Some(us) = units(label) else { return false };
        let Some(first) = us.first() else {
            return false;
        };
        let word = |u: &str| u.chars().all(|c| c.is_alphanumeric() || c == '_');
        let ok_unit = |u: &str| {
            u.len() > 1 && u.starts_with('[') && is_range(u, true, false) || word(u) || u == "-"
        };
        (word(first) || (first.starts_with('[') && is_range(first, true, false)))
            && us.iter().all(|u| ok_unit(u))
            && !label.ends_with(['-', '_'])
    })
}

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `expand_hostname_range`: the first `[begin:end(:step)]` expanded, then each result again.
fn expand_range(line: &str, out: &mut Vec<String>) -> Result<(), String> {
    let open = line.find('[').ok_or("no range")?;
    let after = &line[open + 1..];
    // Python replaces the first `]` of the whole line, which may come before the `[`.
    let Some(close) = line.find(']').filter(|c| *c > open) else {
        return Err(format!("host range in `{line}` has no closing `]`"));
    };
    let head = &line[..open];
    let nrange = &after[..close - open - 1];
    let tail = &line[close + 1..];
    if tail.contains('|') || head.contains('|') || nrange.contains('|') {
        return Err(format!("`{line}` is not a valid host range"));
    }
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err("host range must be begin:end or begin:end:step".into());
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err("host range must specify end value".into());
    }
    let step_text = bounds.get(2).copied().unwrap_or("1");
    let width = if beg.starts_with('0') && beg.len() > 1 {
        if beg.len() != end.len() {
            return Err("host range must specify equal-length begin and end formats".into());
        }
        beg.len()
    } else {
        0
    };
    let step: i64 = step_text
        .trim()
        .parse()
        .map_err(|_| format!("host range step `{step_text}` is not a number"))?;
    let mut names: Vec<String> = Vec::new();
    if let (Some(b), Some(e)) = (LETTERS.find(beg), LETTERS.find(end)) {
        if b > e {
            return Err("host range must have begin <= end".into());
        }
        if step <= 0 {
            return Err("host range step must be positive".into());
        }
        let seq = &LETTERS.as_bytes()[b..=e];
        names.extend(
            seq.iter()
                .step_by(step as usize)
                .map(|c| (*c as char).to_string()),
        );
    } else {
        let parse = |t: &str| {
            t.trim()
                .parse::<i64>()
                .map_err(|_| format!("host range bound `{t}` is not a number or a letter"))
        };
        let (b, e) = (parse(beg)?, parse(end)?);
        if step == 0 {
            return Err("host range step must not be zero".into());
        }
        let count = if step > 0 && e >= b {
            ((e - b) / step + 1) as u128
        } else if step < 0 && b > e + 1 {
            ((b - e - 2) / -step + 1) as u128
        } else {
            0
        };
        if count > MAX_HOSTS as u128 {
            return Err(format!(
                "host range `{nrange}` expands to more than {MAX_HOSTS} hosts"
            ));
        }
        let mut i = b;
        while (step > 0 && i <= e) || (step < 0 && i > e + 1) {
            names.push(format!("{i:0width$}"));
            i += step;
        }
    }
    for n in names {
        let name = format!("{head}{n}{tail}");
        if name.contains('[') {
            expand_range(&name, out)?;
        } else {
            out.push(name);
        }
        if out.len() > MAX_HOSTS {
            return Err(format!("`{line}` expands to more than {MAX_HOSTS} hosts"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &str) -> Vec<String> {
        expand(p).unwrap().0
    }

    #[test]
    fn ranges_expand_as_ansible_does() {
        assert_eq!(
            names("www[01:03].example.com"),
            [
                "www01.example.com",
                "www02.example.com",
                "www03.example.com"
            ]
        );
        assert_eq!(names("www[01:07:3]"), ["www01", "www04", "www07"]);
        assert_eq!(
            names("db-[99:101]-node"),
            ["db-99-node", "db-100-node", "db-101-node"]
        );
        assert_eq!(names("db-[a:c]"), ["db-a", "db-b", "db-c"]);
        assert_eq!(names("h[1:2]-[a:b]"), ["h1-a", "h1-b", "h2-a", "h2-b"]);
        assert_eq!(names("h[:2]"), ["h0", "h1", "h2"]);
        assert_eq!(
            expand("h[01:100]").unwrap_err(),
            "host range must specify equal-length begin and end formats"
        );
        assert_eq!(
            expand("h[1:]").unwrap_err(),
            "host range must specify end value"
        );
        assert_eq!(
            expand("h[1:2:3:4]").unwrap_err(),
            "host range must be begin:end or begin:end:step"
        );
        assert_eq!(
            expand("h[c:a]").unwrap_err(),
            "host range must have begin <= end"
        );
        assert!(
            expand("h[0:99999999999]")
                .unwrap_err()
                .contains("more than")
        );
    }

    #[test]
    fn ports_and_addresses() {
        assert_eq!(
            expand("badwolf.example.com:5309").unwrap(),
            (vec!["badwolf.example.com".into()], Some(5309))
        );
        assert_eq!(
            expand("192.0.2.11:8022").unwrap(),
            (vec!["192.0.2.11".into()], Some(8022))
        );
        assert_eq!(
            expand("fe80::1610:9fff:fedd:654b").unwrap(),
            (vec!["fe80::1610:9fff:fedd:654b".into()], None)
        );
        assert_eq!(
            expand("[fe80::1610:9fff:fedd:b654]:1022").unwrap(),
            (vec!["fe80::1610:9fff:fedd:b654".into()], Some(1022))
        );
        assert_eq!(
            expand("www[01:02].example.com:22").unwrap(),
            (
                vec!["www01.example.com".into(), "www02.example.com".into()],
                Some(22)
            )
        );
        // Not an address: taken whole, port included.
        assert_eq!(expand("bad_:22").unwrap(), (vec!["bad_:22".into()], None));
        assert!(parse_address("host:99999").is_none());
    }
}
