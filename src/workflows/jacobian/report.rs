//! From Jacobians to their report: each sample's singular values, the RMT suite on σ², means
//! over the batch.
use serde::Serialize;
use tch::Tensor;

use super::autograd::automatic_chunk;
use super::{jacobians, Differentiable, JacobianOptions, JacobianSetup, PreparedBatch, Sources};
use crate::error::Result;
use crate::spectrum::{self, Precision};
use crate::stats::esd::EsdScale;
use crate::stats::suite::{rmt_report, LayerSpectrum, RmtReport};

/// The schema name and version written at the top of `jacobian`'s JSON.
pub const JACOBIAN_SCHEMA: &str = "rmt-torch/jacobian/v1";

/// The singular values of one sample's Jacobian and what they say.
#[derive(Debug, Clone, Serialize)]
pub struct SampleReport {
    /// Index in the batch.
    pub sample: usize,
    /// Largest singular value.
    pub sigma_max: f64,
    /// Smallest of the min(outputs, inputs) singular values.
    pub sigma_min: f64,
    /// Mean of σ² (Pennington et al.'s χ when J is the end-to-end Jacobian).
    pub mean_sigma2: f64,
    /// Variance of σ²: the spread that dynamical isometry drives to 0.
    pub var_sigma2: f64,
    /// σmax/σmin; absent when σmin = 0.
    pub condition_number: Option<f64>,
    /// Share of singular values with |σ − 1| ≤ the isometry tolerance.
    pub isometry_fraction: f64,
    /// The RMT suite on σ² (eigenvalue fields in units of σ²).
    #[serde(flatten)]
    pub rmt: RmtReport,
    /// Singular values, descending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub singular_values: Option<Vec<f64>>,
}

/// A batch's Jacobian analysis.
#[derive(Debug, Clone, Serialize)]
pub struct JacobianAnalysis {
    /// [`JACOBIAN_SCHEMA`].
    pub schema: &'static str,
    /// The model, the input and J's shape (the report covers the first `summary.samples`).
    #[serde(flatten)]
    pub setup: JacobianSetup,
    /// Rows per backward pass.
    pub chunk: usize,
    /// Isometry tolerance used.
    pub isometry_tolerance: f64,
    /// One record per sample.
    pub samples: Vec<SampleReport>,
    /// Means over the samples.
    pub summary: JacobianSummary,
    /// The spectrum of the batch-mean JᵀJ, when asked for: its eigenvalues descending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_gram_eigenvalues: Option<Vec<f64>>,
    /// Seconds spent on the Jacobians, their spectra and the statistics.
    pub timing: JacobianTiming,
}

/// Means over a batch.
#[derive(Debug, Clone, Serialize)]
pub struct JacobianSummary {
    /// Samples analysed.
    pub samples: usize,
    /// Mean of the samples' mean σ².
    pub mean_sigma2: f64,
    /// Mean of the samples' σ² variance.
    pub var_sigma2: f64,
    /// Mean isometry fraction.
    pub isometry_fraction: f64,
    /// Largest σmax over the batch.
    pub sigma_max: f64,
    /// Median condition number (over samples where it is finite).
    pub median_condition_number: Option<f64>,
}

/// Where the time went.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct JacobianTiming {
    /// The first forward passes: validating the batch, the sample-independence check and
    /// TorchScript's warm-up.
    pub check_seconds: f64,
    /// Forward and backward passes.
    pub jacobian_seconds: f64,
    /// Singular values (Gram eigenvalues in f64).
    pub spectra_seconds: f64,
    /// Everything computed from them.
    pub statistics_seconds: f64,
}

/// [`analyze_jacobians`] on a loaded model and batch; `sources` label the report.
pub(super) fn analyze_loaded(
    model: &Differentiable,
    batch: &Tensor,
    sources: Sources,
    options: &JacobianOptions,
    on_chunk: impl FnMut(usize, usize),
) -> Result<JacobianAnalysis> {
    let device = model.device;
    let started = std::time::Instant::now();
    let prepared = PreparedBatch::new(model, batch)?;
    let check_seconds = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let inputs_per_sample: usize = batch.size().iter().skip(1).product::<i64>().max(1) as usize;
    let chunk = options.chunk.unwrap_or_else(|| {
        automatic_chunk(inputs_per_sample, model.kind, model.device, usize::MAX)
    });
    let jacobian = jacobians(model, &prepared, Some(chunk), on_chunk)?;
    let jacobian_seconds = started.elapsed().as_secs_f64();
    let size = jacobian.size();
    let (samples, outputs, inputs) = (size[0] as usize, size[1] as usize, size[2] as usize);
    let started = std::time::Instant::now();
    let oriented = if outputs >= inputs {
        jacobian.shallow_clone()
    } else {
        jacobian.f_transpose(1, 2)?
    };
    let spectra = (0..samples)
        .map(|b| {
            spectrum::spectrum(
                &format!("J[{b}]"),
                &oriented.f_narrow(0, b as i64, 1)?,
                device,
                Precision::F64,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let mean_gram_eigenvalues = if options.mean_gram {
        let stacked = jacobian.f_reshape([1, (samples * outputs) as i64, inputs as i64])?;
        let stacked = if samples * outputs >= inputs {
            stacked
        } else {
            stacked.f_transpose(1, 2)?
        };
        let gram = spectrum::spectrum("mean JᵀJ", &stacked, device, Precision::F64)?;
        Some(
            gram.squared_singular_values
                .iter()
                .rev()
                .map(|s| s / samples as f64)
                .collect(),
        )
    } else {
        None
    };
    let spectra_seconds = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let (n, m) = (outputs.max(inputs), outputs.min(inputs));
    let reports: Vec<SampleReport> = spectra
        .iter()
        .enumerate()
        .map(|(sample, spectrum)| sample_report(sample, spectrum, n, m, options))
        .collect();
    let summary = JacobianSummary::of(&reports);
    Ok(JacobianAnalysis {
        schema: JACOBIAN_SCHEMA,
        setup: JacobianSetup::new(sources, model, batch, outputs),
        chunk,
        isometry_tolerance: options.isometry_tolerance,
        samples: reports,
        summary,
        mean_gram_eigenvalues,
        timing: JacobianTiming {
            check_seconds,
            jacobian_seconds,
            spectra_seconds,
            statistics_seconds: started.elapsed().as_secs_f64(),
        },
    })
}

fn sample_report(
    sample: usize,
    spectrum: &spectrum::Spectrum,
    n: usize,
    m: usize,
    options: &JacobianOptions,
) -> SampleReport {
    let squared = &spectrum.squared_singular_values;
    let count = squared.len().max(1) as f64;
    let mean_sigma2 = squared.iter().sum::<f64>() / count;
    let var_sigma2 = squared
        .iter()
        .map(|s| (s - mean_sigma2).powi(2))
        .sum::<f64>()
        / count;
    let singular: Vec<f64> = squared.iter().rev().map(|s| s.sqrt()).collect();
    let sigma_max = singular.first().copied().unwrap_or(0.0);
    let sigma_min = singular.last().copied().unwrap_or(0.0);
    let isometric = singular
        .iter()
        .filter(|s| (*s - 1.0).abs() <= options.isometry_tolerance)
        .count();
    let rmt = rmt_report(
        LayerSpectrum {
            pooled: squared,
            by_matrix: &spectrum.by_matrix,
            n,
            m,
            entry_variance: spectrum.entry_variance,
            scale: EsdScale::unscaled(n),
        },
        &options.rmt,
        None,
        None,
    );
    SampleReport {
        sample,
        sigma_max,
        sigma_min,
        mean_sigma2,
        var_sigma2,
        condition_number: (sigma_min > 0.0).then(|| sigma_max / sigma_min),
        isometry_fraction: isometric as f64 / count,
        rmt,
        singular_values: options.keep_singular_values.then_some(singular),
    }
}

impl JacobianSummary {
    /// Means over sample reports.
    pub fn of(samples: &[SampleReport]) -> Self {
        let count = samples.len().max(1) as f64;
        let mean = |f: fn(&SampleReport) -> f64| samples.iter().map(f).sum::<f64>() / count;
        let mut conditions: Vec<f64> = samples.iter().filter_map(|s| s.condition_number).collect();
        conditions.sort_by(f64::total_cmp);
        Self {
            samples: samples.len(),
            mean_sigma2: mean(|s| s.mean_sigma2),
            var_sigma2: mean(|s| s.var_sigma2),
            isometry_fraction: mean(|s| s.isometry_fraction),
            sigma_max: samples.iter().map(|s| s.sigma_max).fold(0.0, f64::max),
            median_condition_number: (!conditions.is_empty())
                .then(|| conditions[conditions.len() / 2]),
        }
    }
}
