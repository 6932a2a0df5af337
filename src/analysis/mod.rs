//! The `analyze` pipeline: layers → spectra → metrics, one record per weight layer.
//!
//! Every command that reports on weights (analyze, report, zoo, track, the monitor) goes
//! through [`analyze`], so a metric has one definition everywhere. By stage: [`options`] (the
//! request and its checked form) → `schedule` (which layers run at once, within memory) →
//! `layer` (one layer's spectra and statistics) → [`record`] (what a layer reports) →
//! [`summary`] (the model's means, a transformer's blocks).
use serde::{Deserialize, Serialize};

use crate::device::device_name;
use crate::error::{Error, Result};
use crate::model::layers::{self, SkippedTensor};
use crate::model::{FileFormat, Model, ROOT_TENSOR_NAME};

mod layer;
pub(crate) use layer::{reads_matrices, report_of_spectrum, LayerMeta};
pub mod options;
pub mod record;
mod schedule;
pub mod shard;
pub mod summary;

pub use options::{AnalysisRequest, AnalyzeOptions, Lengths, RmtRequest, SelectionRequest};
pub use record::{LayerReport, Timing, LAYER_FIELDS};
pub use summary::{BlockSummary, ModelSummary, SummaryField};

/// The schema name and version written at the top of `analyze`'s JSON.
pub const ANALYSIS_SCHEMA: &str = "rmt-torch/analysis/v2";

/// One model's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// [`ANALYSIS_SCHEMA`].
    pub schema: String,
    /// The model file.
    pub model: String,
    /// Its detected format.
    pub format: FileFormat,
    /// Where the spectra were computed.
    pub device: String,
    /// Every option the analysis ran with, defaults filled in ([`AnalyzeOptions::settings`]).
    pub settings: AnalysisRequest,
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
    /// For one share of a model analysed over several machines (`--shard`), which share it is
    /// and what merging the shares needs ([`Analysis::merge`]); absent for a whole model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<shard::SharePart>,
}

/// Analyses every selected weight layer of `model` ([`analyze_with_progress`] without a
/// progress report).
pub fn analyze(model: &Model, options: &AnalyzeOptions) -> Result<Analysis> {
    analyze_with_progress(model, options, |_, _, _| {})
}

/// Analyses every selected weight layer of `model`; `on_layer(done, total, name)` is called
/// before each layer so callers can show progress.
///
/// Two phases: the spectra (one layer after another on a GPU, several layers at once on the
/// CPU, bounded by memory), then the statistics of all layers in parallel on the host's
/// cores, where the fits of a model with many small layers would otherwise leave all but one
/// core idle.
pub fn analyze_with_progress(
    model: &Model,
    options: &AnalyzeOptions,
    on_layer: impl FnMut(usize, usize, &str),
) -> Result<Analysis> {
    analyze_layers(model, options, None, on_layer)
}

/// Share `share` of the analysis of `model` ([`shard`]): the layers the cost-balanced split
/// gives it, each analysed exactly as the whole model's run analyses it; the shares' analyses
/// merge into the whole one ([`Analysis::merge`]).
pub fn analyze_share(
    model: &Model,
    options: &AnalyzeOptions,
    share: shard::Shard,
    on_layer: impl FnMut(usize, usize, &str),
) -> Result<Analysis> {
    analyze_layers(model, options, Some(share), on_layer)
}

fn analyze_layers(
    model: &Model,
    options: &AnalyzeOptions,
    share: Option<shard::Shard>,
    mut on_layer: impl FnMut(usize, usize, &str),
) -> Result<Analysis> {
    use rayon::prelude::*;
    if model.is_bare_tensor() && options.selection.name_pattern.is_none() {
        return Err(Error::NoWeightMatrices(format!(
            "the file holds one bare tensor (torch.save(tensor)): data such as an input batch, not a \
             model's weights; to analyse it as a weight matrix anyway, select it by name: \
             --layers {ROOT_TENSOR_NAME} (Python: layers=\"{ROOT_TENSOR_NAME}\")"
        )));
    }
    let device = options.device.resolve()?;
    let (mut weight_layers, mut skipped) = layers::select(model, &options.selection)?;
    let selected = weight_layers.len();
    let selection_skipped = skipped.len();
    let mut positions: Vec<usize> = (0..selected).collect();
    if let Some(share) = share {
        let shares = shard::assign(&weight_layers, share.count);
        let mut index = 0;
        weight_layers.retain(|_| {
            index += 1;
            shares[index - 1] == share.index
        });
        positions.retain(|&position| shares[position] == share.index);
    }
    let total = weight_layers.len();
    let started = std::time::Instant::now();
    let mut spectra = Vec::with_capacity(total);
    let mut skipped_positions = Vec::new();
    let results = schedule::all_spectra(&weight_layers, &positions, device, options, &mut on_layer);
    for ((layer, result), &position) in weight_layers.iter().zip(results).zip(&positions) {
        let Some(result) = result else {
            continue;
        };
        let reason = match result {
            Ok(Some(mut layer_spectra)) => {
                // A share numbers its records by their place in the whole selection; merging
                // numbers them again.
                layer_spectra.layer_id = if share.is_some() {
                    position
                } else {
                    spectra.len()
                };
                spectra.push(layer_spectra);
                continue;
            }
            Ok(None) => "all eigenvalues are zero (a zero matrix)".to_string(),
            Err(Error::OutOfRange { exponent, .. }) => format!(
                "entries of magnitude about 2^{exponent}: its spectrum lies outside float64's range"
            ),
            Err(err) => return Err(err.in_layer(&model.path, &layer.name)),
        };
        skipped.push(SkippedTensor {
            name: layer.name.to_string(),
            reason,
        });
        skipped_positions.push(position);
    }
    if spectra.is_empty() && share.is_none() {
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
        .map(|layer| layer::layer_report(layer, options))
        .collect();
    let timing = Timing {
        spectra_seconds,
        statistics_seconds: started.elapsed().as_secs_f64(),
    };
    Ok(Analysis {
        schema: ANALYSIS_SCHEMA.into(),
        model: model.path.display().to_string(),
        format: model.format,
        device: device_name(device),
        settings: options.settings().clone(),
        summary: ModelSummary::of(&reports),
        blocks: BlockSummary::of(&reports),
        layers: reports,
        skipped,
        timing,
        share: share.map(|shard| shard::SharePart {
            shard,
            selected,
            selection_skipped,
            skipped_positions,
        }),
    })
}
