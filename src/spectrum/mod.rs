//! Eigenvalues of WᵀW for stacks of weight matrices, in f64, on the chosen device.
//!
//! The method is the Gram matrix G = WᵀW (M × M, M the smaller side) and `linalg_eigvalsh` of G:
//! exact to ~1e-12 relative for the eigenvalues that matter, and several times faster than an
//! SVD on both CPU and GPU (measured by scripts/benchmark.py). Slices of a convolution are one batched call.
//! Results are squared singular values σᵢ², unscaled: [`crate::stats::esd`] applies the conventions.

mod gram;
mod low_rank;
mod memory;
mod variants;
pub mod windows;

use tch::{Kind, Tensor};

use crate::error::Result;
use crate::option_names::{option_names, serde_as_text};

pub(crate) use gram::{eigensolve_on_one_thread, Gram};
pub(crate) use low_rank::low_rank_spectrum;
pub(crate) use memory::WorkingSet;
use memory::{check_memory, full_copy_working_set_bytes};
pub use variants::{shuffled, symmetric_part_eigenvalues};

/// Arithmetic of the Gram product and the eigensolver; results and statistics are always f64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// W and WᵀW in f64: eigenvalues agree with an f64 SVD to ~1e-12 relative.
    #[default]
    F64,
    /// WᵀW and its eigenvalues in f32, promoted to f64 for every statistic: about twice as fast
    /// on a CPU (on a GPU no faster than f64). Eigenvalues within 1e-4·λmax of the f64 path on a
    /// CPU and 5e-4·λmax on a CUDA GPU, whose f32 eigensolver is less accurate, and α within
    /// 0.5 % (AlexNet, VGG19, ResNet50: at worst 5.1e-5 on the CPU, 2.2e-4 on an H100, and
    /// 0.31 %, measured by `scripts/benchmark.py`); the smallest eigenvalues are round-off.
    Fast,
}

option_names!(Precision, "precision", { F64 => "f64", Fast => "fast" });

serde_as_text!(Precision);

/// The spectrum of one layer's stack of matrices, as computed on the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    /// Squared singular values σᵢ² of every matrix, pooled and sorted ascending.
    pub squared_singular_values: Vec<f64>,
    /// The same per matrix of the stack, each ascending: level statistics need one matrix's
    /// levels, since pooling independent spectra destroys their correlations.
    pub by_matrix: Vec<Vec<f64>>,
    /// Variance of the matrices' entries (population variance): σ² of Marchenko-Pastur.
    pub entry_variance: f64,
}

/// Below this fraction of its matrix's largest σ², a Gram eigenvalue is round-off rather than a
/// measurement (its absolute error is ~M·ε·σ²max, ε = 2.2e-16).
const GRAM_RESOLUTION: f64 = 1e-9;

impl Spectrum {
    /// Recomputes the squared singular values by an f64 SVD (`linalg_svdvals`) when any matrix
    /// has values below `GRAM_RESOLUTION` (1e-9) of its largest: there the Gram matrix cannot tell
    /// σ = 1e-9·σmax from σ = 0, and WeightWatcher's rank (σ > σmax·N·ε) can. `--ww-compat`
    /// does this for every layer; it costs an SVD only on (nearly) rank-deficient ones.
    pub fn resolve_round_off(
        &mut self,
        name: &str,
        matrices: &Tensor,
        device: tch::Device,
    ) -> Result<()> {
        let unresolved = self.by_matrix.iter().any(|values| {
            let largest = values.iter().copied().fold(0.0, f64::max);
            values.iter().any(|&v| v < largest * GRAM_RESOLUTION)
        });
        if !unresolved {
            return Ok(());
        }
        let _no_grad = tch::no_grad_guard();
        check_memory(name, full_copy_working_set_bytes(matrices), device)?;
        let w = matrices.f_to_device(device)?.f_to_kind(Kind::Double)?;
        // torch.svd without U and V: linalg_svdvals's binding always passes a driver, which the
        // CPU refuses.
        let (_, singular_values, _) = eigensolve_on_one_thread(&w, || Ok(w.f_svd(true, false)?))?;
        let rows = Vec::<Vec<f64>>::try_from(singular_values.f_to_device(tch::Device::Cpu)?)?;
        self.by_matrix = rows
            .into_iter()
            .map(|row| {
                let mut squared: Vec<f64> = row.iter().map(|s| s * s).collect();
                squared.sort_by(f64::total_cmp);
                squared
            })
            .collect();
        self.squared_singular_values = self.by_matrix.concat();
        self.squared_singular_values.sort_by(f64::total_cmp);
        Ok(())
    }

    /// Keeps only the `count` largest values, as the spectrum of one matrix: WeightWatcher's
    /// Conv1d ESD, the top min(out, in, k) of its per-channel SVDs ([`crate::ConvMode::WeightWatcher`]).
    pub fn keep_largest(&mut self, count: usize) {
        let start = self.squared_singular_values.len().saturating_sub(count);
        self.squared_singular_values.drain(..start);
        self.by_matrix = vec![self.squared_singular_values.clone()];
    }
}

/// The spectrum of `matrices` ([slices, N, M], N ≥ M), moved to the host once.
///
/// `name` only labels errors. Non-finite entries are an error, never a NaN spectrum. The entry
/// variance comes from the same pass: Σw² is the trace of the Gram matrices, so no second copy.
pub fn spectrum(
    name: &str,
    matrices: &Tensor,
    device: tch::Device,
    precision: Precision,
) -> Result<Spectrum> {
    Gram::of(name, matrices, device, precision)?.spectrum()
}

/// [`spectrum`] and the right singular vectors of every matrix of the stack, from one
/// eigendecomposition of the Gram matrices (`linalg_eigh` instead of `linalg_eigvalsh`: slower,
/// and O(M²) memory per matrix, so only on request). With [`Precision::Fast`] the vectors come
/// from the f32 decomposition.
pub fn spectrum_with_vectors(
    name: &str,
    matrices: &Tensor,
    device: tch::Device,
    precision: Precision,
) -> Result<(Spectrum, Vec<RightSingularVectors>)> {
    Gram::of(name, matrices, device, precision)?.spectrum_with_vectors()
}

/// Eigen-decomposition of WᵀW for one matrix: its right singular vectors with their σ².
#[derive(Debug, Clone, PartialEq)]
pub struct RightSingularVectors {
    /// Squared singular values σᵢ², ascending.
    pub squared_singular_values: Vec<f64>,
    /// `vectors[i]` is the unit eigenvector of WᵀW (length M) for `squared_singular_values[i]`.
    pub vectors: Vec<Vec<f64>>,
}
