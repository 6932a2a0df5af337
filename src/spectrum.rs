//! Eigenvalues of WᵀW for stacks of weight matrices, in f64, on the chosen device.
//!
//! The method is the Gram matrix G = WᵀW (M × M, M the smaller side) and `linalg_eigvalsh` of G:
//! exact to ~1e-12 relative for the eigenvalues that matter, and several times faster than an
//! SVD on both CPU and GPU (../shared/MEASURED.md). Slices of a convolution are one batched call.
//! Results are squared singular values σᵢ², unscaled: [`crate::esd`] applies the conventions.
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::device::device_name;
use crate::error::{Error, Result};

/// Arithmetic used for the Gram product; eigenvalues are always solved in f64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// W and WᵀW in f64: eigenvalues agree with an f64 SVD to ~1e-12 relative.
    #[default]
    F64,
    /// WᵀW in f32, promoted to f64 before the eigensolver: about twice as fast on large layers,
    /// relative error ~1e-6 of λmax (measured by `scripts/benchmark.py`).
    Fast,
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "f64" => Ok(Self::F64),
            "fast" => Ok(Self::Fast),
            other => Err(Error::InvalidOption(format!(
                "precision '{other}': expected f64 or fast"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F64 => "f64",
            Self::Fast => "fast",
        })
    }
}

/// Squared singular values of every matrix in `matrices` ([slices, N, M], N ≥ M), pooled and
/// sorted ascending, as f64 on the host.
///
/// `name` only labels errors. Non-finite entries are an error, never a NaN spectrum.
pub fn squared_singular_values(
    name: &str,
    matrices: &Tensor,
    device: tch::Device,
    precision: Precision,
) -> Result<Vec<f64>> {
    check_memory(name, matrices, device)?;
    let gram_kind = match precision {
        Precision::F64 => Kind::Double,
        Precision::Fast => Kind::Float,
    };
    let w = matrices.f_to_device(device)?.f_to_kind(gram_kind)?;
    let non_finite = i64::try_from(w.f_isfinite()?.f_logical_not()?.f_sum(Kind::Int64)?)?;
    if non_finite > 0 {
        return Err(Error::NonFinite {
            name: name.to_string(),
            count: non_finite,
        });
    }
    let gram = w.f_transpose(1, 2)?.f_matmul(&w)?.f_to_kind(Kind::Double)?;
    let eigenvalues = gram.f_linalg_eigvalsh("L")?.f_clamp_min(0.0)?;
    let mut host = Vec::<f64>::try_from(
        eigenvalues
            .f_flatten(0, -1)?
            .f_to_device(tch::Device::Cpu)?,
    )?;
    host.sort_by(f64::total_cmp);
    Ok(host)
}

/// Refuses a layer whose f64 copy, Gram matrices and solver workspace would not fit in the
/// host's available memory, before libtorch tries and the process is killed.
fn check_memory(name: &str, matrices: &Tensor, device: tch::Device) -> Result<()> {
    if device != tch::Device::Cpu {
        return Ok(());
    }
    let size = matrices.size();
    let (slices, m) = (size[0] as f64, size[2] as f64);
    let needed = 8.0 * (matrices.numel() as f64 + 3.0 * slices * m * m);
    let Some(available) = available_host_memory() else {
        return Ok(());
    };
    if needed > available {
        const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
        return Err(Error::TooLarge {
            name: name.to_string(),
            device: device_name(device),
            needed_gib: needed / GIB,
            available_gib: available / GIB,
        });
    }
    Ok(())
}

/// `MemAvailable` from /proc/meminfo, in bytes; `None` where there is no such file.
fn available_host_memory() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}
