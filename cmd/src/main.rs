//! The `cl2` binary: the command line with the built-in measurements.

fn main() -> std::process::ExitCode {
    cl2::run_cli(cl2::builtin_registry())
}
