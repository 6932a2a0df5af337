//! The library's error type: one variant per way an analysis can fail, each a one-line message.
use std::path::PathBuf;

/// Everything that can go wrong between a file on disk and a table of statistics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file or directory could not be created or written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file's content is not a format rmt-torch reads (or is corrupt beyond recognition).
    #[error("{path}: {message}")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// Why it is not read.
        message: String,
    },
    /// The file is a recognised format but its content is damaged or truncated.
    #[error("{path}: corrupt or truncated {format}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The format it was read as.
        format: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A tensor holds NaN or infinite values, so no spectrum of it means anything.
    #[error(
        "tensor '{name}' has {count} non-finite values (NaN or Inf): its spectrum is undefined"
    )]
    NonFinite {
        /// The tensor.
        name: String,
        /// How many of its entries are NaN or infinite.
        count: i64,
    },
    /// WᵀW overflowed although every entry is finite.
    #[error("tensor '{name}': WᵀW overflows (entries too large for the Gram product; try --precision f64)")]
    Overflow {
        /// The tensor.
        name: String,
    },
    /// A layer's squared singular values lie outside float64's range (entries far below 1e-150
    /// or above 1e150) although its entries are finite and not all zero.
    #[error("tensor '{name}': entries of magnitude about 2^{exponent} have squared singular values outside float64's range; rescale the weights to analyse it")]
    OutOfRange {
        /// The tensor.
        name: String,
        /// The power of two of its largest entries.
        exponent: i32,
    },
    /// The selection left no weight matrix to analyse.
    #[error("no weight matrices to analyse: {0}")]
    NoWeightMatrices(String),
    /// A layer (or another result) needs more memory than the device has.
    #[error("{name} needs about {needed_gib:.1} GiB on {device} but only {available_gib:.1} GiB are available")]
    TooLarge {
        /// The tensor or result.
        name: String,
        /// The device.
        device: String,
        /// GiB it needs.
        needed_gib: f64,
        /// GiB available.
        available_gib: f64,
    },
    /// The input to a computation does not fit it (an input batch the model rejects, a model
    /// whose samples interact, integer inputs to differentiate, …).
    #[error("{0}")]
    InvalidInput(String),
    /// An option's value is out of range or malformed.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// One analysis parameter is out of range: `name` is its library (and Python keyword)
    /// spelling, shown as the command-line flag it comes from.
    #[error("invalid option --{flag}: {reason}", flag = name.replace('_', "-"))]
    InvalidParameter {
        /// The parameter's library spelling.
        name: String,
        /// Why its value is refused.
        reason: String,
    },
    /// A name that is not one of those known: an option, a format, a loss…
    #[error("unknown {what} '{name}'{hint}: expected {expected}",
        hint = closest(name, known).map_or_else(String::new, |c| format!(" (did you mean '{c}'?)")),
        expected = known.join(", "))]
    UnknownName {
        /// What kind of name it is.
        what: &'static str,
        /// The name given.
        name: String,
        /// Every name accepted.
        known: Vec<String>,
    },
    /// Results could not be written as JSON (a number JSON cannot hold, a writer that failed).
    #[error("cannot write {what} as JSON: {reason}")]
    Serialize {
        /// What was being written.
        what: &'static str,
        /// serde_json's reason.
        reason: String,
    },
    /// A worker thread panicked: a bug in rmt-torch or libtorch, never the input's fault.
    #[error("internal error: a worker thread panicked while {task}")]
    Panicked {
        /// What the thread was doing.
        task: String,
    },
    /// The requested device is not available.
    #[error("device {0} is not available on this machine")]
    DeviceUnavailable(String),
    /// libtorch reported an error; only its first line is kept.
    #[error("libtorch: {0}")]
    Torch(String),
    /// libtorch reported an error while a model's layer was read or analysed.
    #[error("{}: layer '{layer}': libtorch: {message}", path.display())]
    TorchInLayer {
        /// The model file.
        path: PathBuf,
        /// The layer.
        layer: String,
        /// libtorch's message ([`Error::Torch`]'s).
        message: String,
    },
    /// A figure could not be drawn or written.
    #[error("cannot draw figure {0}")]
    Plot(String),
}

impl From<tch::TchError> for Error {
    fn from(err: tch::TchError) -> Self {
        Error::Torch(torch_message(&err.to_string()))
    }
}

impl Error {
    /// An [`Error::InvalidParameter`] for parameter `name`.
    pub fn parameter(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::UnknownName`]: `name` is no `what` of `known`.
    pub fn unknown_name(what: &'static str, name: &str, known: &[impl AsRef<str>]) -> Self {
        Self::UnknownName {
            what,
            name: name.to_string(),
            known: known.iter().map(|k| k.as_ref().to_string()).collect(),
        }
    }

    /// This error, said to have happened in `layer` of the model at `path`: a libtorch error
    /// then names both (the others already name what they are about).
    pub fn in_layer(self, path: &std::path::Path, layer: &str) -> Self {
        match self {
            Self::Torch(message) => Self::TorchInLayer {
                path: path.to_path_buf(),
                layer: layer.to_string(),
                message,
            },
            other => other,
        }
    }

    /// An [`Error::Serialize`] of `what`.
    pub fn serialize(what: &'static str, err: serde_json::Error) -> Self {
        Self::Serialize {
            what,
            reason: err.to_string(),
        }
    }

    /// The kind of failure: what the command line's exit code and Python's exception class
    /// are chosen by.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { .. } | Self::Write { .. } => ErrorKind::File,
            Self::UnsupportedFormat { .. } | Self::Corrupt { .. } => ErrorKind::File,
            Self::NonFinite { .. } | Self::Overflow { .. } | Self::OutOfRange { .. } => {
                ErrorKind::Input
            }
            Self::NoWeightMatrices(_) | Self::InvalidInput(_) => ErrorKind::Input,
            Self::InvalidOption(_) | Self::InvalidParameter { .. } | Self::UnknownName { .. } => {
                ErrorKind::Option
            }
            Self::TooLarge { .. } | Self::DeviceUnavailable(_) => ErrorKind::Device,
            Self::Torch(_) | Self::TorchInLayer { .. } => ErrorKind::Torch,
            Self::Plot(_) | Self::Serialize { .. } | Self::Panicked { .. } => ErrorKind::Internal,
        }
    }
}

/// The kinds of [`Error`], one per way a caller reacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A file that cannot be read or written: missing, unreadable, not a model, corrupt.
    File,
    /// An option that is unknown, out of range or malformed.
    Option,
    /// Weights or inputs that cannot be analysed: non-finite, no weight matrix, out of range.
    Input,
    /// A device that is not available, or too small for a layer.
    Device,
    /// An error libtorch reported.
    Torch,
    /// Something rmt-torch itself failed at: a figure, JSON output, a worker thread.
    Internal,
}

/// The known name closest to `name` (edit distance at most a third of its length), to suggest.
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, &cb) in b.iter().enumerate() {
                let next = (row[j + 1] + 1)
                    .min(row[j] + 1)
                    .min(diagonal + usize::from(ca != cb));
                diagonal = row[j + 1];
                row[j + 1] = next;
            }
        }
        row[b.len()]
    };
    known
        .iter()
        .map(|k| (distance(name, k), k))
        .filter(|(d, _)| *d > 0 && *d <= name.chars().count().div_ceil(3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// The message of a libtorch error, whole but on one line and without its C++ backtrace. For a
/// failure inside TorchScript code it is the model's own error (`RuntimeError: Expected 4D
/// input …`), the lines after the interpreter's traceback.
pub(crate) fn torch_message(message: &str) -> String {
    let message = message
        .strip_prefix("Internal torch error: ")
        .unwrap_or(message);
    let message = message
        .split("\nException raised from")
        .next()
        .unwrap_or(message);
    // After TorchScript's last traceback, the model's own error is the first line that reads
    // `SomeError: …` (frames are indented, or `file(line): function`).
    let is_error_line = |line: &&str| {
        line.split_once(": ").is_some_and(|(head, _)| {
            !head.is_empty()
                && head
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        })
    };
    let lines: Vec<&str> = match message.rfind("Traceback of TorchScript") {
        Some(at) => message[at..]
            .lines()
            .skip(1)
            .skip_while(|line| !is_error_line(line))
            .collect(),
        None => message.lines().collect(),
    };
    let text = lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty() && !line.starts_with("Exception raised from"))
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        "unknown error".into()
    } else {
        text
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_errors_name_the_file_and_the_layer() {
        let err = Error::Torch("out of memory".into()).in_layer("m.pt".as_ref(), "fc.weight");
        assert_eq!(
            err.to_string(),
            "m.pt: layer 'fc.weight': libtorch: out of memory"
        );
        assert_eq!(err.kind(), ErrorKind::Torch);
        let named = Error::Overflow {
            name: "fc.weight".into(),
        }
        .in_layer("m.pt".as_ref(), "x");
        assert!(matches!(named, Error::Overflow { .. }));
    }

    #[test]
    fn unknown_names_suggest_the_closest_known_one() {
        let err = Error::unknown_name("option", "min_eval", &["min_evals", "max_evals", "layers"]);
        assert_eq!(
            err.to_string(),
            "unknown option 'min_eval' (did you mean 'min_evals'?): expected min_evals, max_evals, layers"
        );
        let far = Error::unknown_name("format", "yaml", &["table", "json", "csv"]);
        assert_eq!(
            far.to_string(),
            "unknown format 'yaml': expected table, json, csv"
        );
        assert_eq!(far.kind(), ErrorKind::Option);
    }

    #[test]
    fn torch_messages_keep_the_models_error_and_drop_tracebacks() {
        let scripted = "Internal torch error: The following operation failed in the TorchScript interpreter.
Traceback of TorchScript, serialized code (most recent call last):
  File \"code/__torch__.py\", line 13, in forward
    x0 = torch.relu((conv1).forward(x, ))
                     ~~~~~~~~~~~~~~ <--- HERE
Traceback of TorchScript, original code (most recent call last):
        return F.conv2d(
               ~~~~~~~~ <--- HERE
            input, weight, bias, self.stride, self.padding, self.dilation, self.groups
        )
RuntimeError: Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [16, 64]
";
        assert_eq!(
            torch_message(scripted),
            "RuntimeError: Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [16, 64]"
        );
        let plain = "Internal torch error: shape '[2, 3]' is invalid for input of size 5
Exception raised from infer_size_impl at aten/src/ATen/InferSize.h:43 (most recent call first):
frame #0: c10::Error::Error(...)";
        assert_eq!(
            torch_message(plain),
            "shape '[2, 3]' is invalid for input of size 5"
        );
        assert_eq!(torch_message(""), "unknown error");
        let traced = "The following operation failed in the TorchScript interpreter.
Traceback of TorchScript, original code (most recent call last):
/usr/lib/python3/torch/nn/modules/linear.py(134): forward
/tmp/make.py(5): forward
RuntimeError: mat1 and mat2 shapes cannot be multiplied (16x64 and 3x2)
";
        assert_eq!(
            torch_message(traced),
            "RuntimeError: mat1 and mat2 shapes cannot be multiplied (16x64 and 3x2)"
        );
    }
}
