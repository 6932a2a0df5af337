//! The library's error type: one variant per way an analysis can fail, each a one-line message.
use std::path::PathBuf;

/// Everything that can go wrong between a file on disk and a table of statistics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file or directory could not be created or written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file's content is not a format rmt-torch reads (or is corrupt beyond recognition).
    #[error("{path}: {message}")]
    UnsupportedFormat { path: PathBuf, message: String },
    /// The file is a recognised format but its content is damaged or truncated.
    #[error("{path}: corrupt or truncated {format}: {message}")]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    /// A tensor holds NaN or infinite values, so no spectrum of it means anything.
    #[error(
        "tensor '{name}' has {count} non-finite values (NaN or Inf): its spectrum is undefined"
    )]
    NonFinite { name: String, count: i64 },
    /// WᵀW overflowed although every entry is finite.
    #[error("tensor '{name}': WᵀW overflows (entries too large for the Gram product; try --precision f64)")]
    Overflow { name: String },
    /// The selection left no weight matrix to analyse.
    #[error("no weight matrices to analyse: {0}")]
    NoWeightMatrices(String),
    /// A layer (or another result) needs more memory than the device has.
    #[error("{name} needs about {needed_gib:.1} GiB on {device} but only {available_gib:.1} GiB are available")]
    TooLarge {
        name: String,
        device: String,
        needed_gib: f64,
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
    InvalidParameter { name: &'static str, reason: String },
    /// The requested device is not available.
    #[error("device {0} is not available on this machine")]
    DeviceUnavailable(String),
    /// libtorch reported an error; only its first line is kept.
    #[error("libtorch: {0}")]
    Torch(String),
    /// A figure could not be drawn or written.
    #[error("cannot draw figure {0}")]
    Plot(String),
}

impl From<tch::TchError> for Error {
    fn from(err: tch::TchError) -> Self {
        Error::Torch(first_line(&err.to_string()))
    }
}

impl Error {
    /// An [`Error::InvalidParameter`] for parameter `name`.
    pub fn parameter(name: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// Keeps the first meaningful line of a libtorch message: the rest is a C++ backtrace.
pub(crate) fn first_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("Exception raised from"))
        .unwrap_or("unknown error")
        .to_string()
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
