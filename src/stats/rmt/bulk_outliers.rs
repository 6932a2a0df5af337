//! The random-matrix reading of a spectrum known by an estimated spectral measure (the
//! stochastic Lanczos quadrature density of a loss Hessian, or of a Jacobian's Gram matrix) and
//! by its largest eigenvalues: the bulk fitted by a semicircle and by a Marchenko-Pastur law,
//! and the outliers counted against the better fit's upper edge.
//!
//! Pennington & Bahri (2017) model a loss Hessian as a Wishart part (the Gauss-Newton matrix,
//! whose bulk is Marchenko-Pastur with an atom at 0 when its rank is below the parameter
//! count) plus a Wigner part (a semicircle); the outliers above the bulk carry the class
//! structure (Papyan 2020). Both laws are fitted by the bulk's first two moments, the outliers
//! removed from them (iterated to a fixed point, so that an outlier does not widen the bulk it
//! is judged by), and judged by the Kolmogorov distance between the measure and the law. The
//! measure's nodes are Ritz values, not independent draws: the distance describes the fit and
//! has no p-value.
use serde::Serialize;

use crate::option_names::option_names;
use crate::stats::rmt::marchenko_pastur::MarchenkoPastur;
use crate::stats::rmt::wigner::Semicircle;

/// The law the bulk is read against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BulkLaw {
    /// Wigner's semicircle, shifted to the bulk's mean.
    Semicircle,
    /// Marchenko-Pastur, with its atom at 0 when the ratio is below 1.
    MarchenkoPastur,
}

option_names!(BulkLaw, "bulk law", {
    Semicircle => "semicircle",
    MarchenkoPastur => "marchenko-pastur",
});

/// A law fitted to the bulk, its support and its distance from the measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BulkFit {
    /// Which law.
    pub law: BulkLaw,
    /// Semicircle: the centre (the bulk's mean); Marchenko-Pastur: 0.
    pub center: f64,
    /// Semicircle: the variance (radius 2σ); Marchenko-Pastur: σ² (the bulk's mean).
    pub sigma2: f64,
    /// Marchenko-Pastur's ratio Q = 1/γ (γ = m₂/m₁² − 1 of the bulk); `None` for the semicircle.
    pub q: Option<f64>,
    /// The mass of the law's atom at 0 (Marchenko-Pastur with Q < 1: 1 − Q).
    pub atom: f64,
    /// The continuous part's support [lower, upper].
    pub edges: (f64, f64),
    /// The Kolmogorov distance sup |F_measure − F_law|.
    pub ks_distance: f64,
}

impl BulkFit {
    /// The fitted law's CDF.
    pub fn cdf(&self, x: f64) -> f64 {
        match self.law {
            BulkLaw::Semicircle => Semicircle {
                sigma2: self.sigma2,
            }
            .cdf(x - self.center),
            BulkLaw::MarchenkoPastur => self.marchenko_pastur().map_or(0.0, |law| law.cdf(x)),
        }
    }

    /// The fitted law's density (the continuous part).
    pub fn density(&self, x: f64) -> f64 {
        match self.law {
            BulkLaw::Semicircle => Semicircle {
                sigma2: self.sigma2,
            }
            .density(x - self.center),
            BulkLaw::MarchenkoPastur => self.marchenko_pastur().map_or(0.0, |law| law.density(x)),
        }
    }

    fn marchenko_pastur(&self) -> Option<MarchenkoPastur> {
        MarchenkoPastur::new(self.q?, self.sigma2).ok()
    }

    /// The semicircle with the bulk's mean and variance; `None` for a zero variance.
    fn semicircle(mean: f64, second: f64, measure: &[(f64, f64)]) -> Option<Self> {
        let variance = second - mean * mean;
        if !(variance > 0.0 && variance.is_finite()) {
            return None;
        }
        let radius = 2.0 * variance.sqrt();
        let mut fit = Self {
            law: BulkLaw::Semicircle,
            center: mean,
            sigma2: variance,
            q: None,
            atom: 0.0,
            edges: (mean - radius, mean + radius),
            ks_distance: 0.0,
        };
        fit.ks_distance = ks_distance(measure, &fit);
        Some(fit)
    }

    /// Marchenko-Pastur with the bulk's first two moments, m₁ = σ², m₂ = σ⁴(1 + γ); `None`
    /// unless m₁ > 0 and the variance is positive.
    fn marchenko_pastur_fit(mean: f64, second: f64, measure: &[(f64, f64)]) -> Option<Self> {
        let gamma = second / (mean * mean) - 1.0;
        if !(mean > 0.0 && gamma > 0.0 && gamma.is_finite()) {
            return None;
        }
        let law = MarchenkoPastur::new(1.0 / gamma, mean).ok()?;
        let mut fit = Self {
            law: BulkLaw::MarchenkoPastur,
            center: 0.0,
            sigma2: mean,
            q: Some(law.q()),
            atom: law.atom(),
            edges: law.edges(),
            ks_distance: 0.0,
        };
        fit.ks_distance = ks_distance(measure, &fit);
        Some(fit)
    }
}

/// The largest Kolmogorov distance at which a law is said to fit the bulk. The nodes are Ritz
/// values, not independent draws, so there is no p-value to set it by: a tenth of the mass
/// misplaced is where a fitted density stops looking like the histogram.
pub const FITS_WITHIN: f64 = 0.1;

/// What the bulk turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BulkShape {
    /// The better law lies within [`FITS_WITHIN`] of the measure.
    Fitted,
    /// Both laws lie farther: the bulk is neither; its edge and outliers are indicative.
    NoLawFits,
    /// (Nearly) all the spectrum is an atom at 0: Marchenko-Pastur fits with a continuous part
    /// of fewer eigenvalues than the top ones computed, which is then no bulk but those
    /// eigenvalues. The operator is numerically of low rank; every positive top eigenvalue
    /// is an outlier.
    AtZero,
}

/// The bulk and the outliers of a spectrum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BulkOutliers {
    /// The better fit (the smaller Kolmogorov distance), whose upper edge outliers are
    /// counted against.
    pub law: BulkLaw,
    /// Whether that law fits, fits nothing, or describes a spectrum sitting at 0.
    pub shape: BulkShape,
    /// The semicircle fit.
    pub semicircle: BulkFit,
    /// The Marchenko-Pastur fit, when the bulk's mean is positive.
    pub marchenko_pastur: Option<BulkFit>,
    /// The better fit's upper edge.
    pub bulk_edge: f64,
    /// The largest eigenvalues above the edge, descending: the outliers found.
    pub outliers: Vec<f64>,
    /// Whether every largest eigenvalue computed lies above the edge: more outliers may lie
    /// below them (compute more).
    pub more_outliers_possible: bool,
    /// The measure's mass below 0 (a Hessian's negative curvature; none for a Gram matrix).
    pub negative_mass: f64,
}

impl BulkOutliers {
    /// The better fit.
    pub fn best(&self) -> &BulkFit {
        match (self.law, &self.marchenko_pastur) {
            (BulkLaw::MarchenkoPastur, Some(fit)) => fit,
            _ => &self.semicircle,
        }
    }
}

/// Nodes within this fraction of the largest |node| are zero: the null space of a
/// rank-deficient operator comes out of float32 products (and even float64 eigensolvers) as
/// values of either sign at round-off size, which would otherwise count as negative mass and
/// miss Marchenko-Pastur's atom by a hair.
const ZERO: f64 = 1e-6;

/// Reads `measure` ((node, weight) pairs in ascending order, weights summing to 1: the spectral
/// measure of an operator of order `dimension`) with `top`, its largest eigenvalues (any
/// order). The bulk's moments are the measure's with the outliers' share (λᵏ/dimension each)
/// taken out. `None` when the bulk has no spread.
pub fn bulk_and_outliers(
    measure: &[(f64, f64)],
    top: &[f64],
    dimension: usize,
) -> Option<BulkOutliers> {
    let scale = measure.iter().fold(0.0_f64, |m, &(x, _)| m.max(x.abs()));
    let measure: Vec<(f64, f64)> = measure
        .iter()
        .map(|&(x, w)| (if x.abs() <= ZERO * scale { 0.0 } else { x }, w))
        .collect();
    let measure = measure.as_slice();
    let n = dimension as f64;
    let moment = |k: i32| measure.iter().map(|&(x, w)| w * x.powi(k)).sum::<f64>();
    let (first, second) = (moment(1), moment(2));
    let mut top: Vec<f64> = top.iter().copied().filter(|v| v.is_finite()).collect();
    top.sort_by(|a, b| b.total_cmp(a));
    let negative_mass = measure
        .iter()
        .filter(|&&(x, _)| x < 0.0)
        .fold(0.0, |sum, &(_, w)| sum + w);
    // The fits with the `removed` largest eigenvalues taken out of the moments, and the
    // eigenvalues above the better fit's edge.
    let read = |removed: usize| -> Option<BulkOutliers> {
        let rest = n - removed as f64;
        if rest <= 0.0 {
            return None;
        }
        let taken = &top[..removed];
        let mean = (n * first - taken.iter().sum::<f64>()) / rest;
        let second = (n * second - taken.iter().map(|v| v * v).sum::<f64>()) / rest;
        let semicircle = BulkFit::semicircle(mean, second, measure)?;
        let marchenko_pastur = BulkFit::marchenko_pastur_fit(mean, second, measure);
        let law = match &marchenko_pastur {
            Some(fit) if fit.ks_distance < semicircle.ks_distance => BulkLaw::MarchenkoPastur,
            _ => BulkLaw::Semicircle,
        };
        let mut reading = BulkOutliers {
            law,
            shape: BulkShape::Fitted,
            semicircle,
            marchenko_pastur,
            bulk_edge: 0.0,
            outliers: Vec::new(),
            more_outliers_possible: false,
            negative_mass,
        };
        let best = *reading.best();
        let continuous = (1.0 - best.atom) * n;
        reading.shape = if best.atom > 0.0 && continuous < top.len().max(1) as f64 {
            BulkShape::AtZero
        } else if best.ks_distance > FITS_WITHIN {
            BulkShape::NoLawFits
        } else {
            BulkShape::Fitted
        };
        reading.bulk_edge = match reading.shape {
            BulkShape::AtZero => 0.0,
            _ => best.edges.1,
        };
        let above = top.iter().take_while(|&&v| v > reading.bulk_edge).count();
        reading.outliers = top[..above].to_vec();
        reading.more_outliers_possible = !top.is_empty() && above == top.len();
        Some(reading)
    };
    // The outliers move the edge and the edge the outliers: iterated to a fixed point, one
    // pass per eigenvalue at most; a fit that fails without them (the estimated moments
    // leave no spread) keeps the last one.
    let mut reading = read(0)?;
    let mut removed = 0;
    for _ in 0..top.len() {
        let count = reading.outliers.len();
        if count == removed || reading.shape == BulkShape::AtZero {
            break;
        }
        match read(count) {
            Some(next) => (reading, removed) = (next, count),
            None => break,
        }
    }
    Some(reading)
}

/// sup |F_measure − F_law| over the measure's nodes (each side of its jump) and the law's
/// atom at 0 (each side of the law's jump).
fn ks_distance(measure: &[(f64, f64)], fit: &BulkFit) -> f64 {
    let mass_below = |x: f64, inclusive: bool| {
        measure
            .iter()
            .filter(|&&(node, _)| node < x || inclusive && node == x)
            .fold(0.0, |sum, &(_, w)| sum + w)
    };
    let mut below = 0.0;
    let mut distance: f64 = 0.0;
    for (index, &(x, w)) in measure.iter().enumerate() {
        let law = fit.cdf(x);
        let law_left = if x == 0.0 { law - fit.atom } else { law };
        let first_of_its_value = index == 0 || measure[index - 1].0 != x;
        if first_of_its_value {
            distance = distance.max((below - law_left).abs());
        }
        below += w;
        let last_of_its_value = measure.get(index + 1).is_none_or(|next| next.0 != x);
        if last_of_its_value {
            distance = distance.max((below - law).abs());
        }
    }
    if fit.atom > 0.0 {
        distance = distance
            .max(mass_below(0.0, false))
            .max((mass_below(0.0, true) - fit.cdf(0.0)).abs());
    }
    distance
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::random::SeededNormal;
    use tch::{Kind, Tensor};

    /// The eigenvalues of a symmetric matrix given row-major.
    fn eigenvalues(entries: Vec<f64>, order: usize) -> Vec<f64> {
        let matrix = Tensor::from_slice(&entries).reshape([order as i64, order as i64]);
        Vec::<f64>::try_from(matrix.linalg_eigvalsh("L").to_kind(Kind::Double)).unwrap()
    }

    /// The exact spectral measure: every eigenvalue with weight 1/N.
    fn measure(values: &[f64]) -> Vec<(f64, f64)> {
        let weight = 1.0 / values.len() as f64;
        values.iter().map(|&v| (v, weight)).collect()
    }

    /// A GOE matrix (row-major) with off-diagonal variance σ²/N, plus θᵢ on the i-th diagonal
    /// entry for each spike θᵢ (θᵢeᵢeᵢᵀ: orthonormal directions).
    pub(crate) fn wigner_with_spikes(
        order: usize,
        sigma: f64,
        spikes: &[f64],
        seed: u64,
    ) -> Vec<f64> {
        let mut random = SeededNormal::new(seed);
        let mut entries = vec![0.0; order * order];
        for i in 0..order {
            for j in i..order {
                let scale = if i == j { 2.0_f64.sqrt() } else { 1.0 };
                let value = random.normal() * sigma * scale / (order as f64).sqrt();
                entries[i * order + j] = value;
                entries[j * order + i] = value;
            }
        }
        for (index, &theta) in spikes.iter().enumerate() {
            entries[index * order + index] += theta;
        }
        entries
    }

    /// GOE of variance σ²/N off the diagonal plus θ₁e₁e₁ᵀ + θ₂e₂e₂ᵀ with θ > σ: the
    /// semicircle of radius 2σ, and two outliers near θ + σ²/θ (Baik, Ben Arous & Péché 2005;
    /// Péché 2006), nothing else above the edge.
    #[test]
    fn a_wigner_matrix_with_two_spikes_is_a_semicircle_and_two_outliers() {
        let (order, sigma) = (600, 1.5);
        let spikes = [3.0 * sigma, 2.0 * sigma];
        let values = eigenvalues(wigner_with_spikes(order, sigma, &spikes, 3), order);
        let top: Vec<f64> = values.iter().rev().take(6).copied().collect();
        let reading = bulk_and_outliers(&measure(&values), &top, order).unwrap();
        assert_eq!(reading.law, BulkLaw::Semicircle);
        let fit = reading.best();
        assert!((fit.sigma2 / (sigma * sigma) - 1.0).abs() < 0.03, "{fit:?}");
        assert!((reading.bulk_edge / (2.0 * sigma) - 1.0).abs() < 0.03);
        assert!(fit.ks_distance < 0.03, "{fit:?}");
        assert_eq!(reading.outliers.len(), 2, "{reading:?}");
        for (outlier, theta) in reading.outliers.iter().zip(spikes) {
            let predicted = theta + sigma * sigma / theta;
            assert!(
                (outlier / predicted - 1.0).abs() < 0.05,
                "{outlier} vs {predicted}"
            );
        }
        assert!(!reading.more_outliers_possible);
        assert!((reading.negative_mass - 0.5).abs() < 0.05);
        assert_eq!(reading.shape, BulkShape::Fitted);
    }

    /// A spectrum that is neither law (uniform on two separated intervals) is said to be
    /// neither, and one that is an atom at 0 with a few positive eigenvalues is said to sit at
    /// 0, every positive eigenvalue an outlier.
    #[test]
    fn says_when_no_law_fits_and_when_the_bulk_sits_at_zero() {
        let values: Vec<f64> = (0..400)
            .map(|i| {
                let u = (i % 200) as f64 / 200.0;
                if i < 200 {
                    u
                } else {
                    5.0 + u
                }
            })
            .collect();
        let reading = bulk_and_outliers(&measure(&values), &[5.99, 5.98], values.len()).unwrap();
        assert_eq!(reading.shape, BulkShape::NoLawFits, "{reading:?}");
        assert!(reading.best().ks_distance > FITS_WITHIN);
        let mut values = vec![0.0; 100_000];
        values.extend([0.5, 0.08, 0.05]);
        let top = [0.5, 0.08, 0.05];
        let reading = bulk_and_outliers(&measure(&values), &top, values.len()).unwrap();
        assert_eq!(reading.shape, BulkShape::AtZero, "{reading:?}");
        assert_eq!(reading.bulk_edge, 0.0);
        assert_eq!(reading.outliers, top.to_vec());
        assert!(reading.more_outliers_possible);
    }

    /// WᵀW/N of a 150 × 600 Gaussian W (rank 150: Q = 1/4, an atom of 3/4 at 0) plus a spike
    /// far above the edge: Marchenko-Pastur with those parameters, one outlier.
    #[test]
    fn a_rank_deficient_wishart_matrix_is_marchenko_pastur_with_its_atom() {
        let (rows, columns, variance) = (150usize, 600usize, 0.8_f64);
        let mut random = SeededNormal::new(5);
        let w: Vec<f64> = (0..rows * columns)
            .map(|_| random.normal() * variance.sqrt())
            .collect();
        let w = Tensor::from_slice(&w).reshape([rows as i64, columns as i64]);
        let gram = w.transpose(0, 1).matmul(&w) / rows as f64;
        let mut entries = Vec::<f64>::try_from(gram.reshape([-1])).unwrap();
        entries[0] += 40.0;
        let values = eigenvalues(entries, columns);
        let top: Vec<f64> = values.iter().rev().take(3).copied().collect();
        let reading = bulk_and_outliers(&measure(&values), &top, columns).unwrap();
        assert_eq!(reading.law, BulkLaw::MarchenkoPastur, "{reading:?}");
        let fit = reading.best();
        let q = fit.q.unwrap();
        assert!((q / 0.25 - 1.0).abs() < 0.05, "{fit:?}");
        assert!((fit.atom - 0.75).abs() < 0.02);
        assert!((fit.sigma2 / variance - 1.0).abs() < 0.05);
        let edge = variance * (1.0 + 2.0_f64).powi(2);
        assert!(
            (reading.bulk_edge / edge - 1.0).abs() < 0.05,
            "{}",
            reading.bulk_edge
        );
        assert!(fit.ks_distance < 0.05, "{fit:?}");
        assert_eq!(reading.outliers.len(), 1);
        assert_eq!(reading.shape, BulkShape::Fitted);
        assert!(reading.marchenko_pastur.unwrap().ks_distance < reading.semicircle.ks_distance);
    }

    /// With every computed eigenvalue an outlier, the reading says that more may exist.
    #[test]
    fn says_when_the_top_eigenvalues_are_all_outliers() {
        let mut values: Vec<f64> = (0..200).map(|i| (i as f64 - 100.0) / 100.0).collect();
        values.extend([10.0, 20.0]);
        let reading = bulk_and_outliers(&measure(&values), &[20.0, 10.0], values.len()).unwrap();
        assert_eq!(reading.outliers, vec![20.0, 10.0]);
        assert!(reading.more_outliers_possible);
        assert!(bulk_and_outliers(&measure(&[1.0, 1.0]), &[], 2).is_none());
    }
}
