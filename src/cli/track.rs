//! `rmt-torch track`: statistics over training, from checkpoints or a monitor's JSONL.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use rmt_torch::report::plots::track::write_track_figures;
use rmt_torch::report::{format_number, table::Table, to_json, OutputFormat};

use super::output::{progress_bar, write_output};
use super::{OutputArgs, PlotArgs, RmtArgs, SelectionArgs};

/// Arguments of `track`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Checkpoints are ordered by the step they record: a global_step, step, iteration or epoch entry
of a torch.save checkpoint, else the last number in the file name (ckpt-1200.pt → 1200).
A SpectralMonitor's JSONL (the library's training-loop plugin) is read with --jsonl.

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
    /// Device for the spectra.
    #[arg(long, default_value = "auto")]
    device: String,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    rmt: RmtArgs,
    #[command(flatten)]
    selection: SelectionArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Tracks the statistics and writes them.
pub fn run(args: TrackArgs) -> anyhow::Result<ExitCode> {
    let format: OutputFormat = args.output.format.parse()?;
    args.plots.prepare()?;
    let selection = args.selection.to_selection()?;
    let records: Vec<Value> = match &args.jsonl {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
            text.lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .map(|(number, line)| {
                    serde_json::from_str::<Value>(line).map_err(|err| {
                        anyhow::anyhow!(
                            "{} line {}: not a monitor record: {err}",
                            path.display(),
                            number + 1
                        )
                    })
                })
                .filter(|record| match (record, &selection.name_pattern) {
                    (Ok(value), Some(pattern)) => {
                        value["name"].as_str().is_some_and(|n| pattern.is_match(n))
                    }
                    _ => true,
                })
                .collect::<anyhow::Result<_>>()?
        }
        None => {
            let options = rmt_torch::AnalyzeOptions {
                device: args.device.parse()?,
                selection,
                rmt: args.rmt.to_options()?,
                keep_eigenvalues: args.plots.plots.is_some(),
                ..Default::default()
            };
            let paths = rmt_torch::zoo::find_models(&args.paths)?;
            let bar = progress_bar(args.quiet, "checkpoints");
            let records = rmt_torch::track::track(&paths, &options, |done, total, path| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(path.display().to_string());
            })?;
            bar.finish_and_clear();
            records
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?
        }
    };
    let text = match format {
        OutputFormat::Json => to_json(&serde_json::json!({
            "schema": "rmt-torch/track/v1",
            "records": records,
        }))?,
        OutputFormat::Csv => rmt_torch::report::csv::to_csv(&rows(&records, &args.metrics))?,
        OutputFormat::Table => {
            let mut headers = vec!["step".to_string(), "layer".to_string()];
            headers.extend(args.metrics.iter().cloned());
            let mut table = Table::new(headers);
            for record in &records {
                let mut row = vec![
                    record["step"].to_string(),
                    record["name"].as_str().unwrap_or("").to_string(),
                ];
                row.extend(
                    args.metrics
                        .iter()
                        .map(|metric| match &record[metric.as_str()] {
                            Value::Number(n) => {
                                n.as_f64().map_or_else(|| n.to_string(), format_number)
                            }
                            Value::Null => "-".to_string(),
                            other => other.to_string(),
                        }),
                );
                table.push(row);
            }
            table.render()
        }
    };
    write_output(&args.output, &text)?;
    args.plots.write(args.quiet, |directory, formats| {
        write_track_figures(&records, &args.metrics, directory, formats)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// step, source, layer name and the chosen metrics of each record.
fn rows(records: &[Value], metrics: &[String]) -> Vec<Value> {
    records
        .iter()
        .map(|record| {
            let mut row = serde_json::Map::new();
            for key in ["step", "source", "name"] {
                row.insert(key.into(), record[key].clone());
            }
            for metric in metrics {
                row.insert(metric.clone(), record[metric.as_str()].clone());
            }
            Value::Object(row)
        })
        .collect()
}
