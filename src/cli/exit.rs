//! How the command line ends: exit statuses by the error's kind, and every error on one line.

/// Exit code for an error of the user's input: a file, an option, weights, a device (usage
/// errors from clap too). `zoo` keeps 1 for a policy violated.
pub(super) const EXIT_ERROR: u8 = 2;
/// Exit code for a failure of rmt-torch itself ([`crate::ErrorKind::Internal`]): a bug.
const EXIT_INTERNAL: u8 = 3;

/// The exit code of an error, by its library kind when it has one.
pub(super) fn exit_code(err: &anyhow::Error) -> u8 {
    use crate::ErrorKind;
    match err.downcast_ref::<crate::Error>().map(crate::Error::kind) {
        Some(ErrorKind::Internal) => EXIT_INTERNAL,
        Some(
            ErrorKind::File
            | ErrorKind::Option
            | ErrorKind::Input
            | ErrorKind::Device
            | ErrorKind::Torch,
        )
        | None => EXIT_ERROR,
    }
}

/// The error and its causes on one line, each cause once: library errors already name their
/// source in their message.
pub(super) fn one_line(err: &anyhow::Error) -> String {
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
pub(super) fn one_line_usage_error(err: &clap::Error) -> String {
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
pub(super) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_error_kind() {
        let internal = anyhow::Error::from(crate::Error::Panicked {
            task: "testing".into(),
        });
        assert_eq!(exit_code(&internal), EXIT_INTERNAL);
        let option = anyhow::Error::from(crate::Error::parameter("min_evals", "too small"))
            .context("analysing model.pt");
        assert_eq!(exit_code(&option), EXIT_ERROR);
        assert_eq!(exit_code(&anyhow::anyhow!("a CLI error")), EXIT_ERROR);
    }
}
