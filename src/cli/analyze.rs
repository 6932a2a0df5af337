//! `rmt-torch analyze`: per-layer spectral statistics.

use anyhow::Context;
use clap::Args;

use std::path::{Path, PathBuf};

use crate::analysis::shard::Shard;
use crate::report::plots::write_analysis_figures;
use crate::report::{analysis_table, Columns, OutputFormat};
use crate::{Analysis, AnalyzeOptions, Model};

use super::output::{advance, progress_bar, write_output};
use super::{AnalysisArgs, EntryArgs, OutputArgs, PlotArgs};

/// Arguments of `analyze`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(after_long_help = "\
COLUMNS (JSON/CSV field names follow WeightWatcher's where it has the quantity):
  N, M, Q          rows and columns of each matrix (N ≥ M) and Q = N/M
  rf               matrices pooled into the ESD (kernel positions of a sliced conv)
  lambda_max       largest eigenvalue λmax = spectral_norm
  norm, log_norm   Σλ = ‖W‖²_F and its log10
  stable_rank      Σλ / λmax
  entropy          spectral entropy −Σ p ln p / ln(rank), p = λ/Σλ (1 = flat spectrum)
  condition_number σmax/σmin
  sigma2           variance of the weight entries
  mp_lambda_minus, mp_lambda_plus
                   Marchenko-Pastur bulk edges for that variance: σ²(1 ∓ √(1/Q))² (RMT scale)
  num_spikes       eigenvalues above mp_lambda_plus, the edge of the entries' variance sigma2
                   (spikes inflate sigma2, so this edge sits high; num_spikes_tw is the test)
  alpha, xmin, D   power-law fit of the tail λ ≥ xmin (WeightWatcher's method)
  alpha_weighted   α·log10 λmax
  quality          random-like when the RMT suite cannot tell the spectrum from noise (no
                   Tracy-Widom spike and a Marchenko-Pastur bulk at --tw-level), else
                   well-trained (2 ≤ α ≤ 6), over-trained (α < 2), under-trained (α > 6) or
                   fit-failed (Martin & Mahoney 2021)
  warning          the label from α alone, WeightWatcher's column
  hill_alpha       Hill estimator plateau, a fit-free second estimate of α
  llr_*, p_*       log-likelihood ratio R of the power law against the exponential, log-normal
                   and truncated power law on the same tail (R > 0 favours the power law) and
                   the p-value of its sign (Vuong; Wilks for the nested truncated law)
  tpl_alpha, tpl_lambda, exponential_lambda, lognormal_mu, lognormal_sigma
                   the alternatives' maximum-likelihood parameters
  rand_*, num_traps
                   with --randomize: the ESD of the shuffled entries and its traps

RMT SUITE (is the layer noise? the zero-information test of Thamm, Staats & Rosenow 2022):
  bulk_sigma2, bulk_lambda_plus, bulk_fraction, bulk_ks, bulk_ks_p
                   noise level from the bulk alone (spikes removed), its Marchenko-Pastur edge,
                   the share of eigenvalues in the bulk, and the bulk's KS test against MP
  tw_threshold, tw_statistic, tw_p_value, num_spikes_tw
                   Tracy-Widom edge test: eigenvalues beyond the TW₁ quantile at --tw-level of
                   the edge for bulk_sigma2 are spikes; tw_p_value is the p-value of λmax being
                   the noise edge
  mp_softrank      bulk_lambda_plus / lambda_max
  mmp_*            the modified MP fit of Thamm, Staats & Rosenow: λ₋ at the smallest eigenvalue, λ₊ and σ² free;
                   mmp_fraction is the share of the spectrum that is still MP
  spacing_*        unfolded level spacings against the GOE surmise (spacing_p_goe; large = random
                   bulk), GUE and Poisson; spacing_ratio ⟨r̃⟩ (GOE 0.5307, Poisson 0.3863)
  number_variance  with --number-variance: Σ²(L) beside the exact GOE curve and Poisson (JSON)
  porter_thomas    with --vectors: KS p-value of each right singular vector against N(0, 1/M)
                   and their moving average (JSON)
  semicircle_*     with --semicircle: the symmetric part of square layers against Wigner's
                   semicircle and the two-component density of Favoni et al. (2024)
  small_samples    the statistics read from fewer than 30 values (alpha from its tail, the
                   edge and bulk tests from the eigenvalues, spacings, the semicircle), each with
                   its count: reported, but rough guides rather than measurements

THE TABLE shows name, kind, N, M, alpha, alpha_weighted, num_spikes_tw, tw_p_value, quality and,
when any, small_samples; --wide adds the other scalars. Its headers are the JSON names. Opt-in
results add their columns: --randomize rand_distance and num_traps; --clip-fingers num_fingers
and raw_alpha; --vectors porter_thomas (vectors failing Porter-Thomas at 5 %); --semicircle
semicircle_ks_p.

EXAMPLES:
  rmt-torch analyze models/digits_cnn_trained.pt
  rmt-torch analyze vgg19.pt --layers classifier --format json -o vgg19.json
  rmt-torch analyze model.safetensors --convention rmt --conv reshape --eigenvalues -f json
  rmt-torch analyze model.pt --vectors --number-variance 0.5:10:0.5 -f json -o rmt.json
  rmt-torch analyze trained.pt --baseline init.pt --vectors --plots figures/ --plot-format png,svg")]
pub struct AnalyzeArgs {
    /// Model file: a TorchScript archive, a torch.save checkpoint (zip or legacy), a
    /// safetensors file, a GGUF file or a checkpoint directory; the format is read from the
    /// content, not the extension.
    #[arg(required = true)]
    model: Option<PathBuf>,
    /// Analyse share I of N of the model's layers (0 ≤ I < N), split by the estimated cost of
    /// each layer's eigensolve, so that N machines (a Slurm array: scripts/slurm-analyze) share
    /// one large model; `rmt-torch analyze merge` joins the N JSON outputs into exactly the
    /// single run's.
    #[arg(long, value_name = "I/N", conflicts_with_all = ["baseline", "wide"])]
    shard: Option<crate::analysis::shard::Shard>,
    #[command(subcommand)]
    command: Option<AnalyzeCommand>,
    #[command(flatten)]
    entry: EntryArgs,
    /// For a LoRA adapter directory: the base model it adapts. The adapted model W + ΔW is
    /// analysed, each update merged into its weight as the layer is read (no merged model is
    /// written); without it the updates ΔW = s·B·A themselves are, from their factors.
    #[arg(long, value_name = "MODEL")]
    base: Option<PathBuf>,
    /// A second model (e.g. the same network at initialisation) whose ESDs are overlaid on
    /// this one's in the figures; needs --plots.
    #[arg(long, value_name = "MODEL", requires = "plots")]
    baseline: Option<PathBuf>,
    #[command(flatten)]
    analysis: AnalysisArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Every scalar column in the table: also rf, lambda_max, log_norm, D, stable_rank,
    /// entropy, num_spikes, mmp_fraction and spacing_p_goe. The default table shows the shape,
    /// α, the Tracy-Widom edge test and the label (JSON and CSV always hold every field).
    #[arg(long)]
    wide: bool,
    #[command(flatten, next_help_heading = "Figures")]
    plots: PlotArgs,
}

#[derive(Debug, clap::Subcommand)]
enum AnalyzeCommand {
    /// Join the JSON analyses of all N shares of one model (`analyze MODEL --shard I/N -f
    /// json`) into the single run's analysis; refused unless every share 0…N−1 of the same
    /// model and settings is there exactly once.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// JSON analyses written by `analyze MODEL --shard I/N -f json`.
    #[arg(required = true)]
    parts: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Validates the arguments, analyses the model, writes the report.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<u8> {
    if let Some(AnalyzeCommand::Merge(merge)) = args.command {
        merge.output.prepare(&[])?;
        let parts = merge
            .parts
            .iter()
            .map(|path| Analysis::read(path))
            .collect::<crate::Result<Vec<_>>>()?;
        merge.output.emit(&Analysis::merge(parts)?)?;
        return Ok(0);
    }
    let model = args.model.clone().context("no model given")?;
    args.analysis
        .refuse_unwritten_data(args.output.format, args.plots.plots.is_some())?;
    if args.wide && args.output.format != OutputFormat::Table {
        anyhow::bail!(
            "--wide widens the table: -f {} already holds every field",
            args.output.format
        );
    }
    let options = args
        .analysis
        .options(|request| request.figure_data |= args.plots.plots.is_some())?;
    args.output.prepare(&[&model])?;
    args.plots.prepare()?;
    let (analysis, baseline) = analyze_with_baseline(
        &model,
        &args.entry,
        args.base.as_deref(),
        (args.baseline.as_deref(), args.shard),
        &options,
        args.analysis.quiet,
    )?;
    if args.wide {
        write_output(&args.output, &analysis_table(&analysis, Columns::Wide))?;
    } else {
        args.output.emit(&analysis)?;
    }
    args.plots.write(args.analysis.quiet, |directory, files| {
        write_analysis_figures(&analysis, baseline.as_ref(), directory, files)
    })?;
    Ok(0)
}

/// The model at `path` (laid over `base` when it is a LoRA adapter; refused when it is none)
/// and, when given, a baseline model, both read with the same checkpoint key and analysed
/// with `options`.
fn analyze_with_baseline(
    path: &Path,
    entry: &EntryArgs,
    base: Option<&Path>,
    (baseline, shard): (Option<&Path>, Option<Shard>),
    options: &AnalyzeOptions,
    quiet: bool,
) -> anyhow::Result<(Analysis, Option<Analysis>)> {
    let key = entry.key.as_deref();
    let mut model = Model::load_entry(path, key)?;
    if let Some(base) = base {
        anyhow::ensure!(
            model.is_adapter(),
            "--base applies to a LoRA adapter, and {} is a {} (to compare two models: \
             rmt-torch compare BASE OTHER)",
            path.display(),
            model.format
        );
        model = Model::load_entry(base, key)?.with_adapter(model)?;
    }
    if let Some(shard) = shard {
        let bar = progress_bar(quiet, "layers");
        let analysis =
            crate::analysis::analyze_share(&model, options, shard, |done, total, name| {
                advance(&bar, done, total, name)
            })
            .with_context(|| format!("analysing share {shard} of {}", model.path.display()))?;
        bar.finish_and_clear();
        return Ok((analysis, None));
    }
    analyze_with(&model, baseline, key, options, quiet)
}

/// The model and, when given, a baseline model (read with the checkpoint `key`), both
/// analysed with `options`.
pub(super) fn analyze_with(
    model: &Model,
    baseline: Option<&Path>,
    key: Option<&str>,
    options: &AnalyzeOptions,
    quiet: bool,
) -> anyhow::Result<(Analysis, Option<Analysis>)> {
    let analysis = analyze_model(model, options, quiet)?;
    let baseline = baseline
        .map(|path| analyze_model(&Model::load_entry(path, key)?, options, quiet))
        .transpose()?;
    Ok((analysis, baseline))
}

/// Analyses a model with a progress bar over its layers.
pub(super) fn analyze_model(
    model: &Model,
    options: &AnalyzeOptions,
    quiet: bool,
) -> anyhow::Result<Analysis> {
    let path = &model.path;
    let bar = progress_bar(quiet, "layers");
    let analysis = crate::analyze_with_progress(model, options, |done, total, name| {
        advance(&bar, done, total, name)
    })
    .with_context(|| format!("analysing {}", path.display()))?;
    bar.finish_and_clear();
    Ok(analysis)
}
