//! A Scalelite pool of real lab hosts for the lab pool tests (`pool_lab`, `lab_health`): the
//! lab's generated inventory with the `bbbnode` fixture role on every host (each node's
//! `bbb_ip` from the lab's `hosts` file), the Scalelite emulator as balancer, and one runner
//! for rollout against it. Included with `#[path]` next to `common` and `support`.

use crate::common::{self, Lab};
use crate::support::{self, Balancer, Kind, Output, finish};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct LabPool {
    pub lab: Lab,
    pub balancer: Balancer,
    /// The inventory rollout runs with (`pool-test.yml` in the lab's state folder).
    pub inventory: PathBuf,
    state: PathBuf,
    ips: Vec<(String, String)>,
}

impl LabPool {
    /// Starts lab `name` with `n` hosts and the emulated balancer, and writes the inventory
    /// with `health_timeout` (seconds) in its `balancer:` section.
    pub fn start(name: &str, n: usize, health_timeout: u64) -> LabPool {
        let lab = common::lab(name, n);
        let balancer = Balancer::start(Kind::Scalelite);
        let ips: Vec<(String, String)> = std::fs::read_to_string(lab.state.join("hosts"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(h, a)| (h.to_string(), a.trim().to_string()))
            })
            .collect();
        let generated = std::fs::read_to_string(lab.state.join("inventory.yml")).unwrap();
        let fixture = common::repo().join("tests/fixtures/pool_lab");
        let mut inv = format!(
            "roles_path: {}\ntemplates_path: {}\n",
            fixture.join("roles").display(),
            fixture.join("templates").display()
        );
        for line in generated.lines() {
            inv.push_str(line);
            inv.push('\n');
            if line == "    lab:" {
                inv.push_str("      roles: [bbbnode]\n      vars:\n        bbb_secret: {secret: \"env:ROLLOUT_TEST_BBB_SECRET\"}\n");
            }
            if let Some((_, ip)) = line
                .trim()
                .strip_suffix(':')
                .and_then(|h| ips.iter().find(|(n, _)| n == h))
            {
                inv.push_str(&format!("          vars: {{bbb_ip: {ip}}}\n"));
            }
        }
        inv.push_str(&format!(
            "balancer:\n  kind: scalelite\n  url: {}\n  secret: {{secret: \"env:ROLLOUT_TEST_LB_SECRET\"}}\n  group: lab\n  poll_interval: 1\n  health_timeout: {health_timeout}\n",
            balancer.url()
        ));
        let inventory = lab.state.join("pool-test.yml");
        std::fs::write(&inventory, inv).unwrap();
        let state = lab.state.join("rollout-state");
        LabPool {
            lab,
            balancer,
            inventory,
            state,
            ips,
        }
    }

    /// The lab address of `host`.
    pub fn ip(&self, host: &str) -> String {
        self.ips.iter().find(|(n, _)| n == host).unwrap().1.clone()
    }

    /// `rollout SUBCOMMAND INVENTORY REST...` with the test secrets and state folder, no
    /// terminal, stdout and stderr piped (`args[0]` is the subcommand).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rollout"));
        c.arg(args[0])
            .arg(&self.inventory)
            .args(&args[1..])
            .env("ROLLOUT_TEST_BBB_SECRET", support::BBB_SECRET)
            .env("ROLLOUT_TEST_LB_SECRET", support::LB_SECRET)
            .env("ROLLOUT_STATE_DIR", &self.state)
            .env_remove("TERM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs [`LabPool::command`] to its end (at most `limit` seconds) and checks that no
    /// secret was printed.
    pub fn run(&self, args: &[&str], limit: u64) -> Output {
        let out = finish(
            self.command(args).spawn().unwrap(),
            Duration::from_secs(limit),
        );
        out.assert_no_secrets();
        out
    }
}
