//! The `holdspace` binary, built inside the test package so the tests can
//! start it as a real process and kill it (Cargo only exposes binaries to the
//! tests of their own package).

fn main() -> std::process::ExitCode {
    holdspace::cli::main()
}
