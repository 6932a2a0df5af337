//! What a layer's spectrum costs in memory, checked before libtorch tries.
use tch::Tensor;

use super::gram::GRAM_CHUNK_BYTES;
use crate::error::Result;

/// Refuses a computation on `matrices` that needs `needed` more bytes, before libtorch tries
/// and the process is killed.
pub(super) fn check_memory(name: &str, needed: f64, device: tch::Device) -> Result<()> {
    crate::environment::ensure_host_memory(|| format!("layer '{name}'"), device, needed)
}

/// Bytes the Gram spectrum of a stack of `slices` N × M matrices needs beyond the stack itself,
/// in its two phases (upper bounds, counted in f64 whatever the precision).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WorkingSet {
    /// While the Gram matrices are formed: they and one band of W in f64 (see
    /// [`checked_gram`]).
    pub(crate) forming: f64,
    /// While they are solved: they and [`eigensolver_bytes`].
    pub(crate) solving: f64,
}

/// Bytes the eigensolver adds to Gram matrices of `gram` bytes: its copy of them, and with
/// eigenvectors LAPACK's workspace of twice that.
pub(super) fn eigensolver_bytes(gram: f64, vectors: bool) -> f64 {
    gram * if vectors { 3.0 } else { 1.0 }
}

impl WorkingSet {
    pub(crate) fn of(slices: f64, n: f64, m: f64, vectors: bool) -> Self {
        let row = 8.0 * slices * m;
        let gram = m * row;
        let band = (row * n).min(GRAM_CHUNK_BYTES as f64 + row);
        Self {
            forming: gram + band,
            solving: gram + eigensolver_bytes(gram, vectors),
        }
    }
}

/// Bytes an SVD or a symmetric part of the stack needs beyond the stack: its whole f64 copy,
/// and three M × M matrices of workspace.
pub(super) fn full_copy_working_set_bytes(matrices: &Tensor) -> f64 {
    let size = matrices.size();
    let (slices, n, m) = (size[0] as f64, size[1] as f64, size[2] as f64);
    8.0 * slices * m * (n + 3.0 * m)
}
