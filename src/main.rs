//! The binary: all of it lives in the library; `vmpulse::cli::main` parses the flags,
//! resolves the config and runs the chosen frontend.

fn main() -> std::process::ExitCode {
    vmpulse::cli::main()
}
