fn main() {
    std::process::exit(rollout::cli::main());
}
