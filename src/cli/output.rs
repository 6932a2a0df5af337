//! Writing a command's result, and the progress bar on stderr.
use std::io::{IsTerminal, Write};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use std::path::Path;

use super::OutputArgs;

impl OutputArgs {
    /// Checks the output file before any work: see [`check_output_path`].
    pub fn prepare(&self, inputs: &[&Path]) -> anyhow::Result<()> {
        match &self.output {
            Some(path) => check_output_path(path, inputs),
            None => Ok(()),
        }
    }
}

/// Refuses an output file whose directory is missing, that is a directory, or that is one of
/// the command's `inputs` (writing it would replace the model being read), before any work.
pub fn check_output_path(path: &Path, inputs: &[&Path]) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("cannot write {}: it is a directory", path.display());
    }
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            anyhow::bail!(
                "cannot write {}: {} is not a directory",
                path.display(),
                parent.display()
            );
        }
    }
    if let Ok(target) = std::fs::canonicalize(path) {
        if inputs
            .iter()
            .any(|input| std::fs::canonicalize(input).is_ok_and(|input| input == target))
        {
            anyhow::bail!(
                "cannot write {}: it is an input of this command (refusing to replace it)",
                path.display()
            );
        }
    }
    Ok(())
}

impl OutputArgs {
    /// Writes `result` in the chosen format to the chosen file or to stdout.
    pub fn emit(&self, result: &impl crate::report::Render) -> anyhow::Result<()> {
        write_output(self, &result.render(self.format)?)
    }
}

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
    styled_bar(
        quiet,
        &format!("{{spinner}} {what} {{pos}}/{{len}} [{{bar:30}}] {{elapsed}} {{wide_msg}}"),
    )
}

/// Moves `bar` to `done` of `total`, naming what is under way.
pub fn advance(bar: &ProgressBar, done: usize, total: usize, name: &str) {
    bar.set_length(total as u64);
    bar.set_position(done as u64);
    bar.set_message(name.to_string());
}

/// [`progress_bar`] counting bytes, with the rate: `zoo` over models of very different sizes.
pub fn bytes_progress_bar(quiet: bool, what: &str) -> ProgressBar {
    styled_bar(
        quiet,
        &format!("{{spinner}} {what} {{binary_bytes}}/{{binary_total_bytes}} [{{bar:30}}] {{binary_bytes_per_sec}} {{elapsed}} {{wide_msg}}"),
    )
}

fn styled_bar(quiet: bool, template: &str) -> ProgressBar {
    let visible = !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}
