//! `rmt-torch zoo`: health checks over many models, with a policy and exit codes for CI.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::model::discovery::search;
use crate::workflows::health::{Policy, Rule};
use crate::workflows::zoo::history::last_run_path;
use crate::workflows::zoo::{model_bytes, run_zoo, Cache, History, Shard, ZooOptions, ZooReport};
use crate::SummaryField;

use super::output::{bytes_progress_bar, check_output_path};
use super::{choice, AnalysisArgs, EntryArgs, OutputArgs};

/// Arguments of `zoo`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(after_long_help = "\
Every model file found is analysed exactly as `rmt-torch analyze` would with the same options,
summarised (the summary of analyze's JSON), ranked and judged; a file that cannot be read is
reported and the run goes on. A file that holds one bare tensor (torch.save(tensor): an input
batch, say) is listed as not a model. Finding no model file at all is an error.

SUMMARY FIELDS (for --rank-by and --fail-if; the names of analyze's JSON summary):
  layers, alpha, alpha_weighted, log_alpha_norm, log_norm, log_spectral_norm, stable_rank,
  mp_softrank (means over layers), num_spikes_tw, layers_with_tw_spikes, random_like,
  well_trained, over_trained, under_trained, fit_failed (counts)

RULES (--fail-if, one per line in a --policy file; a model violating any is unhealthy):
  alpha>6                a summary field compared with a number (OP: > >= < <= == !=)
  max_alpha>6            the largest value of a layer field (any numeric field of analyze's
  min_stable_rank<2      layer records); min_ the smallest
  any(alpha>6)           at least one layer meets the condition
  count(alpha>6)>=2      the number of layers meeting it, compared
  layers=REGEX:RULE      RULE read on the layers whose name matches REGEX only, e.g.
                         layers=attention:any(alpha>6), layers=mlp:under_trained>=1
  delta_alpha>0.5        with --since: a summary field's change since the previous run (now
                         − before; a model new since then violates no delta_ rule)
Without any rule the verdict is \"no policy\": the models are ranked, not judged.

EXIT CODES: 0 no rule violated, 1 a rule violated, 2 a model could not be analysed (or the
command itself failed: no models, a bad rule, an incomplete set of shards).

EXAMPLES:
  rmt-torch zoo checkpoints/ --fail-if 'alpha>6' --fail-if 'over_trained>0'
  rmt-torch zoo llms/ --fail-if 'layers=attn:any(alpha>6)' --fail-if 'count(alpha<2)>=3'
  rmt-torch zoo models/*.safetensors --rank-by alpha_weighted -f json -o zoo.json
  rmt-torch zoo zoo/ --shard 3/16 --fail-if 'alpha>6' -f json -o shard-3.json
  rmt-torch zoo merge shard-*.json            # all 16 shards: one ranked report, one exit code
  rmt-torch zoo checkpoints/ --since last --fail-if 'delta_alpha>0.5' --fail-if 'delta_alpha<-0.5'
  rmt-torch zoo checkpoints/ --since last --html zoo.html")]
pub struct ZooArgs {
    #[command(subcommand)]
    command: Option<ZooCommand>,
    /// Model files and directories (searched recursively for .pt .pth .bin .ckpt .safetensors
    /// .tar .gguf; only regular files are read); let the shell expand globs.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    entry: EntryArgs,
    /// Rank by this summary field.
    #[arg(long, value_parser = choice::<SummaryField>(), default_value_t = SummaryField::Alpha, value_name = "FIELD")]
    rank_by: SummaryField,
    /// Larger values first.
    #[arg(long)]
    descending: bool,
    /// A rule that marks a model unhealthy when true (repeatable): FIELD OP VALUE with OP one
    /// of > >= < <= == != and VALUE a finite number, FIELD a summary field or max_/min_ of a
    /// layer field; any(COND), count(COND) OP VALUE; layers=REGEX: before any of them (RULES
    /// below).
    #[arg(long, value_name = "RULE")]
    fail_if: Vec<Rule>,
    /// A policy file: one rule per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Compare every model with this one, as `rmt-torch compare BASE MODEL` does: a zoo of
    /// quantised or fine-tuned copies of one model, judged by what each changed
    /// (--fail-if-changed). The comparison's summary is each entry's `changes`.
    #[arg(long, value_name = "MODEL")]
    base: Option<PathBuf>,
    /// A rule over each model's comparison with --base (repeatable), as `compare --fail-if`
    /// reads it: 'max_relative_frobenius>0.05', 'any(cka<0.99)', 'max_delta_alpha>0.5'.
    #[arg(long, value_name = "RULE", value_parser = super::compare::compare_rule, requires = "base")]
    fail_if_changed: Vec<Rule>,
    /// Only shard I of N (0-based): models are assigned by a hash of their path, so the shards
    /// of one run cover every model exactly once; combine all N with `zoo merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Cache of results keyed by file content and options; re-runs analyse only new or changed
    /// files. `none` disables it.
    #[arg(long, default_value = ".rmt-torch-cache", value_name = "DIR")]
    cache: String,
    /// Models analysed at once; default from available memory and cores (1 on a GPU).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Report what changed since a previous run: `last` (the last run with the same cache and
    /// shard, which the cache keeps) or a zoo JSON report (`zoo -f json -o FILE`). Models new,
    /// removed and changed (another content) are listed with the summary fields that drifted,
    /// and delta_FIELD rules (`--fail-if 'delta_alpha>0.5'`) measure the drift.
    #[arg(long, value_name = "last|FILE")]
    since: Option<String>,
    /// Also write the zoo as one self-contained HTML page: the models' table (sortable by any
    /// column, each row linking to the model's layers), the distribution of α over the models,
    /// and with --since what changed highlighted.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also write every model's per-layer records as one CSV (a `model` column first, then
    /// `analyze`'s CSV columns).
    #[arg(long, value_name = "FILE")]
    layers_csv: Option<PathBuf>,
    #[command(flatten)]
    analysis: AnalysisArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Subcommand)]
enum ZooCommand {
    /// Combine the JSON reports of all N shards into one report (ranked, judged, same exit
    /// codes); refused unless every shard 0…N−1 is there exactly once.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// JSON reports written by `zoo --shard I/N -f json`.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Also write the merged zoo as one HTML page (as `zoo --html`).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs the zoo (or merges shards) and returns its exit code.
pub fn run(args: ZooArgs) -> anyhow::Result<u8> {
    if let Some(ZooCommand::Merge(merge)) = args.command {
        merge.output.prepare(&[])?;
        let reports = merge
            .reports
            .iter()
            .map(|path| ZooReport::read(path))
            .collect::<crate::Result<Vec<_>>>()?;
        let report = ZooReport::merge(reports)?;
        return write_report(&report, &merge.output, merge.html.as_deref());
    }
    args.analysis
        .refuse_unwritten_data(args.output.format, false)?;
    let analyze = args.analysis.options(|_| ())?;
    let mut policy = Policy {
        rules: args.fail_if.clone(),
    };
    if let Some(path) = &args.policy {
        policy.rules.extend(Policy::read(path)?.rules);
    }
    let found = search(&args.paths)?;
    let mut models = found.models;
    let inputs: Vec<&std::path::Path> = models.iter().map(PathBuf::as_path).collect();
    args.output.prepare(&inputs)?;
    for path in args.layers_csv.iter().chain(&args.html) {
        check_output_path(path, &inputs)?;
    }
    if let Some(shard) = args.shard {
        models = shard.select(models);
    }
    let device = analyze.device().resolve()?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| default_jobs(&models, device))
        .max(1);
    let mut options = ZooOptions {
        analyze,
        key: args.entry.key.clone(),
        cache: (args.cache != "none").then(|| Cache::new(&args.cache)),
        jobs,
        policy: policy.clone(),
        base: args.base.clone(),
        change_policy: args.fail_if_changed.clone(),
        ..ZooOptions::default()
    };
    let last_run = options
        .cache
        .as_ref()
        .map(|_| last_run_path(std::path::Path::new(&args.cache), args.shard));
    let previous = match args.since.as_deref() {
        None => None,
        Some("last") => {
            let Some(last) = &last_run else {
                anyhow::bail!("--since last reads the last run from the cache, and --cache is none: name a report instead");
            };
            if last.is_file() {
                Some((
                    ZooReport::read(last)?,
                    format!("the last run ({})", last.display()),
                ))
            } else {
                if !args.analysis.quiet {
                    eprintln!("no previous run in {}: every model is new", args.cache);
                }
                Some((
                    ZooReport::new(Vec::new(), args.rank_by, args.descending, &[], args.shard),
                    "no previous run".into(),
                ))
            }
        }
        Some(file) => Some((
            ZooReport::read(std::path::Path::new(file))?,
            file.to_string(),
        )),
    };
    options.previous = previous.as_ref().map(|(report, _)| report.clone());
    let bytes: std::collections::HashMap<&PathBuf, u64> = models
        .iter()
        .map(|path| (path, model_bytes(path)))
        .collect();
    let bar = bytes_progress_bar(args.analysis.quiet, "models");
    bar.set_length(bytes.values().sum());
    let entries = run_zoo(&models, &options, |done, total, path| {
        bar.inc(bytes.get(&path.to_path_buf()).copied().unwrap_or(0));
        bar.set_message(format!("{done}/{total} {}", path.display()));
    })?;
    bar.finish_and_clear();
    if options.cache.is_some() && !args.analysis.quiet {
        let cached = entries.iter().filter(|entry| entry.cached).count();
        eprintln!(
            "results cached in {} ({} read from it; --cache none turns it off)",
            args.cache,
            crate::report::counted(cached, "model", "models")
        );
    }
    let mut report = ZooReport::new(
        entries,
        args.rank_by,
        args.descending,
        &[policy.rules.as_slice(), args.fail_if_changed.as_slice()].concat(),
        args.shard,
    );
    if let Some((before, since)) = &previous {
        report.history = Some(History::since(&report.models, before, since));
    }
    report.skipped = found.skipped;
    if let Some(last) = &last_run {
        let text = crate::report::to_json(&report)?;
        if let Err(err) = std::fs::write(last, text) {
            eprintln!("warning: cannot keep this run in {}: {err}", last.display());
        }
    }
    if let Some(path) = &args.layers_csv {
        let text = crate::report::csv::to_csv(&layer_rows(&report))?;
        std::fs::write(path, text)
            .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
    }
    write_report(&report, &args.output, args.html.as_deref())
}

/// One model at a time on a GPU; on a CPU as many as fit in half the available memory at three
/// times the largest model (its tensors, their f64 copy and Gram matrices; a checkpoint
/// directory counts all its files), at most one per core.
fn default_jobs(models: &[PathBuf], device: tch::Device) -> usize {
    if device != tch::Device::Cpu {
        return 1;
    }
    let largest = models
        .iter()
        .map(|p| model_bytes(p))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let available = crate::environment::available_memory_bytes().unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    ((available / 2.0 / (3.0 * largest)) as usize).clamp(1, cores)
}

/// Writes the report (and its page, when asked for); its exit code.
fn write_report(
    report: &ZooReport,
    output: &OutputArgs,
    html: Option<&std::path::Path>,
) -> anyhow::Result<u8> {
    output.emit(report)?;
    if let Some(path) = html {
        std::fs::write(path, crate::report::zoo_html::zoo_html(report)?)
            .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
    }
    Ok(report.exit_code())
}

/// Every layer record of every analysed model, with the model's path first.
fn layer_rows(report: &ZooReport) -> Vec<serde_json::Value> {
    report
        .models
        .iter()
        .filter_map(|entry| Some((entry, &entry.analysis.as_ref()?.layers)))
        .flat_map(|(entry, layers)| {
            layers.iter().filter_map(move |layer| {
                let mut row = serde_json::Map::new();
                row.insert("model".into(), entry.path.clone().into());
                row.extend(serde_json::to_value(layer).ok()?.as_object()?.clone());
                Some(serde_json::Value::Object(row))
            })
        })
        .collect()
}
