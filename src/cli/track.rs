//! `rmt-torch track`: statistics over training, from checkpoints or a monitor's JSONL.
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;

use crate::analysis::LAYER_FIELDS;
use crate::model::discovery::find_models;
use crate::report::plots::track::write_track_figures;
use crate::workflows::monitor::{HESSIAN_FIELDS, HESSIAN_RECORD};
use crate::workflows::track::TrackSeries;

use super::output::{advance, progress_bar};
use super::{AnalysisArgs, EntryArgs, OutputArgs, PlotArgs};

/// Arguments of `track`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Checkpoints are ordered by the step they record: a global_step, step, iteration or epoch entry
of a torch.save checkpoint, else the last number in the file name (ckpt-1200.pt → 1200).
A SpectralMonitor's JSONL (the library's training-loop plugin) is read with --jsonl. Its loss
Hessian lines (observe_hessian in Rust, SpectralMonitor(sharpness=(inputs, targets)) in Python),
named <loss Hessian>, add a sharpness column and figure: the Hessian's largest eigenvalue over
training (also: --metrics loss,hessian_trace,hessian_products); --layers never drops them.

EXAMPLES:
  rmt-torch track checkpoints/
  rmt-torch track run/ckpt-*.safetensors --metrics alpha,lambda_max,num_spikes_tw -f csv
  rmt-torch track --jsonl spectra.jsonl --layers fc2
  rmt-torch track checkpoints/ --plots figures/   (one figure per metric, ESD snapshots per layer)")]
pub struct TrackArgs {
    /// Checkpoint files and directories (any format `analyze` reads).
    #[arg(required_unless_present = "jsonl")]
    paths: Vec<PathBuf>,
    /// Read the records of a SpectralMonitor's JSONL instead of analysing checkpoints.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    jsonl: Option<PathBuf>,
    /// Columns of the table and CSV, as JSON field names of `analyze`'s layer records.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "alpha,alpha_weighted,lambda_max,num_spikes_tw,bulk_sigma2,mmp_fraction,spacing_p_goe"
    )]
    metrics: Vec<String>,
    #[command(flatten)]
    entry: EntryArgs,
    #[command(flatten)]
    analysis: AnalysisArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten, next_help_heading = "Figures")]
    plots: PlotArgs,
}

/// Tracks the statistics and writes them.
pub fn run(args: TrackArgs) -> anyhow::Result<u8> {
    args.analysis
        .refuse_unwritten_data(args.output.format, args.plots.plots.is_some())?;
    let options = args
        .analysis
        .options(|request| request.eigenvalues |= args.plots.plots.is_some())?;
    check_metrics(&args.metrics)?;
    args.plots.prepare()?;
    let records: Vec<Value> = match &args.jsonl {
        Some(path) => {
            args.output.prepare(&[path])?;
            crate::workflows::monitor::read_jsonl(path, options.selection())?
        }
        None => {
            let paths = find_models(&args.paths)?;
            let inputs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            args.output.prepare(&inputs)?;
            let bar = progress_bar(args.analysis.quiet, "checkpoints");
            let records = crate::workflows::track::track(
                &paths,
                args.entry.key.as_deref(),
                &options,
                |done, total, path| advance(&bar, done, total, &path.display().to_string()),
            )?;
            bar.finish_and_clear();
            records
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?
        }
    };
    let mut metrics = args.metrics.clone();
    let with_hessian = records
        .iter()
        .any(|record| record["name"] == HESSIAN_RECORD);
    if with_hessian && !metrics.iter().any(|metric| metric == "sharpness") {
        metrics.push("sharpness".into());
    }
    let series = TrackSeries::new(records, metrics);
    args.output.emit(&series)?;
    args.plots.write(args.analysis.quiet, |directory, files| {
        write_track_figures(&series.records, &series.metrics, directory, files)
    })?;
    Ok(0)
}

/// Refuses a metric that is not a field of the records (a misspelt name): the fields of
/// `analyze`'s layer records and of a monitor's loss Hessian records, and the step and source
/// of each.
fn check_metrics(metrics: &[String]) -> anyhow::Result<()> {
    let known = |metric: &str| {
        LAYER_FIELDS.contains(&metric)
            || HESSIAN_FIELDS.contains(&metric)
            || ["step", "source"].contains(&metric)
    };
    let unknown: Vec<&str> = metrics
        .iter()
        .map(String::as_str)
        .filter(|metric| !known(metric))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "invalid option --metrics: unknown field {} (fields of analyze's layer records: {}; of a monitor's loss Hessian records: {})",
        unknown.join(", "),
        LAYER_FIELDS.join(", "),
        HESSIAN_FIELDS.join(", ")
    )
}
