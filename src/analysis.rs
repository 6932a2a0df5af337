//! The `analyze` pipeline: layers → spectra → metrics, one record per weight layer.
//!
//! Every command that reports on weights (analyze, and later jacobian, track, zoo) goes through
//! [`analyze`], so a metric has one definition everywhere.
use serde::{Deserialize, Serialize};

use crate::device::{device_name, DeviceChoice};
use crate::error::{Error, Result};
use crate::esd::{EsdConvention, EsdScale};
use crate::heavy_tail::alternatives::{self, TailAlternatives};
use crate::heavy_tail::hill::{hill_plateau, HillEstimate};
use crate::heavy_tail::power_law::{self, PowerLawFit, TailOptions};
use crate::heavy_tail::quality::{AlphaMetrics, QualityLabel};
use crate::heavy_tail::randomization::Randomization;
use crate::model::layers::{
    self, ConvMode, LayerKind, LayerSelection, MatrixShape, SkippedTensor, WeightLayer,
};
use crate::model::roles::{self, Part, Sublayer};
use crate::model::{FileFormat, Model};
use crate::option_names::{option_names, serde_as_text};
use crate::rmt_suite::{
    rmt_report, LayerSpectrum, RmtOptions, RmtReport, FIGURE_NUMBER_VARIANCE_LENGTHS,
};
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
    /// layer's position among the selected tensors); `None` skips it (it doubles the cost).
    pub randomize: Option<u64>,
    /// The universal RMT suite: Marchenko-Pastur fits, Tracy-Widom, spacings, and on request
    /// number variance, Porter-Thomas and the semicircle.
    pub rmt: RmtOptions,
}

impl AnalyzeOptions {
    /// Checks every parameter once, before any work (in the manner of linfa's parameter
    /// guards): [`analyze`] calls it, and front ends call it to fail before loading a model.
    /// Errors are [`crate::Error::InvalidParameter`], naming the parameter.
    pub fn check(&self) -> Result<()> {
        self.selection.check()?;
        self.rmt.check()
    }

    /// The same options, also keeping what figures draw: eigenvalues, unfolded spacings and
    /// Σ²(L) (on [`FIGURE_NUMBER_VARIANCE_LENGTHS`] unless lengths were chosen). Porter-Thomas
    /// stays opt-in (`rmt.vectors`): it costs an eigendecomposition per matrix.
    pub fn with_figure_data(mut self) -> Self {
        self.keep_eigenvalues = true;
        self.rmt.keep_spacings = true;
        if self.rmt.number_variance.is_empty() {
            self.rmt.number_variance = FIGURE_NUMBER_VARIANCE_LENGTHS.to_vec();
        }
        self
    }
}

/// Every field a layer record of `analyze`'s JSON can carry (those of opt-in results and of
/// statistics a small layer cannot have included), in the order they appear: what `track
/// --metrics` and other consumers of the records may name.
pub const LAYER_FIELDS: &[&str] = &[
    "layer_id",
    "name",
    "kind",
    "block",
    "role",
    "shape",
    "dtype",
    "N",
    "M",
    "Q",
    "rf",
    "num_evals",
    "lambda_min",
    "lambda_max",
    "norm",
    "log_norm",
    "spectral_norm",
    "log_spectral_norm",
    "stable_rank",
    "matrix_rank",
    "sv_max",
    "sv_min",
    "rank_loss",
    "weak_rank_loss",
    "condition_number",
    "entropy",
    "alpha",
    "xmin",
    "xmax",
    "D",
    "sigma",
    "num_pl_spikes",
    "fit_method",
    "num_fingers",
    "raw_alpha",
    "exponential_lambda",
    "llr_exponential",
    "p_exponential",
    "lognormal_mu",
    "lognormal_sigma",
    "llr_lognormal",
    "p_lognormal",
    "tpl_alpha",
    "tpl_lambda",
    "llr_truncated_power_law",
    "p_truncated_power_law",
    "alpha_weighted",
    "log_alpha_norm",
    "quality",
    "warning",
    "hill_alpha",
    "hill_k_min",
    "hill_k_max",
    "hill_plateau_cv",
    "rand_lambda_max",
    "rand_distance",
    "num_traps",
    "sigma2",
    "mp_lambda_minus",
    "mp_lambda_plus",
    "num_spikes",
    "bulk_sigma2",
    "bulk_lambda_plus",
    "bulk_fraction",
    "bulk_ks",
    "bulk_ks_p",
    "tw_threshold",
    "tw_statistic",
    "tw_p_value",
    "num_spikes_tw",
    "mp_softrank",
    "mmp_sigma2",
    "mmp_lambda_minus",
    "mmp_lambda_plus",
    "mmp_fraction",
    "mmp_num_spikes",
    "mmp_ks",
    "mmp_ks_p",
    "porter_thomas",
    "eigenvalues",
    "spacing_count",
    "spacing_ks_goe",
    "spacing_p_goe",
    "spacing_p_gue",
    "spacing_p_poisson",
    "spacing_ratio",
    "number_variance",
    "semicircle_sigma2",
    "semicircle_ks",
    "semicircle_ks_p",
    "semicircle2_sigma2_narrow",
    "semicircle2_sigma2_wide",
    "semicircle2_ks_p",
    "unit_spacings",
];

/// Everything reported for one weight layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Position among the analysed layers, from 0.
    pub layer_id: usize,
    /// The tensor's dotted name.
    pub name: String,
    /// Dense, conv1d or conv2d.
    pub kind: LayerKind,
    /// The transformer block the weight belongs to, read from its name; `None` outside blocks
    /// and in models that are not transformers.
    pub block: Option<usize>,
    /// Its part of a transformer ([`roles::role_of`]); `None` when its name is not one.
    pub role: Option<Part>,
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
    /// The layer's label from both readings ([`QualityLabel::of`]): `random-like` when the
    /// RMT suite cannot tell its spectrum from noise, else the α label.
    pub quality: QualityLabel,
    /// The label from α alone, WeightWatcher's `warning` column ([`QualityLabel::from_alpha`]).
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
    /// Whether WeightWatcher 0.7.7's layer rules, rank and entropy were applied (`--ww-compat`).
    pub ww_compat: bool,
    /// Gram arithmetic.
    pub precision: Precision,
    /// One record per analysed layer.
    pub layers: Vec<LayerReport>,
    /// Tensors not analysed, with reasons.
    pub skipped: Vec<SkippedTensor>,
    /// Means over the layers and label counts.
    pub summary: ModelSummary,
    /// A transformer's blocks in order, attention against MLP; empty for other models.
    pub blocks: Vec<BlockSummary>,
    /// Where the time went.
    pub timing: Timing,
}

/// One transformer block: the mean α of its attention and of its MLP weights whose fit
/// succeeded — α against depth, the picture drawn for LLMs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockSummary {
    /// The block's number.
    pub block: usize,
    /// Mean α of the query, key, value (or fused) and output projections.
    pub attention_alpha: Option<f64>,
    /// Attention weights analysed.
    pub attention_layers: usize,
    /// Mean α of the gate, up and down projections.
    pub mlp_alpha: Option<f64>,
    /// MLP weights analysed.
    pub mlp_layers: usize,
}

impl BlockSummary {
    /// The blocks of `layers`, in order of block number.
    pub fn of(layers: &[LayerReport]) -> Vec<Self> {
        let mut blocks: Vec<usize> = layers.iter().filter_map(|l| l.block).collect();
        blocks.sort_unstable();
        blocks.dedup();
        blocks
            .into_iter()
            .map(|block| {
                let of = |sublayer| {
                    let members: Vec<&LayerReport> = layers
                        .iter()
                        .filter(|l| {
                            l.block == Some(block)
                                && l.role.and_then(Part::sublayer) == Some(sublayer)
                        })
                        .collect();
                    let alphas: Vec<f64> = members
                        .iter()
                        .filter_map(|l| l.power_law.as_ref().map(|fit| fit.alpha))
                        .collect();
                    let mean = (!alphas.is_empty())
                        .then(|| alphas.iter().sum::<f64>() / alphas.len() as f64);
                    (mean, members.len())
                };
                let (attention_alpha, attention_layers) = of(Sublayer::Attention);
                let (mlp_alpha, mlp_layers) = of(Sublayer::Mlp);
                Self {
                    block,
                    attention_alpha,
                    attention_layers,
                    mlp_alpha,
                    mlp_layers,
                }
            })
            .collect()
    }
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Layers analysed.
    pub layers: usize,
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
    /// Layers whose spectrum the RMT suite cannot tell from noise (quality `random-like`).
    pub random_like: usize,
    /// Other layers with 2 ≤ α ≤ 6.
    pub well_trained: usize,
    /// Other layers with α < 2.
    pub over_trained: usize,
    /// Other layers with α > 6.
    pub under_trained: usize,
    /// Other layers whose power-law fit failed.
    pub fit_failed: usize,
}

/// A [`ModelSummary`] field by its JSON name: what zoo rankings and policy rules name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryField {
    /// [`ModelSummary::layers`].
    Layers,
    /// [`ModelSummary::alpha`].
    Alpha,
    /// [`ModelSummary::alpha_weighted`].
    AlphaWeighted,
    /// [`ModelSummary::log_alpha_norm`].
    LogAlphaNorm,
    /// [`ModelSummary::log_norm`].
    LogNorm,
    /// [`ModelSummary::log_spectral_norm`].
    LogSpectralNorm,
    /// [`ModelSummary::stable_rank`].
    StableRank,
    /// [`ModelSummary::mp_softrank`].
    MpSoftrank,
    /// [`ModelSummary::num_spikes_tw`].
    NumSpikesTw,
    /// [`ModelSummary::layers_with_tw_spikes`].
    LayersWithTwSpikes,
    /// [`ModelSummary::random_like`].
    RandomLike,
    /// [`ModelSummary::well_trained`].
    WellTrained,
    /// [`ModelSummary::over_trained`].
    OverTrained,
    /// [`ModelSummary::under_trained`].
    UnderTrained,
    /// [`ModelSummary::fit_failed`].
    FitFailed,
}

option_names!(SummaryField, "summary field", {
    Layers => "layers",
    Alpha => "alpha",
    AlphaWeighted => "alpha_weighted",
    LogAlphaNorm => "log_alpha_norm",
    LogNorm => "log_norm",
    LogSpectralNorm => "log_spectral_norm",
    StableRank => "stable_rank",
    MpSoftrank => "mp_softrank",
    NumSpikesTw => "num_spikes_tw",
    LayersWithTwSpikes => "layers_with_tw_spikes",
    RandomLike => "random_like",
    WellTrained => "well_trained",
    OverTrained => "over_trained",
    UnderTrained => "under_trained",
    FitFailed => "fit_failed",
});

serde_as_text!(SummaryField);

impl ModelSummary {
    /// A field's value; `None` for a mean over no layer.
    pub fn get(&self, field: SummaryField) -> Option<f64> {
        let count = |n: usize| Some(n as f64);
        match field {
            SummaryField::Layers => count(self.layers),
            SummaryField::Alpha => self.alpha,
            SummaryField::AlphaWeighted => self.alpha_weighted,
            SummaryField::LogAlphaNorm => self.log_alpha_norm,
            SummaryField::LogNorm => self.log_norm,
            SummaryField::LogSpectralNorm => self.log_spectral_norm,
            SummaryField::StableRank => self.stable_rank,
            SummaryField::MpSoftrank => self.mp_softrank,
            SummaryField::NumSpikesTw => count(self.num_spikes_tw),
            SummaryField::LayersWithTwSpikes => count(self.layers_with_tw_spikes),
            SummaryField::RandomLike => count(self.random_like),
            SummaryField::WellTrained => count(self.well_trained),
            SummaryField::OverTrained => count(self.over_trained),
            SummaryField::UnderTrained => count(self.under_trained),
            SummaryField::FitFailed => count(self.fit_failed),
        }
    }

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
        let count = |label| layers.iter().filter(|l| l.quality == label).count();
        let bulk = || layers.iter().filter_map(|l| l.rmt.bulk.as_ref());
        Self {
            layers: layers.len(),
            alpha: mean(fitted().map(|(fit, _)| fit.alpha).collect()),
            alpha_weighted: mean(fitted().map(|(_, m)| m.alpha_weighted).collect()),
            log_alpha_norm: mean(fitted().map(|(_, m)| m.log_alpha_norm).collect()),
            log_norm: mean(layers.iter().map(|l| l.metrics.log_norm).collect()),
            log_spectral_norm: mean(layers.iter().map(|l| l.metrics.log_spectral_norm).collect()),
            stable_rank: mean(layers.iter().map(|l| l.metrics.stable_rank).collect()),
            mp_softrank: mean(bulk().map(|b| b.mp_softrank).collect()),
            num_spikes_tw: bulk().map(|b| b.num_spikes_tw).sum(),
            layers_with_tw_spikes: bulk().filter(|b| b.num_spikes_tw > 0).count(),
            random_like: count(QualityLabel::RandomLike),
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
/// Two phases: the spectra (one layer after another on a GPU, several layers at once on the
/// CPU, bounded by memory), then the statistics of all layers in parallel on the host's
/// cores, where the fits of a model with many small layers would otherwise leave all but one
/// core idle.
pub fn analyze(
    model: &Model,
    options: &AnalyzeOptions,
    mut on_layer: impl FnMut(usize, usize, &str),
) -> Result<Analysis> {
    use rayon::prelude::*;
    options.check()?;
    let device = options.device.resolve()?;
    let (weight_layers, mut skipped) = layers::select(model, &options.selection)?;
    let total = weight_layers.len();
    let started = std::time::Instant::now();
    let mut spectra = Vec::with_capacity(total);
    let results = all_spectra(&weight_layers, device, options, &mut on_layer);
    for (layer, result) in weight_layers.iter().zip(results) {
        let Some(result) = result else {
            continue;
        };
        match result {
            Ok(Some(mut layer_spectra)) => {
                layer_spectra.layer_id = spectra.len();
                spectra.push(layer_spectra);
            }
            Ok(None) => skipped.push(SkippedTensor {
                name: layer.name.to_string(),
                reason: "all eigenvalues are zero (a zero matrix)".into(),
            }),
            Err(Error::OutOfRange { exponent, .. }) => skipped.push(SkippedTensor {
                name: layer.name.to_string(),
                reason: format!(
                    "entries of magnitude about 2^{exponent}: its spectrum lies outside float64's range"
                ),
            }),
            Err(err) => return Err(err),
        }
    }
    if spectra.is_empty() {
        let reasons: Vec<String> = skipped
            .iter()
            .rev()
            .take(3)
            .map(|s| format!("{}: {}", s.name, s.reason))
            .collect();
        return Err(Error::NoWeightMatrices(format!(
            "no weight matrix has a spectrum to analyse ({})",
            reasons.join("; ")
        )));
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
        ww_compat: options.selection.ww_compat,
        precision: options.precision,
        summary: ModelSummary::of(&reports),
        blocks: BlockSummary::of(&reports),
        layers: reports,
        skipped,
        timing,
    })
}

/// What the device computes for one layer: everything its statistics need, and no tensors.
struct LayerSpectra {
    layer_id: usize,
    meta: LayerMeta,
    /// From squared singular values to reported eigenvalues.
    scale: EsdScale,
    /// The reported ESD, ascending.
    eigenvalues: Vec<f64>,
    /// Norms, ranks, entropy.
    metrics: SpectralMetrics,
    spectrum: spectrum::Spectrum,
    /// Squared singular values of the shuffled matrices, when asked for.
    shuffled: Option<Vec<f64>>,
    /// (σ², right singular vector) of every matrix, when asked for.
    vectors: Option<Vec<(f64, Vec<f64>)>>,
    /// Eigenvalues of the symmetric parts, when asked for and square.
    symmetric: Option<Vec<f64>>,
}

/// What a layer's record says of the tensor itself, owned so that it can travel with the
/// layer's matrices and spectra between threads.
struct LayerMeta {
    name: String,
    kind: LayerKind,
    conv_mode: ConvMode,
    shape: MatrixShape,
    stored_shape: Vec<i64>,
    dtype: String,
}

/// One selected layer read from the model.
struct LoadedLayer {
    /// Position among the selected layers: seeds its shuffles.
    index: usize,
    meta: LayerMeta,
    /// Its stack of matrices [slices, N, M].
    matrices: tch::Tensor,
}

impl LoadedLayer {
    fn load(layer: &WeightLayer<'_>, index: usize) -> Result<Self> {
        Ok(Self {
            index,
            meta: LayerMeta {
                name: layer.name.to_string(),
                kind: layer.kind,
                conv_mode: layer.conv_mode,
                shape: layer.shape,
                stored_shape: layer.tensor.shape.clone(),
                dtype: layer.tensor.dtype.to_string(),
            },
            matrices: layer.matrices()?,
        })
    }
}

/// The spectra of every selected layer, in order; `None` for layers not reached because an
/// earlier one failed.
///
/// On a GPU, one layer after another. On the CPU, whose eigensolves run on one thread (so that
/// the numbers do not depend on the thread count), up to one layer per libtorch thread at once,
/// each with its share of the threads. Layers are read here, the costliest first and then in
/// order ([`costliest_first`]), each only once it may start: while fewer layers than threads
/// are in flight and their working sets ([`LayerBytes`]) fit in [`in_flight_budget`] (one always
/// may). So at most one layer per thread is resident, and a model larger than memory streams.
fn all_spectra(
    layers: &[WeightLayer<'_>],
    device: tch::Device,
    options: &AnalyzeOptions,
    on_layer: &mut impl FnMut(usize, usize, &str),
) -> Vec<Option<Result<Option<LayerSpectra>>>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Condvar, Mutex};
    let total = layers.len();
    let threads = tch::get_num_threads().max(1);
    let workers = (threads as usize).min(total);
    let mut results: Vec<Option<Result<Option<LayerSpectra>>>> = (0..total).map(|_| None).collect();
    if device != tch::Device::Cpu || workers <= 1 {
        for (index, layer) in layers.iter().enumerate() {
            on_layer(index, total, &layer.name);
            let result = LoadedLayer::load(layer, index)
                .and_then(|loaded| layer_spectra(loaded, device, options, || ()));
            let failed = result.is_err();
            results[index] = Some(result);
            if failed {
                break;
            }
        }
        return results;
    }
    let bytes: Vec<LayerBytes> = layers.iter().map(|l| LayerBytes::of(l, options)).collect();
    let budget = in_flight_budget(&bytes, workers);
    let in_flight: InFlight = (Mutex::new((0, 0.0)), Condvar::new());
    let failed = AtomicBool::new(false);
    let (jobs, queue) = mpsc::channel::<(LoadedLayer, LayerBytes)>();
    let queue = Mutex::new(queue);
    let (done, finished) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (queue, done, in_flight, failed) = (&queue, done.clone(), &in_flight, &failed);
            scope.spawn(move || {
                tch::set_num_threads((threads / workers as i32).max(1));
                loop {
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((loaded, bytes)) = job else { break };
                    let mut slot = Slot {
                        in_flight,
                        failed,
                        held: bytes.peak,
                        solving: bytes.solving,
                    };
                    let index = loaded.index;
                    let result = layer_spectra(loaded, device, options, || slot.shrink());
                    crate::environment::release_freed_memory();
                    failed.fetch_or(result.is_err(), Ordering::Relaxed);
                    drop(slot);
                    if done.send((index, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        for (dispatched, index) in costliest_first(layers).into_iter().enumerate() {
            let (layer, bytes) = (&layers[index], bytes[index]);
            {
                let mut busy = in_flight.0.lock().unwrap_or_else(|p| p.into_inner());
                while !failed.load(Ordering::Relaxed)
                    && (busy.0 >= workers || (busy.0 > 0 && busy.1 + bytes.peak > budget))
                {
                    busy = in_flight.1.wait(busy).unwrap_or_else(|p| p.into_inner());
                }
                busy.0 += 1;
                busy.1 += bytes.peak;
            }
            if failed.load(Ordering::Relaxed) {
                break;
            }
            on_layer(dispatched, total, &layer.name);
            let loaded = match LoadedLayer::load(layer, index) {
                Ok(loaded) => loaded,
                Err(err) => {
                    results[index] = Some(Err(err));
                    break;
                }
            };
            if jobs.send((loaded, bytes)).is_err() {
                break;
            }
        }
        drop(jobs);
        for (index, result) in finished {
            results[index] = Some(result);
        }
    });
    tch::set_num_threads(threads);
    results
}

/// Bytes one layer holds while in flight on the CPU, an upper bound by phase. A layer already
/// in memory (a model passed in by a program) counts only what its spectrum adds.
#[derive(Debug, Clone, Copy)]
struct LayerBytes {
    /// The most it holds: until its Gram matrices are formed, the stack as read and the Gram
    /// product's working set ([`spectrum::WorkingSet`]).
    peak: f64,
    /// Once they are formed: the eigensolve's working set, and the stack too where a later step
    /// reads it again ([`keeps_stack`]; what that step needs beyond it is checked against the
    /// available memory when it runs).
    solving: f64,
}

impl LayerBytes {
    fn of(layer: &WeightLayer<'_>, options: &AnalyzeOptions) -> Self {
        let (slices, n, m) = layer.shape.sizes();
        let stored = if layer.tensor.is_in_memory() {
            0.0
        } else {
            slices * n * m * layer.tensor.dtype.loaded_size() as f64
        };
        let working = spectrum::WorkingSet::of(slices, n, m, options.rmt.vectors);
        let solving = working.solving + if keeps_stack(options) { stored } else { 0.0 };
        Self {
            peak: (stored + working.forming).max(solving),
            solving,
        }
    }
}

/// Whether a layer's stack is read again once its spectrum is known: for WeightWatcher's SVD of
/// rank-deficient layers, shuffles and symmetric parts. Otherwise it is freed as soon as its
/// Gram matrices are formed.
fn keeps_stack(options: &AnalyzeOptions) -> bool {
    options.selection.ww_compat || options.randomize.is_some() || options.rmt.semicircle
}

/// Each worker may hold at least this much: small layers then never wait for memory.
const SMALL_LAYER_BYTES: f64 = (64 << 20) as f64;

/// The bytes the layers in flight may hold together: what the largest layer needs alone, or,
/// when that is more, one of the largest eigensolves per worker (each at least
/// [`SMALL_LAYER_BYTES`]), since each eigensolve runs on one core; and at most half the available
/// memory. A checkpoint of many similar layers (a transformer's) then peaks at libtorch's
/// footprint plus its largest layer's working set, as if its layers ran one after another,
/// while the cores stay busy: the largest layer's Gram product runs on all of them (its row
/// blocks are shared out) and its eigensolve beside smaller layers; two 4096-wide eigensolves
/// (AlexNet's, VGG19's) still run at once.
fn in_flight_budget(bytes: &[LayerBytes], workers: usize) -> f64 {
    let largest = |of: fn(&LayerBytes) -> f64| bytes.iter().map(of).fold(0.0, f64::max);
    let solves = workers as f64 * largest(|b| b.solving).max(SMALL_LAYER_BYTES);
    let available = crate::environment::available_memory_bytes().map_or(f64::INFINITY, |b| b / 2.0);
    largest(|b| b.peak).max(solves).min(available)
}

/// The order layers are started in: the costliest (Gram product and eigensolve) first, then
/// the others as stored. Its eigensolve, which runs on one thread, then overlaps the rest of
/// the model instead of being the last work left with the other cores idle (VGG19's 25088 ×
/// 4096 layer); only one layer moves, so the layers in flight beside it stay small.
fn costliest_first(layers: &[WeightLayer<'_>]) -> Vec<usize> {
    let cost = |layer: &WeightLayer<'_>| {
        let (slices, n, m) = layer.shape.sizes();
        // An eigensolve's flop runs several times slower than a product's.
        slices * m * m * (n + 4.0 * m)
    };
    let costliest = layers
        .iter()
        .enumerate()
        .max_by(|a, b| cost(a.1).total_cmp(&cost(b.1)))
        .map(|(index, _)| index);
    costliest
        .into_iter()
        .chain((0..layers.len()).filter(|&index| Some(index) != costliest))
        .collect()
}

/// A layer's place among those in flight (their count and working-set bytes), given back when
/// dropped: also when its worker panics, which then stops the reading of further layers, so
/// the reader never waits for a worker that is gone.
struct Slot<'a> {
    in_flight: &'a InFlight,
    failed: &'a std::sync::atomic::AtomicBool,
    /// The bytes counted for the layer now.
    held: f64,
    /// What it holds once its Gram matrices are formed ([`LayerBytes::solving`]).
    solving: f64,
}

impl Slot<'_> {
    /// The layer's Gram matrices are formed: it holds only what its eigensolve needs from now.
    fn shrink(&mut self) {
        {
            let mut busy = self.in_flight.0.lock().unwrap_or_else(|p| p.into_inner());
            busy.1 -= self.held - self.solving;
        }
        self.held = self.solving;
        self.in_flight.1.notify_all();
    }
}

/// Layers in flight and their working sets' bytes, with the reader's wake-up call.
type InFlight = (std::sync::Mutex<(usize, f64)>, std::sync::Condvar);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        {
            let mut busy = self.in_flight.0.lock().unwrap_or_else(|p| p.into_inner());
            busy.0 -= 1;
            busy.1 -= self.held;
        }
        self.in_flight.1.notify_all();
    }
}

/// The spectra of one layer; `None` when it is identically zero. Its `layer_id` is set by the
/// caller, once the layers before it are known to have spectra. The stack is freed once its
/// Gram matrices are formed unless a later step reads it ([`keeps_stack`]); `gram_formed` is
/// called then.
fn layer_spectra(
    layer: LoadedLayer,
    device: tch::Device,
    options: &AnalyzeOptions,
    gram_formed: impl FnOnce(),
) -> Result<Option<LayerSpectra>> {
    let LoadedLayer {
        index,
        meta,
        matrices,
    } = layer;
    let (name, shape) = (meta.name.as_str(), meta.shape);
    let gram = spectrum::Gram::of(name, &matrices, device, options.precision)?;
    let kept = keeps_stack(options).then_some(matrices);
    gram_formed();
    let (mut spectrum, mut vectors) = if options.rmt.vectors {
        let (spectrum, decompositions) = gram.spectrum_with_vectors()?;
        let pairs = decompositions
            .into_iter()
            .flat_map(|d| d.squared_singular_values.into_iter().zip(d.vectors))
            .collect::<Vec<_>>();
        (spectrum, Some(pairs))
    } else {
        (gram.spectrum()?, None)
    };
    let ww_compat = options.selection.ww_compat;
    if let (true, Some(matrices)) = (ww_compat, &kept) {
        spectrum.resolve_round_off(name, matrices, device)?;
    }
    if meta.kind == LayerKind::Conv1d && meta.conv_mode == ConvMode::WeightWatcher {
        spectrum.keep_largest(shape.m);
        if let Some(pairs) = &mut vectors {
            pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
            pairs.truncate(shape.m);
        }
    }
    let scale = EsdScale::new(options.convention, meta.kind, meta.conv_mode, shape);
    let eigenvalues = scale.report_all(&spectrum.squared_singular_values);
    let Some(metrics) = SpectralMetrics::new(&eigenvalues, &spectrum, &scale, shape.n, ww_compat)
    else {
        return Ok(None);
    };
    let shuffled = match (options.randomize, &kept) {
        (Some(seed), Some(matrices)) => {
            let shuffled = spectrum::shuffled(matrices, seed.wrapping_add(index as u64))?;
            Some(
                spectrum::spectrum(name, &shuffled, device, options.precision)?
                    .squared_singular_values,
            )
        }
        _ => None,
    };
    let symmetric = match &kept {
        Some(matrices) if options.rmt.semicircle => {
            spectrum::symmetric_part_eigenvalues(name, matrices, device)?
        }
        _ => None,
    };
    Ok(Some(LayerSpectra {
        layer_id: index,
        meta,
        scale,
        eigenvalues,
        metrics,
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
        meta:
            LayerMeta {
                name,
                kind,
                shape,
                stored_shape,
                dtype,
                ..
            },
        scale,
        eigenvalues,
        metrics,
        spectrum,
        shuffled,
        vectors,
        symmetric,
    } = layer;
    let threshold = scale.fit_threshold();
    let power_law = power_law::fit_tail(&eigenvalues, threshold, options.tail);
    let above_threshold: Vec<f64> = eigenvalues
        .iter()
        .copied()
        .filter(|&l| l > threshold)
        .collect();
    let hill = hill_plateau(&above_threshold);
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
    let randomization = shuffled.map(|shuffled| {
        let edge = rmt.marchenko_pastur.as_ref().map(|mp| mp.mp_lambda_plus);
        Randomization::new(&eigenvalues, &scale.report_all(&shuffled), edge)
    });
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
    let warning = QualityLabel::from_alpha(power_law.as_ref());
    let quality = QualityLabel::of(power_law.as_ref(), rmt.is_noise(options.rmt.level));
    let role = roles::role_of(&name);
    LayerReport {
        layer_id,
        block: role.and_then(|r| r.block),
        role: role.map(|r| r.part),
        name,
        kind,
        shape: stored_shape,
        dtype,
        n: shape.n,
        m: shape.m,
        q: shape.q(),
        rf: shape.slices,
        metrics,
        power_law,
        alternatives,
        alpha_metrics,
        quality,
        warning,
        hill,
        randomization,
        rmt,
        eigenvalues: options.keep_eigenvalues.then_some(eigenvalues),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::option_names::OptionNames;

    #[test]
    fn summary_fields_are_the_json_names() {
        let summary = ModelSummary::of(&[]);
        let json = serde_json::to_value(&summary).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, SummaryField::NAMES);
        for name in SummaryField::NAMES {
            let field: SummaryField = name.parse().unwrap();
            assert_eq!(summary.get(field), json[*name].as_f64(), "{name}");
        }
    }
}
