//! The emulators under lab/ (BBB API, Scalelite, b3scale) have their own Python test suite;
//! run it from `cargo test` so the README's one test command covers them too.

#[test]
fn emulator_suite_passes() {
    let out = std::process::Command::new("python3")
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "lab/emulators",
            "-t",
            "lab/emulators",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 is installed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "emulator tests failed:\n{err}");
    assert!(err.contains("\nOK"), "no emulator test ran:\n{err}");
}
