//! The fuzz targets' seeds (`fuzz/seeds/`) and every input a fuzzer once broke rollout with
//! (`fuzz/regressions/`), replayed through the fuzz harness (`fuzz/harness.rs`) by plain
//! `cargo test`: no panic, no secret canary in error text, at most 512 MiB of live heap
//! (the harness's allocator aborts past it) and at most [`DEADLINE`] per input. The
//! coverage-guided search itself runs under `fuzz/run` (libFuzzer, in CI for a few minutes).

#[allow(dead_code)]
#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: harness::CappedAlloc = harness::CappedAlloc;

/// Per input; the fuzz runs use the same bound (`-timeout` in `fuzz/run`).
const DEADLINE: Duration = Duration::from_secs(10);

/// The files of `dir`, sorted (none if it does not exist).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

#[test]
fn seeds_and_past_findings_pass_the_fuzz_oracle() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = harness::setup();
    let mut failures = Vec::new();
    let mut count = 0;
    for target in ["inputs", "template"] {
        let seeds = inputs(&repo.join("fuzz/seeds").join(target));
        assert!(
            seeds.len() > 10,
            "fuzz/seeds/{target} holds the seed corpus"
        );
        let regressions = inputs(&repo.join("fuzz/regressions").join(target));
        for file in seeds.into_iter().chain(regressions) {
            count += 1;
            let data = std::fs::read(&file).expect("input readable");
            let (tx, rx) = mpsc::channel();
            let dir = root.clone();
            let started = Instant::now();
            // A thread, so that a hang is reported with its input instead of blocking the
            // test run; the inputs run one after another (they share the current directory).
            std::thread::spawn(move || {
                let r = std::panic::catch_unwind(|| match target {
                    "inputs" => harness::run_inputs(&data, &dir),
                    _ => harness::run_template(&data, &dir),
                });
                let _ = tx.send(r.is_ok());
            });
            match rx.recv_timeout(DEADLINE) {
                Ok(true) => {}
                Ok(false) => failures.push(format!("{}: panicked (see above)", file.display())),
                Err(_) => panic!(
                    "{}: still running after {DEADLINE:?}; failures so far: {failures:?}",
                    file.display()
                ),
            }
            let took = started.elapsed();
            if std::env::var_os("FUZZ_TIMES").is_some() {
                eprintln!("{:>8.1?} {}", took, file.display());
            }
            assert!(took < DEADLINE, "{}: took {took:?}", file.display());
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz findings:\n{}",
        failures.join("\n")
    );
    eprintln!("{count} fuzz inputs replayed");
}
