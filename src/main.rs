//! The `rollout` binary: everything lives in the library; the command line
//! ([`rollout::cli`]) turns arguments into a subcommand and returns the exit code.

fn main() {
    std::process::exit(rollout::cli::main());
}
