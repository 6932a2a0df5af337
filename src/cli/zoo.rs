//! `rmt-torch zoo`: health checks over many models, with a policy and exit codes for CI.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use rmt_torch::report::{format_optional, table::Table, to_json, OutputFormat};
use rmt_torch::zoo::{
    find_models, read_policy, run_zoo, shard, Rule, Verdict, ZooOptions, ZooReport, HEALTH_FIELDS,
};

use super::output::{progress_bar, write_output};
use super::{OutputArgs, RmtArgs, SelectionArgs};

/// Arguments of `zoo`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(after_long_help = "\
Every model file found is analysed as `rmt-torch analyze` would (ESD convention ww), summarised,
ranked and judged; a file that cannot be read is reported and the run goes on. A file that
holds one bare tensor (torch.save(tensor): an input batch, say) is listed as not a model.

SUMMARY FIELDS (for --rank-by and --fail-if):
  layers, alpha_mean, alpha_weighted_mean, log_norm_mean, log_spectral_norm_mean,
  stable_rank_mean, mp_softrank_mean, well_trained, over_trained, under_trained, fit_failed,
  num_spikes_tw, layers_with_tw_spikes

EXIT CODES: 0 every model healthy, 1 a --fail-if rule violated, 2 a model could not be analysed.

EXAMPLES:
  rmt-torch zoo checkpoints/ --fail-if 'alpha_mean>6' --fail-if 'over_trained>0'
  rmt-torch zoo models/*.safetensors --rank-by alpha_weighted_mean -f json -o zoo.json
  rmt-torch zoo zoo/ --shard 3/16 --fail-if 'alpha_mean>6' -f json -o shard-3.json
  rmt-torch zoo merge shard-*.json            # all 16 shards: one ranked report, one exit code")]
pub struct ZooArgs {
    #[command(subcommand)]
    command: Option<ZooCommand>,
    /// Model files and directories (searched recursively for .pt .pth .bin .ckpt .safetensors
    /// .tar); let the shell expand globs.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Rank by this summary field.
    #[arg(long, default_value = "alpha_mean", value_name = "FIELD")]
    rank_by: String,
    /// Larger values first.
    #[arg(long)]
    descending: bool,
    /// A rule that marks a model unhealthy when true: FIELD OP VALUE with OP one of
    /// > >= < <= == != (repeatable).
    #[arg(long, value_name = "RULE")]
    fail_if: Vec<String>,
    /// A policy file: one rule per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Only shard I of N (0-based): models are assigned by a hash of their path, so the shards
    /// of one run cover every model exactly once; combine them with `zoo merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Cache of results keyed by file content and options; re-runs analyse only new or changed
    /// files. `none` disables it.
    #[arg(long, default_value = ".rmt-torch-cache", value_name = "DIR")]
    cache: String,
    /// Models analysed at once; default from available memory and cores (1 on a GPU).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Device for the spectra.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Also write every model's per-layer records as one CSV (a `model` column first, then
    /// `analyze`'s CSV columns).
    #[arg(long, value_name = "FILE")]
    layers_csv: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    rmt: RmtArgs,
    #[command(flatten)]
    selection: SelectionArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Subcommand)]
enum ZooCommand {
    /// Combine the JSON reports of shards into one report (ranked, judged, same exit codes).
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// JSON reports written by `zoo --shard … -f json`.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs the zoo (or merges shards) and returns its exit code.
pub fn run(args: ZooArgs) -> anyhow::Result<ExitCode> {
    if let Some(ZooCommand::Merge(merge)) = args.command {
        let reports = merge
            .reports
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path)
                    .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
                serde_json::from_str::<ZooReport>(&text).map_err(|err| {
                    anyhow::anyhow!("{} is not a zoo JSON report: {err}", path.display())
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let report = ZooReport::merge(reports)?;
        return write_report(&report, &merge.output);
    }
    if !HEALTH_FIELDS.contains(&args.rank_by.as_str()) {
        anyhow::bail!(
            "--rank-by: unknown field '{}' (one of {})",
            args.rank_by,
            HEALTH_FIELDS.join(", ")
        );
    }
    let mut rules: Vec<Rule> = args
        .fail_if
        .iter()
        .map(|r| r.parse())
        .collect::<Result<_, _>>()?;
    if let Some(policy) = &args.policy {
        rules.extend(read_policy(policy)?);
    }
    let mut models = find_models(&args.paths)?;
    let shard_label = match &args.shard {
        Some(text) => {
            let (index, count) = text
                .split_once('/')
                .and_then(|(i, n)| {
                    Some((
                        i.trim().parse::<usize>().ok()?,
                        n.trim().parse::<usize>().ok()?,
                    ))
                })
                .filter(|&(i, n)| n > 0 && i < n)
                .ok_or_else(|| {
                    anyhow::anyhow!("--shard must be I/N with 0 ≤ I < N, got '{text}'")
                })?;
            models = shard(models, index, count);
            Some(format!("{index}/{count}"))
        }
        None => None,
    };
    let analyze = rmt_torch::AnalyzeOptions {
        device: args.device.parse()?,
        selection: args.selection.to_selection()?,
        rmt: args.rmt.to_options()?,
        ..Default::default()
    };
    let device = analyze.device.resolve()?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| default_jobs(&models, device))
        .max(1);
    // libtorch's threads are shared out between the models analysed at once.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if jobs > 1 {
        tch::set_num_threads((cores / jobs).max(1) as i32);
    }
    let options = ZooOptions {
        options_fingerprint: format!(
            "{} {:?} {:?} {:?}",
            env!("CARGO_PKG_VERSION"),
            args.selection,
            args.rmt,
            device
        ),
        analyze,
        cache: (args.cache != "none").then(|| PathBuf::from(&args.cache)),
        jobs,
        rules: rules.clone(),
    };
    let bar = progress_bar(args.quiet, "models");
    bar.set_length(models.len() as u64);
    let entries = run_zoo(&models, &options, |done, _, path| {
        bar.set_position(done as u64);
        bar.set_message(path.display().to_string());
    });
    bar.finish_and_clear();
    let report = ZooReport::new(entries, &args.rank_by, args.descending, &rules, shard_label);
    if let Some(path) = &args.layers_csv {
        let text = rmt_torch::report::csv::to_csv(&layer_rows(&report))?;
        std::fs::write(path, text)
            .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
    }
    write_report(&report, &args.output)
}

/// One model at a time on a GPU; on a CPU as many as fit in half the available memory at three
/// times the largest file (its tensors, their f64 copy and Gram matrices), at most one per core.
fn default_jobs(models: &[PathBuf], device: tch::Device) -> usize {
    if device != tch::Device::Cpu {
        return 1;
    }
    let largest = models
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let available = rmt_torch::environment::available_memory_bytes().unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    ((available / 2.0 / (3.0 * largest)) as usize).clamp(1, cores)
}

fn write_report(report: &ZooReport, output: &OutputArgs) -> anyhow::Result<ExitCode> {
    let text = match output.format.parse()? {
        OutputFormat::Json => to_json(report)?,
        OutputFormat::Csv => rmt_torch::report::csv::to_csv(&csv_rows(report))?,
        OutputFormat::Table => table(report),
    };
    write_output(output, &text)?;
    Ok(ExitCode::from(report.exit_code()))
}

/// One flat row per model for CSV: rank, path, verdict and the summary fields.
fn csv_rows(report: &ZooReport) -> Vec<serde_json::Value> {
    report
        .models
        .iter()
        .enumerate()
        .map(|(rank, entry)| {
            let mut row = serde_json::Map::new();
            row.insert("rank".into(), (rank + 1).into());
            row.insert("path".into(), entry.path.clone().into());
            row.insert(
                "verdict".into(),
                serde_json::to_value(entry.verdict).unwrap_or_default(),
            );
            row.insert("violations".into(), entry.violations.join(" ").into());
            row.insert(
                "error".into(),
                entry.error.clone().unwrap_or_default().into(),
            );
            for field in HEALTH_FIELDS {
                let value = entry.health.as_ref().and_then(|h| h.field(field).flatten());
                row.insert(
                    (*field).into(),
                    value.map_or(serde_json::Value::Null, Into::into),
                );
            }
            serde_json::Value::Object(row)
        })
        .collect()
}

/// Every layer record of every analysed model, with the model's path first.
fn layer_rows(report: &ZooReport) -> Vec<serde_json::Value> {
    report
        .models
        .iter()
        .filter_map(|entry| Some((entry, entry.analysis.as_ref()?["layers"].as_array()?)))
        .flat_map(|(entry, layers)| {
            layers.iter().filter_map(move |layer| {
                let mut row = serde_json::Map::new();
                row.insert("model".into(), entry.path.clone().into());
                row.extend(layer.as_object()?.clone());
                Some(serde_json::Value::Object(row))
            })
        })
        .collect()
}

fn table(report: &ZooReport) -> String {
    let mut table = Table::new([
        "rank",
        "model",
        "layers",
        "alpha",
        "alpha_w",
        "log_norm",
        "over",
        "under",
        "failed",
        "spikes_tw",
        "verdict",
    ]);
    for (rank, entry) in report.models.iter().enumerate() {
        let verdict = match entry.verdict {
            Verdict::Healthy => "healthy".to_string(),
            Verdict::Violated => format!("violates {}", entry.violations.join(", ")),
            Verdict::Error => format!("error: {}", entry.error.as_deref().unwrap_or("")),
            Verdict::NotAModel => format!("skipped: {}", entry.error.as_deref().unwrap_or("")),
        };
        let health = entry.health.as_ref();
        let count = |f: fn(&rmt_torch::zoo::ModelHealth) -> usize| {
            health.map_or("-".to_string(), |h| f(h).to_string())
        };
        table.push(vec![
            (rank + 1).to_string(),
            entry.path.clone(),
            count(|h| h.layers),
            format_optional(health.and_then(|h| h.alpha_mean)),
            format_optional(health.and_then(|h| h.alpha_weighted_mean)),
            format_optional(health.and_then(|h| h.log_norm_mean)),
            count(|h| h.over_trained),
            count(|h| h.under_trained),
            count(|h| h.fit_failed),
            count(|h| h.num_spikes_tw),
            verdict,
        ]);
    }
    format!(
        "{}{} files ranked by {}{}: {} healthy, {} violate the policy, {} could not be analysed, {} not models{}\n",
        table.render(),
        report.models.len(),
        report.rank_by,
        if report.descending { " (descending)" } else { "" },
        report.healthy,
        report.violated,
        report.errors,
        report.not_models,
        report.shard.as_ref().map_or(String::new(), |s| format!(" (shard {s})")),
    )
}
