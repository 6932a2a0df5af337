//! Writing a command's result, and the progress bar on stderr.
use std::io::{IsTerminal, Write};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::OutputArgs;

/// Writes `text` to the chosen file or to stdout.
pub fn write_output(args: &OutputArgs, text: &str) -> anyhow::Result<()> {
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// A progress bar over `what` on stderr, hidden with `--quiet`, in CI, or when stderr is not a
/// terminal.
pub fn progress_bar(quiet: bool, what: &str) -> ProgressBar {
    let visible = !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}}/{{len}} [{{bar:30}}] {{elapsed}} {{wide_msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}
