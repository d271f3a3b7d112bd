//! libFuzzer target `inputs`: a command line and the files it names (inventory, roles,
//! templates, secrets), run through everything rollout does before it contacts a host. See
//! `fuzz/harness.rs` for the input format and what counts as a finding.
#![no_main]

#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

use std::path::PathBuf;
use std::sync::OnceLock;

#[global_allocator]
static ALLOC: harness::CappedAlloc = harness::CappedAlloc;

static ROOT: OnceLock<PathBuf> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let root = ROOT.get_or_init(harness::setup);
    let printed = harness::run_inputs(data, root);
    // To see what rollout would print for an input: FUZZ_SHOW=1 TARGET FILE.
    if std::env::var_os("FUZZ_SHOW").is_some() {
        eprintln!("{printed}");
    }
});
