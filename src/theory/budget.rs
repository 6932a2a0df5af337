//! What a simulation may cost, checked before anything is allocated or run: its memory against
//! what the host has, its work against a stated limit. A typo (`--n 1000000`) is refused in one
//! line instead of aborting on a terabyte allocation or running for days.
use std::fmt::Display;

use crate::error::{Error, Result};

/// The work limit: floating-point operations one theory command may ask for (the defaults ask
/// for at most a few 10⁹).
pub const MAX_OPERATIONS: f64 = 1e12;

/// Refuses a simulation of the sizes `what` describes (`n = 64, d = 6400000000`) when it needs
/// more than [`MAX_OPERATIONS`] operations or more memory than the host has.
pub fn check(what: impl Display, bytes: f64, operations: f64) -> Result<()> {
    if operations.is_nan() || operations > MAX_OPERATIONS {
        return Err(Error::InvalidOption(format!(
            "{what} asks for about {operations:.1e} floating-point operations, over the limit of {MAX_OPERATIONS:.0e}"
        )));
    }
    crate::environment::ensure_host_memory(|| what.to_string(), tch::Device::Cpu, bytes)
}

/// `values` as f64s, for size arithmetic that must not overflow.
pub fn sizes<const N: usize>(values: [usize; N]) -> [f64; N] {
    values.map(|value| value as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sizes_are_refused_by_name() {
        assert!(check("n = 100", 1e6, 1e9).is_ok());
        let work = check("depth 1000000000", 1e6, 1e18)
            .unwrap_err()
            .to_string();
        assert!(
            work.starts_with("invalid option: depth 1000000000 asks for"),
            "{work}"
        );
        let memory = check("n = 1000000", 8e15, 1e9).unwrap_err().to_string();
        assert!(memory.starts_with("n = 1000000 needs about"), "{memory}");
        assert!(check("dt = NaN", 0.0, f64::NAN).is_err());
    }
}
