//! The service half of a node's health check: every BigBlueButton service is up, as
//! `bbb-conf --status` lists them for BBB 3.0, asked with `systemctl is-active` over the
//! node's own connection (one script, one round trip). The list and its conditions follow
//! `display_bigbluebutton_status` in bigbluebutton-config/bin/bbb-conf (see
//! docs/sources.md): a fixed set of units, and more units when their unit file is installed
//! (etherpad when `/usr/share/etherpad-lite/settings.json` exists).

use crate::connection::{ConnError, Connector};
use crate::inventory::Host;

/// Units every BBB 3.0 node runs; each must be `active`. bbb-conf lists nginx, freeswitch,
/// redis-server, bbb-apps-akka and bbb-fsesl-akka always; bbb-webrtc-sfu, bbb-web and
/// bbb-graphql-server when installed, which a BBB 3.0 node always is (the `bigbluebutton`
/// package depends on them), so a missing one fails here.
pub const REQUIRED: &[&str] = &[
    "nginx",
    "freeswitch",
    "redis-server",
    "bbb-apps-akka",
    "bbb-fsesl-akka",
    "bbb-webrtc-sfu",
    "bbb-web",
    "bbb-graphql-server",
];

/// Units checked only when `/usr/lib/systemd/system/UNIT.service` exists, as bbb-conf does
/// (optional packages such as bbb-webhooks, and the recording units).
pub const IF_INSTALLED: &[&str] = &[
    "bbb-graphql-actions",
    "bbb-graphql-middleware",
    "bbb-webrtc-recorder",
    "bbb-webhooks",
    "bbb-pads",
    "bbb-export-annotations",
    "bbb-rap-caption-inbox",
    "bbb-rap-resque-worker",
    "bbb-rap-starter",
    "bbb-transcription-controller",
];

/// What bbb-conf checks for etherpad (it has no unit file of its own under that name's
/// package path): the unit `etherpad` when this file exists.
pub const ETHERPAD_SETTINGS: &str = "/usr/share/etherpad-lite/settings.json";

/// The last line of a complete answer.
const DONE: &str = "rollout-services: done";
/// The answer of a host without systemctl.
const NO_SYSTEMCTL: &str = "rollout-services: no systemctl";

/// The remote script (POSIX sh, no secrets): one `unit NAME STATE` line per unit checked,
/// then [`DONE`].
pub fn script() -> String {
    format!(
        "command -v systemctl >/dev/null 2>&1 || {{ echo '{NO_SYSTEMCTL}'; exit 0; }}\n\
         state() {{ printf 'unit %s %s\\n' \"$1\" \"$(systemctl is-active \"$1.service\" 2>/dev/null)\"; }}\n\
         for u in {required}; do state \"$u\"; done\n\
         for u in {optional}; do if [ -f \"/usr/lib/systemd/system/$u.service\" ]; then state \"$u\"; fi; done\n\
         if [ -f {ETHERPAD_SETTINGS} ]; then state etherpad; fi\n\
         echo '{DONE}'\n",
        required = REQUIRED.join(" "),
        optional = IF_INSTALLED.join(" "),
    )
}

/// One unit and what `systemctl is-active` said (`active`, `inactive`, `failed`,
/// `activating`, ...; `unknown` when it said nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub unit: String,
    pub state: String,
}

/// Reads the script's answer.
///
/// Errors: no systemctl on the host, or an answer that is not the script's (cut short, or
/// a line of another shape), as text for the node's line.
pub fn parse(stdout: &str) -> Result<Vec<UnitState>, String> {
    let mut out = Vec::new();
    let mut done = false;
    for line in stdout.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if line == NO_SYSTEMCTL {
            return Err("the node has no systemctl: its BBB services cannot be checked".into());
        }
        if line == DONE {
            done = true;
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("unit"), Some(unit), state, None) => out.push(UnitState {
                unit: unit.to_string(),
                state: state.unwrap_or("unknown").to_string(),
            }),
            _ => {
                return Err(format!(
                    "the service check answered an unexpected line: {}",
                    line.chars().take(120).collect::<String>()
                ));
            }
        }
    }
    if !done {
        return Err("the service check's answer was cut short".into());
    }
    Ok(out)
}

/// The verdict on the units: how many were checked, or the text naming every unit that is
/// not `active` with its state (`BBB services not running: bbb-webrtc-sfu (inactive),
/// redis-server (failed)`).
pub fn verdict(units: &[UnitState]) -> Result<usize, String> {
    let down: Vec<String> = units
        .iter()
        .filter(|u| u.state != "active")
        .map(|u| format!("{} ({})", u.unit, u.state))
        .collect();
    if down.is_empty() {
        Ok(units.len())
    } else {
        Err(format!("BBB services not running: {}", down.join(", ")))
    }
}

/// Checks the node's services over its own connection; the number of units that are up.
///
/// Errors: the host cannot be reached or cannot run the script, its answer cannot be read,
/// or a unit is not `active` (named with its state), as text for the node's line.
pub async fn check(connector: &dyn Connector, host: &Host) -> Result<usize, String> {
    let conn = connector
        .connect(host)
        .await
        .map_err(|e| format!("service check: {}", describe(&e)))?;
    let run = conn.run(&script(), &mut |_| {}).await;
    conn.close().await;
    let finished = run.map_err(|e| format!("service check: {}", describe(&e)))?;
    verdict(&parse(&finished.stdout)?)
}

fn describe(e: &ConnError) -> String {
    match e {
        ConnError::Unreachable(m) => format!("host unreachable: {m}"),
        ConnError::Remote(m) => m.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_unit_that_is_not_active() {
        let answer = "unit nginx active\nunit bbb-webrtc-sfu inactive\nunit redis-server failed\n\
                      unit bbb-web activating\nunit bbb-pads\nrollout-services: done\n";
        let units = parse(answer).unwrap();
        assert_eq!(units.len(), 5);
        assert_eq!(units[4].state, "unknown");
        assert_eq!(
            verdict(&units).unwrap_err(),
            "BBB services not running: bbb-webrtc-sfu (inactive), redis-server (failed), bbb-web (activating), bbb-pads (unknown)"
        );
        let up = "unit nginx active\nunit bbb-web active\nrollout-services: done\n";
        assert_eq!(verdict(&parse(up).unwrap()), Ok(2));
    }

    #[test]
    fn a_cut_or_foreign_answer_is_an_error_not_a_pass() {
        assert!(
            parse("unit nginx active\n")
                .unwrap_err()
                .contains("cut short")
        );
        assert!(
            parse("Welcome!\nrollout-services: done\n")
                .unwrap_err()
                .contains("unexpected line: Welcome!")
        );
        assert!(
            parse("rollout-services: no systemctl\n")
                .unwrap_err()
                .contains("no systemctl")
        );
        // Nothing checked at all is not a healthy node either: the required units always
        // answer, so an empty list means the script did not run as written.
        assert!(parse("").is_err());
    }

    #[test]
    fn the_script_checks_what_bbb_conf_status_lists() {
        let s = script();
        // The units BBB 3.0's bbb-conf --status always shows (docs/sources.md), written out
        // here rather than read from REQUIRED, so dropping one from the list fails this test.
        let bbb_conf = [
            "nginx",
            "freeswitch",
            "redis-server",
            "bbb-apps-akka",
            "bbb-fsesl-akka",
            "bbb-webrtc-sfu",
            "bbb-web",
            "bbb-graphql-server",
        ];
        assert_eq!(REQUIRED, bbb_conf);
        for u in REQUIRED {
            assert!(s.contains(&format!(" {u}")), "{u}");
        }
        for u in IF_INSTALLED {
            assert!(s.contains(u), "{u}");
        }
        assert!(s.contains("/usr/lib/systemd/system/$u.service"));
        assert!(s.contains(ETHERPAD_SETTINGS));
    }

    fn host(name: &str) -> Host {
        Host::named(name)
    }

    #[tokio::test]
    async fn one_script_per_check_over_the_nodes_connection() {
        let fake = crate::connection::fake::FakeConnector::new(|host, _script| {
            Ok(if host == "bbb02" {
                "unit nginx active\nunit bbb-webrtc-sfu failed\nrollout-services: done\n".into()
            } else {
                "unit nginx active\nunit bbb-web active\nrollout-services: done\n".into()
            })
        });
        assert_eq!(check(&fake, &host("bbb01")).await, Ok(2));
        assert_eq!(
            check(&fake, &host("bbb02")).await.unwrap_err(),
            "BBB services not running: bbb-webrtc-sfu (failed)"
        );
        assert_eq!(fake.scripts("bbb01"), [script()]);
        let mut down = fake.clone();
        down.unreachable = vec!["bbb03".into()];
        assert!(
            check(&down, &host("bbb03"))
                .await
                .unwrap_err()
                .starts_with("service check: host unreachable: ")
        );
    }

    #[test]
    fn the_script_runs_in_sh_and_reports_every_required_unit() {
        // On the controller (no BBB here): every required unit answers, none active.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        match parse(&text) {
            Ok(units) => {
                let names: Vec<&str> = units.iter().map(|u| u.unit.as_str()).collect();
                assert_eq!(&names[..REQUIRED.len()], REQUIRED);
                assert!(verdict(&units).is_err());
            }
            Err(e) => assert!(e.contains("no systemctl"), "{e}: {text}"),
        }
    }
}
