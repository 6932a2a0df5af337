//! The `rmt-torch` binary: parse, run, map errors to a one-line message and an exit code.
mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Exit code for any error (usage errors from clap also exit 2).
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and succeed.
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("{}", one_line_usage_error(&err));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", rmt_torch::report::printable(&one_line(&err)));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes on one line, each cause once: library errors already name their
/// source in their message.
fn one_line(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// clap's message on one line (like every other error), without the usage block: a missing
/// or conflicting flag reads `error: … not provided: --randomize (see --help)`.
fn one_line_usage_error(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    format!("{} (see --help)", lines.join(" "))
}

/// A closed pipe (`rmt-torch analyze … | head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
