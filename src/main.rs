//! The `rmt-torch` binary: the library's command line ([`rmt_torch::cli::main`]) on the
//! process's arguments, its status the exit code.
use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(rmt_torch::cli::main(std::env::args_os()))
}
