//! The empirical spectral density conventions, applied in this one place.
//!
//! - **RMT** (theory; Marchenko-Pastur and Tracy-Widom fits): λᵢ = σᵢ(W)²/N, the eigenvalues of
//!   X = WᵀW/N for W of shape N × M, N ≥ M.
//! - **WeightWatcher** (its published α̂, log-norm, λmax): λᵢ = σᵢ(W)², and pooled Conv2d slices
//!   halved (its `conv2d_norm`).
//!
//! The power-law exponent, stable rank, entropy and condition number do not depend on the
//! convention; λmax, norms and the Marchenko-Pastur edges do. [`EsdScale`] is the one
//! conversion every consumer (analysis, RMT suite, figures, Jacobians) uses.

use crate::model::layers::{ConvMode, LayerKind, MatrixShape};
use crate::option_names::{option_names, serde_as_text};

/// How squared singular values become the eigenvalues reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EsdConvention {
    /// λ = σ²/N: the eigenvalues of WᵀW/N, as random matrix theory writes them.
    Rmt,
    /// λ = σ² (×½ for pooled Conv2d slices): WeightWatcher's numbers.
    #[default]
    WeightWatcher,
}

option_names!(EsdConvention, "ESD convention", { WeightWatcher => "ww", Rmt => "rmt" });

serde_as_text!(EsdConvention);

impl EsdConvention {
    /// The factor that turns a squared singular value of this layer into a reported eigenvalue.
    fn factor(self, kind: LayerKind, conv_mode: ConvMode, rows: usize) -> f64 {
        match self {
            Self::Rmt => 1.0 / rows as f64,
            Self::WeightWatcher if kind == LayerKind::Conv2d && conv_mode != ConvMode::Reshape => {
                0.5
            }
            Self::WeightWatcher => 1.0,
        }
    }
}

/// WeightWatcher's threshold: eigenvalues at or below it, in its ESD scale, are not fitted.
pub const WEIGHTWATCHER_EVALS_THRESHOLD: f64 = 1e-5;

/// One layer's ESD scale: squared singular values σ² of its N × M matrices (N ≥ M) to reported
/// eigenvalues, to the RMT scale λ = σ²/N that the laws are written in, and back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EsdScale {
    /// Reported eigenvalue per squared singular value.
    factor: f64,
    /// Rows N of each matrix.
    rows: usize,
    /// WeightWatcher's factor for the same layer, where its fit threshold is defined.
    weightwatcher_factor: f64,
}

impl EsdScale {
    /// The scale of a weight layer under `convention`.
    pub fn new(
        convention: EsdConvention,
        kind: LayerKind,
        conv_mode: ConvMode,
        shape: MatrixShape,
    ) -> Self {
        Self {
            factor: convention.factor(kind, conv_mode, shape.n),
            rows: shape.n,
            weightwatcher_factor: EsdConvention::WeightWatcher.factor(kind, conv_mode, shape.n),
        }
    }

    /// Reported eigenvalues are the squared singular values themselves (Jacobians).
    pub fn unscaled(rows: usize) -> Self {
        Self {
            factor: 1.0,
            rows,
            weightwatcher_factor: 1.0,
        }
    }

    /// A squared singular value as a reported eigenvalue.
    pub fn report(&self, squared: f64) -> f64 {
        squared * self.factor
    }

    /// Squared singular values as reported eigenvalues.
    pub fn report_all(&self, squared: &[f64]) -> Vec<f64> {
        squared.iter().map(|&s| self.report(s)).collect()
    }

    /// A squared singular value in WeightWatcher's ESD scale (its Conv2d slices halved).
    pub fn to_weightwatcher(&self, squared: f64) -> f64 {
        squared * self.weightwatcher_factor
    }

    /// A squared singular value in the RMT scale, σ²/N.
    pub fn to_rmt(&self, squared: f64) -> f64 {
        squared / self.rows as f64
    }

    /// An eigenvalue of WᵀW/N (a Marchenko-Pastur edge, a Tracy-Widom threshold) as reported.
    pub fn rmt_to_reported(&self, lambda: f64) -> f64 {
        lambda * self.rows as f64 * self.factor
    }

    /// [`WEIGHTWATCHER_EVALS_THRESHOLD`] carried into the reported scale, so that the same
    /// eigenvalues are fitted whatever the convention.
    pub fn fit_threshold(&self) -> f64 {
        WEIGHTWATCHER_EVALS_THRESHOLD * self.factor / self.weightwatcher_factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions_agree_on_what_is_fitted() {
        let shape = MatrixShape {
            n: 64,
            m: 16,
            slices: 9,
        };
        let ww = EsdScale::new(
            EsdConvention::WeightWatcher,
            LayerKind::Conv2d,
            ConvMode::Slices,
            shape,
        );
        let rmt = EsdScale::new(
            EsdConvention::Rmt,
            LayerKind::Conv2d,
            ConvMode::Slices,
            shape,
        );
        assert_eq!(ww.report(3.0), 1.5);
        assert_eq!(rmt.report(3.0), 3.0 / 64.0);
        assert_eq!(rmt.rmt_to_reported(rmt.to_rmt(3.0)), rmt.report(3.0));
        assert_eq!(ww.rmt_to_reported(ww.to_rmt(3.0)), ww.report(3.0));
        // σ² = 2e-5 is exactly WeightWatcher's threshold after its ×½: in both scales.
        assert_eq!(ww.report(2e-5), ww.fit_threshold());
        assert!((rmt.report(2e-5) - rmt.fit_threshold()).abs() < 1e-22);
    }
}
