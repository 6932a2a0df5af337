//! The empirical spectral density conventions, applied in this one place.
//!
//! - **RMT** (theory; Marchenko-Pastur and Tracy-Widom fits): λᵢ = σᵢ(W)²/N, the eigenvalues of
//!   X = WᵀW/N for W of shape N × M, N ≥ M.
//! - **WeightWatcher** (its published α̂, log-norm, λmax): λᵢ = σᵢ(W)², and pooled Conv2d slices
//!   halved (its `conv2d_norm`).
//!
//! The power-law exponent, stable rank, entropy and condition number do not depend on the
//! convention; λmax, norms and the Marchenko-Pastur edges do.

use serde::Serialize;

use crate::model::layers::{ConvMode, LayerKind, MatrixShape};
use crate::option_names::option_names;

/// How squared singular values become the eigenvalues reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EsdConvention {
    /// λ = σ²/N: the eigenvalues of WᵀW/N, as random matrix theory writes them.
    Rmt,
    /// λ = σ² (×½ for pooled Conv2d slices): WeightWatcher's numbers.
    #[default]
    #[serde(rename = "ww")]
    WeightWatcher,
}

option_names!(EsdConvention, "ESD convention", { WeightWatcher => "ww", Rmt => "rmt" });

impl EsdConvention {
    /// The factor that turns a squared singular value of this layer into a reported eigenvalue.
    pub fn scale(self, kind: LayerKind, conv_mode: ConvMode, shape: MatrixShape) -> f64 {
        match self {
            Self::Rmt => 1.0 / shape.n as f64,
            Self::WeightWatcher if kind == LayerKind::Conv2d && conv_mode == ConvMode::Slices => {
                0.5
            }
            Self::WeightWatcher => 1.0,
        }
    }
}
