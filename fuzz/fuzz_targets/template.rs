//! libFuzzer target `template`: a template and its variables, rendered with rollout's
//! template environment (strict, fuel, output cap, its filters) as a file, an inline value
//! and a `when:` expression. See `fuzz/harness.rs`.
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
    let printed = harness::run_template(data, root);
    // To see what rollout would print for an input: FUZZ_SHOW=1 TARGET FILE.
    if std::env::var_os("FUZZ_SHOW").is_some() {
        eprintln!("{printed}");
    }
});
