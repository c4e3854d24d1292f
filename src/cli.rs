//! Command-line flags and the top-level `run`: config -> engine -> frontend.

pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
