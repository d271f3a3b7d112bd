//! Build script: marks the build as one that runs the lab tests when `ROLLOUT_LAB_TESTS=1`
//! (the README's test command), so that without it `cargo test` reports the lab tests as
//! *ignored* (with the reason) instead of passing them silently.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lab_tests)");
    println!("cargo::rerun-if-env-changed=ROLLOUT_LAB_TESTS");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("ROLLOUT_LAB_TESTS").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=lab_tests");
    }
}
