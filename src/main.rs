//! Entry point: install error hooks, then hand over to `vmpulse::cli::main`.

fn main() -> std::process::ExitCode {
    vmpulse::cli::main()
}
