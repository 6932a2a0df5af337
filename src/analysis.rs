//! The `analyze` pipeline: layers → spectra → metrics, one record per weight layer.
//!
//! Every command that reports on weights (analyze, and later jacobian, track, zoo) goes through
//! [`analyze`], so a metric has one definition everywhere.
use serde::Serialize;

use crate::device::{device_name, DeviceChoice};
use crate::error::Result;
use crate::esd::EsdConvention;
use crate::heavy_tail::alternatives::{self, TailAlternatives};
use crate::heavy_tail::hill::{hill_plateau, HillEstimate};
use crate::heavy_tail::power_law::{self, PowerLawFit, TailOptions, WEIGHTWATCHER_EVALS_THRESHOLD};
use crate::heavy_tail::quality::{AlphaMetrics, QualityLabel};
use crate::heavy_tail::randomization::Randomization;
use crate::model::layers::{
    self, ConvMode, LayerKind, LayerSelection, MatrixShape, SkippedTensor, WeightLayer,
};
use crate::model::{dtype_name, FileFormat, Model};
use crate::rmt::marchenko_pastur::MarchenkoPastur;
use crate::rmt_suite::{rmt_report, LayerSpectrum, RmtOptions, RmtReport};
use crate::spectral_metrics::SpectralMetrics;
use crate::spectrum::{self, Precision};

/// The schema name and version written at the top of `analyze`'s JSON.
pub const ANALYSIS_SCHEMA: &str = "rmt-torch/analysis/v1";

/// What to analyse and how.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// Where the spectra are computed.
    pub device: DeviceChoice,
    /// Which tensors, and how convolutions become matrices.
    pub selection: LayerSelection,
    /// The ESD convention of the reported eigenvalues and scale metrics.
    pub convention: EsdConvention,
    /// Arithmetic of the Gram product.
    pub precision: Precision,
    /// Keep each layer's eigenvalues in its record.
    pub keep_eigenvalues: bool,
    /// How the top of each ESD is treated before the power-law fit.
    pub tail: TailOptions,
    /// Compare each ESD with that of its shuffled entries, shuffled with this seed (plus the
    /// layer's index); `None` skips it (it doubles the cost).
    pub randomize: Option<u64>,
    /// The universal RMT suite: Marchenko-Pastur fits, Tracy-Widom, spacings, and on request
    /// number variance, Porter-Thomas and the semicircle.
    pub rmt: RmtOptions,
}

/// The Marchenko-Pastur bulk predicted from the entries' variance, in the report's convention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarchenkoPasturBulk {
    /// Variance of the weight entries, σ² of the law.
    pub sigma2: f64,
    /// Lower bulk edge λ₋.
    pub mp_lambda_minus: f64,
    /// Upper bulk edge λ₊.
    pub mp_lambda_plus: f64,
    /// Eigenvalues above λ₊ (spikes over the bare edge).
    pub num_spikes: usize,
}

/// Everything reported for one weight layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Position among the analysed layers, from 0.
    pub layer_id: usize,
    /// The tensor's dotted name.
    pub name: String,
    /// Dense, conv1d or conv2d.
    pub kind: LayerKind,
    /// The tensor's shape as stored.
    pub shape: Vec<i64>,
    /// The stored dtype (the spectrum is always f64).
    pub dtype: String,
    /// Rows of each matrix after orientation (the larger side).
    #[serde(rename = "N")]
    pub n: usize,
    /// Columns of each matrix (the smaller side).
    #[serde(rename = "M")]
    pub m: usize,
    /// Aspect ratio N/M.
    #[serde(rename = "Q")]
    pub q: f64,
    /// Matrices pooled into the ESD (kernel positions in slices mode; WeightWatcher's `rf`).
    pub rf: usize,
    /// Norms, ranks, entropy.
    #[serde(flatten)]
    pub metrics: SpectralMetrics,
    /// Marchenko-Pastur edges from the entries' variance; absent for constant tensors.
    #[serde(flatten)]
    pub marchenko_pastur: Option<MarchenkoPasturBulk>,
    /// The power-law fit of the ESD's tail; absent when it failed (see `warning`).
    #[serde(flatten)]
    pub power_law: Option<PowerLawFit>,
    /// Likelihood ratios of the power law against the exponential, log-normal and truncated
    /// power law on the fitted tail; absent when the fit failed.
    #[serde(flatten)]
    pub alternatives: Option<TailAlternatives>,
    /// α̂ and the α-norm; absent when the fit failed.
    #[serde(flatten)]
    pub alpha_metrics: Option<AlphaMetrics>,
    /// Training-quality label from α (WeightWatcher's `warning` column).
    pub warning: QualityLabel,
    /// The Hill estimator's plateau, a fit-free estimate of α; absent for tiny layers.
    #[serde(flatten)]
    pub hill: Option<HillEstimate>,
    /// The shuffled-entries comparison, when asked for.
    #[serde(flatten)]
    pub randomization: Option<Randomization>,
    /// The universal RMT suite's fits and tests.
    #[serde(flatten)]
    pub rmt: RmtReport,
    /// The ESD, ascending, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eigenvalues: Option<Vec<f64>>,
}

/// One model's analysis.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// [`ANALYSIS_SCHEMA`].
    pub schema: &'static str,
    /// The model file.
    pub model: String,
    /// Its detected format.
    pub format: FileFormat,
    /// Where the spectra were computed.
    pub device: String,
    /// ESD convention of every eigenvalue and scale metric.
    pub convention: EsdConvention,
    /// How convolutions were read.
    pub conv_mode: ConvMode,
    /// Gram arithmetic.
    pub precision: Precision,
    /// One record per analysed layer.
    pub layers: Vec<LayerReport>,
    /// Tensors not analysed, with reasons.
    pub skipped: Vec<SkippedTensor>,
    /// Means over the layers and label counts.
    pub summary: ModelSummary,
    /// Where the time went.
    pub timing: Timing,
}

/// Wall time of an analysis, split between the eigensolver work and everything computed from
/// the eigenvalues (fits, metrics), so the cost of the statistics is measured, not assumed.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Timing {
    /// Gram products and eigensolves (shuffled spectra included), seconds.
    pub spectra_seconds: f64,
    /// Power-law fits, Hill, metrics and the rest of each layer's statistics, seconds.
    pub statistics_seconds: f64,
}

/// The model-level summary WeightWatcher reports: means over the layers whose fit succeeded
/// (α-based metrics) or over every layer (the others), and how many layers carry each label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// Mean α over fitted layers.
    pub alpha: Option<f64>,
    /// Mean α̂ over fitted layers.
    pub alpha_weighted: Option<f64>,
    /// Mean log₁₀ Σλ^α over fitted layers.
    pub log_alpha_norm: Option<f64>,
    /// Mean log₁₀ ‖W‖²_F.
    pub log_norm: Option<f64>,
    /// Mean log₁₀ λmax.
    pub log_spectral_norm: Option<f64>,
    /// Mean stable rank.
    pub stable_rank: Option<f64>,
    /// Mean λ₊/λmax of the Marchenko-Pastur bulk fit.
    pub mp_softrank: Option<f64>,
    /// Eigenvalues beyond the Tracy-Widom edge, over all layers.
    pub num_spikes_tw: usize,
    /// Layers with at least one such spike: those that are not pure noise.
    pub layers_with_tw_spikes: usize,
    /// Layers with 2 ≤ α ≤ 6.
    pub well_trained: usize,
    /// Layers with α < 2.
    pub over_trained: usize,
    /// Layers with α > 6.
    pub under_trained: usize,
    /// Layers whose power-law fit failed.
    pub fit_failed: usize,
}

impl ModelSummary {
    /// Summarises layer reports.
    pub fn of(layers: &[LayerReport]) -> Self {
        let mean = |values: Vec<f64>| {
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let fitted = || {
            layers
                .iter()
                .filter_map(|l| l.power_law.as_ref().zip(l.alpha_metrics.as_ref()))
        };
        let count = |label| layers.iter().filter(|l| l.warning == label).count();
        let bulk = || layers.iter().filter_map(|l| l.rmt.bulk.as_ref());
        Self {
            alpha: mean(fitted().map(|(fit, _)| fit.alpha).collect()),
            alpha_weighted: mean(fitted().map(|(_, m)| m.alpha_weighted).collect()),
            log_alpha_norm: mean(fitted().map(|(_, m)| m.log_alpha_norm).collect()),
            log_norm: mean(layers.iter().map(|l| l.metrics.log_norm).collect()),
            log_spectral_norm: mean(layers.iter().map(|l| l.metrics.log_spectral_norm).collect()),
            stable_rank: mean(layers.iter().map(|l| l.metrics.stable_rank).collect()),
            mp_softrank: mean(bulk().map(|b| b.mp_softrank).collect()),
            num_spikes_tw: bulk().map(|b| b.num_spikes_tw).sum(),
            layers_with_tw_spikes: bulk().filter(|b| b.num_spikes_tw > 0).count(),
            well_trained: count(QualityLabel::WellTrained),
            over_trained: count(QualityLabel::OverTrained),
            under_trained: count(QualityLabel::UnderTrained),
            fit_failed: count(QualityLabel::FitFailed),
        }
    }
}

/// Analyses every selected weight layer of `model`; `on_layer(done, total, name)` is called before
/// each layer so callers can show progress.
///
/// Two phases: the spectra, one layer after another on the device (libtorch parallelises each
/// eigensolve), then the statistics of all layers in parallel on the host's cores, where the
/// fits of a model with many small layers would otherwise leave all but one core idle.
pub fn analyze(
    model: &Model,
    options: &AnalyzeOptions,
    mut on_layer: impl FnMut(usize, usize, &str),
) -> Result<Analysis> {
    use rayon::prelude::*;
    let device = options.device.resolve()?;
    let (weight_layers, mut skipped) = layers::select(model, &options.selection)?;
    let total = weight_layers.len();
    let started = std::time::Instant::now();
    let mut spectra = Vec::with_capacity(total);
    for (index, layer) in weight_layers.iter().enumerate() {
        on_layer(index, total, layer.name);
        match layer_spectra(layer, spectra.len(), device, options)? {
            Some(layer_spectra) => spectra.push(layer_spectra),
            None => skipped.push(SkippedTensor {
                name: layer.name.to_string(),
                reason: "all eigenvalues are zero (a zero matrix)".into(),
            }),
        }
    }
    on_layer(total, total, "");
    let spectra_seconds = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let reports: Vec<LayerReport> = spectra
        .into_par_iter()
        .map(|layer| layer_report(layer, options))
        .collect();
    let timing = Timing {
        spectra_seconds,
        statistics_seconds: started.elapsed().as_secs_f64(),
    };
    Ok(Analysis {
        schema: ANALYSIS_SCHEMA,
        model: model.path.display().to_string(),
        format: model.format,
        device: device_name(device),
        convention: options.convention,
        conv_mode: options.selection.conv_mode,
        precision: options.precision,
        summary: ModelSummary::of(&reports),
        layers: reports,
        skipped,
        timing,
    })
}

/// What the device computes for one layer: everything its statistics need, and no tensors.
struct LayerSpectra {
    layer_id: usize,
    name: String,
    kind: LayerKind,
    stored_shape: Vec<i64>,
    dtype: String,
    shape: MatrixShape,
    /// Factor from a squared singular value to a reported eigenvalue.
    scale: f64,
    /// The reported ESD, ascending.
    eigenvalues: Vec<f64>,
    /// Norms, ranks, entropy.
    metrics: SpectralMetrics,
    /// WeightWatcher's scale for the same layer (its fit threshold lives there).
    ww_scale: f64,
    spectrum: spectrum::Spectrum,
    /// Squared singular values of the shuffled matrices, when asked for.
    shuffled: Option<Vec<f64>>,
    /// (σ², right singular vector) of every matrix, when asked for.
    vectors: Option<Vec<(f64, Vec<f64>)>>,
    /// Eigenvalues of the symmetric parts, when asked for and square.
    symmetric: Option<Vec<f64>>,
}

/// The spectra of one layer; `None` when it is identically zero.
fn layer_spectra(
    layer: &WeightLayer<'_>,
    layer_id: usize,
    device: tch::Device,
    options: &AnalyzeOptions,
) -> Result<Option<LayerSpectra>> {
    let shape = layer.shape;
    let matrices = layer.matrices();
    let (spectrum, vectors) = if options.rmt.vectors {
        let (spectrum, decompositions) =
            spectrum::spectrum_with_vectors(layer.name, &matrices, device, options.precision)?;
        let pairs = decompositions
            .into_iter()
            .flat_map(|d| d.squared_singular_values.into_iter().zip(d.vectors))
            .collect::<Vec<_>>();
        (spectrum, Some(pairs))
    } else {
        (
            spectrum::spectrum(layer.name, &matrices, device, options.precision)?,
            None,
        )
    };
    let scale = options.convention.scale(layer.kind, layer.conv_mode, shape);
    let eigenvalues: Vec<f64> = spectrum
        .squared_singular_values
        .iter()
        .map(|s| s * scale)
        .collect();
    let Some(metrics) = SpectralMetrics::from_eigenvalues(&eigenvalues, shape.n) else {
        return Ok(None);
    };
    let shuffled = match options.randomize {
        Some(seed) => {
            let shuffled = spectrum::shuffled(&matrices, seed.wrapping_add(layer_id as u64))?;
            Some(
                spectrum::spectrum(layer.name, &shuffled, device, options.precision)?
                    .squared_singular_values,
            )
        }
        None => None,
    };
    let symmetric = if options.rmt.semicircle {
        spectrum::symmetric_part_eigenvalues(layer.name, &matrices, device)?
    } else {
        None
    };
    Ok(Some(LayerSpectra {
        layer_id,
        name: layer.name.to_string(),
        kind: layer.kind,
        stored_shape: layer.tensor.size(),
        dtype: dtype_name(layer.tensor.kind()),
        shape,
        scale,
        eigenvalues,
        metrics,
        ww_scale: EsdConvention::WeightWatcher.scale(layer.kind, layer.conv_mode, shape),
        spectrum,
        shuffled,
        vectors,
        symmetric,
    }))
}

/// Every statistic of one layer from its spectra: pure arithmetic, safe to run in parallel.
fn layer_report(layer: LayerSpectra, options: &AnalyzeOptions) -> LayerReport {
    let LayerSpectra {
        layer_id,
        name,
        kind,
        stored_shape,
        dtype,
        shape,
        scale,
        eigenvalues,
        metrics,
        ww_scale,
        spectrum,
        shuffled,
        vectors,
        symmetric,
    } = layer;
    let reported = |values: &[f64]| -> Vec<f64> { values.iter().map(|s| s * scale).collect() };
    let sigma2 = spectrum.entry_variance;
    let marchenko_pastur = MarchenkoPastur::new(shape.q(), sigma2).ok().map(|law| {
        // The law is for λ = σ²_sv / N; reported eigenvalues are σ²_sv · scale.
        let to_reported = shape.n as f64 * scale;
        let (lo, hi) = law.edges();
        let mp_lambda_plus = hi * to_reported;
        MarchenkoPasturBulk {
            sigma2,
            mp_lambda_minus: lo * to_reported,
            mp_lambda_plus,
            num_spikes: eigenvalues.iter().filter(|&&l| l > mp_lambda_plus).count(),
        }
    });
    // WeightWatcher's threshold is in its own ESD scale; carry it into the reported one.
    let threshold = WEIGHTWATCHER_EVALS_THRESHOLD * scale / ww_scale;
    let power_law = power_law::fit_tail(&eigenvalues, threshold, options.tail);
    let above_threshold: Vec<f64> = eigenvalues
        .iter()
        .copied()
        .filter(|&l| l > threshold)
        .collect();
    let hill = hill_plateau(&above_threshold);
    let randomization = shuffled.map(|shuffled| {
        let edge = marchenko_pastur.as_ref().map(|mp| mp.mp_lambda_plus);
        Randomization::new(&eigenvalues, &reported(&shuffled), edge)
    });
    let rmt = rmt_report(
        LayerSpectrum {
            pooled: &spectrum.squared_singular_values,
            by_matrix: &spectrum.by_matrix,
            n: shape.n,
            m: shape.m,
            entry_variance: spectrum.entry_variance,
            scale,
        },
        &options.rmt,
        vectors,
        symmetric.as_deref(),
    );
    let alternatives = power_law.as_ref().and_then(|fit| {
        let tail: Vec<f64> = eigenvalues
            .iter()
            .copied()
            .filter(|&l| l >= fit.xmin && l <= fit.xmax)
            .collect();
        alternatives::compare(&tail, fit.xmin, fit.alpha)
    });
    let alpha_metrics = power_law
        .as_ref()
        .map(|fit| AlphaMetrics::new(fit.alpha, &eigenvalues));
    let warning = QualityLabel::of(power_law.as_ref());
    LayerReport {
        layer_id,
        name,
        kind,
        shape: stored_shape,
        dtype,
        n: shape.n,
        m: shape.m,
        q: shape.q(),
        rf: shape.slices,
        metrics,
        marchenko_pastur,
        power_law,
        alternatives,
        alpha_metrics,
        warning,
        hill,
        randomization,
        rmt,
        eigenvalues: options.keep_eigenvalues.then_some(eigenvalues),
    }
}
