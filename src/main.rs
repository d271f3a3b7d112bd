//! The `rollout` binary: everything lives in the library; the command line
//! ([`rollout::cli`]) turns arguments into a subcommand and returns the exit code.

/// Counts what a template render grows the heap by, so a value that grows without bound
/// stops rollout with exit 2 instead of exhausting memory (see `rollout::bounded::render`).
#[global_allocator]
static ALLOC: rollout::bounded::render::BudgetAlloc = rollout::bounded::render::BudgetAlloc;

fn main() {
    std::process::exit(rollout::cli::main());
}
