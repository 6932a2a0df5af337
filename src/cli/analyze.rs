//! `rmt-torch analyze`: per-layer spectral statistics.
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use std::path::Path;

use rmt_torch::report::plots::{request_figure_data, write_analysis_figures};
use rmt_torch::report::{render_analysis, OutputFormat};
use rmt_torch::{analyze, Analysis, AnalyzeOptions, Model};

use super::output::{progress_bar, write_output};
use super::{ModelArgs, OutputArgs, PlotArgs, RmtArgs, SelectionArgs};

/// Arguments of `analyze`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
COLUMNS (JSON/CSV field names follow WeightWatcher's where it has the quantity):
  N, M, Q          rows and columns of each matrix (N ≥ M) and Q = N/M
  rf               matrices pooled into the ESD (kernel positions of a sliced conv)
  lambda_max       largest eigenvalue λmax = spectral_norm
  norm, log_norm   Σλ = ‖W‖²_F and its log10
  stable_rank      Σλ / λmax
  entropy          spectral entropy −Σ p ln p / ln(rank), p = λ/Σλ (1 = flat spectrum)
  condition_number σmax/σmin (cond in the table)
  sigma2           variance of the weight entries
  mp_lambda_minus, mp_lambda_plus
                   Marchenko-Pastur bulk edges for that variance: σ²(1 ∓ √(1/Q))² (RMT scale)
  num_spikes       eigenvalues above mp_lambda_plus (spikes in the table)
  alpha, xmin, D   power-law fit of the tail λ ≥ xmin (WeightWatcher's method); alpha_w = α·log10 λmax
  warning          well-trained (2 ≤ α ≤ 6), over-trained (α < 2), under-trained (α > 6), fit-failed
  hill_alpha       Hill estimator plateau, a fit-free second estimate of α
  llr_*, p_*       log-likelihood ratio R of the power law against the exponential, log-normal
                   and truncated power law on the same tail (R > 0 favours the power law) and
                   the p-value of its sign (Vuong; Wilks for the nested truncated law)
  tpl_alpha, tpl_lambda, exponential_lambda, lognormal_mu, lognormal_sigma
                   the alternatives' maximum-likelihood parameters
  rand_*, num_traps
                   with --randomize: the ESD of the shuffled entries and its traps

RMT SUITE (is the layer noise? seed 003's zero-information test):
  bulk_sigma2, bulk_lambda_plus, bulk_fraction, bulk_ks, bulk_ks_p
                   noise level from the bulk alone (spikes removed), its Marchenko-Pastur edge,
                   the share of eigenvalues in the bulk, and the bulk's KS test against MP
  tw_threshold, tw_statistic, tw_p_value, num_spikes_tw (spikes_tw, tw_p)
                   Tracy-Widom edge test: eigenvalues beyond the TW₁ quantile at --tw-level are
                   spikes; tw_p_value is the p-value of λmax being the noise edge
  mp_softrank      bulk_lambda_plus / lambda_max
  mmp_*            seed 003's modified MP fit: λ₋ at the smallest eigenvalue, λ₊ and σ² free;
                   mmp_fraction (mmp_frac) is the share of the spectrum that is still MP
  spacing_*        unfolded level spacings against the GOE surmise (p_goe; large = random
                   bulk), GUE and Poisson; spacing_ratio ⟨r̃⟩ (GOE 0.5307, Poisson 0.3863)
  number_variance  with --number-variance: Σ²(L) beside the exact GOE curve and Poisson (JSON)
  porter_thomas    with --vectors: KS p-value of each right singular vector against N(0, 1/M)
                   and their moving average (JSON)
  semicircle_*     with --semicircle: the symmetric part of square layers against Wigner's
                   semicircle and seed 001's two-component density

EXAMPLES:
  rmt-torch analyze models/digits_cnn_trained.pt
  rmt-torch analyze vgg19.pt --layers classifier --format json -o vgg19.json
  rmt-torch analyze model.safetensors --convention rmt --conv reshape --eigenvalues -f json
  rmt-torch analyze model.pt --vectors --number-variance 0.5:10:0.5 -f json -o rmt.json
  rmt-torch analyze trained.pt --baseline init.pt --vectors --plots figures/ --plot-format png,svg")]
pub struct AnalyzeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Device for the spectra: `auto` (the first GPU if any, else CPU), `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value = "auto")]
    device: String,
    /// ESD convention. `ww`: λ = σ² of W (Conv2d slices halved), WeightWatcher's numbers.
    /// `rmt`: λ = σ²/N, the eigenvalues of WᵀW/N that Marchenko-Pastur describes.
    #[arg(long, default_value = "ww", value_parser = ["ww", "rmt"])]
    convention: String,
    /// Arithmetic. `f64`: WᵀW and eigenvalues in float64, exact to ~1e-12. `fast`: both in
    /// float32, about twice as fast; eigenvalues within 1e-4·λmax, α within 0.5 %.
    #[arg(long, default_value = "f64", value_parser = ["f64", "fast"])]
    precision: String,
    /// Include each layer's eigenvalues (ascending) in JSON output.
    #[arg(long)]
    eigenvalues: bool,
    /// Also analyse each layer with its entries shuffled: rand_lambda_max, rand_distance (how
    /// far the ESD is from its randomised self) and num_traps (shuffled eigenvalues beyond the
    /// Marchenko-Pastur edge: large isolated entries). Doubles the cost.
    #[arg(long)]
    randomize: bool,
    /// Drop the K largest eigenvalues before the power-law fit (WeightWatcher's xmax=K).
    #[arg(long, default_value_t = 0, value_name = "K")]
    xmax_drop: usize,
    /// Clip power-law "fingers": refit without the top 2–9 eigenvalues and keep the first fit
    /// whose α is more than 1 lower (WeightWatcher's fix_fingers='clip_xmax'; reports
    /// num_fingers and raw_alpha).
    #[arg(long)]
    clip_fingers: bool,
    /// Choose xmin near the peak of the log-ESD only, in [0.95·p, 1.5·p] with p the left edge of
    /// the fullest of 100 bins of log10 λ (WeightWatcher's fix_fingers='xmin_peak', which fails
    /// every fit in WeightWatcher 0.7.7 under its default pl_package).
    #[arg(long)]
    xmin_peak: bool,
    /// Only consider power-law tails of at least N eigenvalues when choosing xmin.
    #[arg(long, default_value_t = 0, value_name = "N")]
    min_tail: usize,
    /// Seed of the shuffles (the same seed gives the same numbers).
    #[arg(long, default_value_t = 0, value_name = "N")]
    seed: u64,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// A second model (e.g. the same network at initialisation) whose ESDs are overlaid on
    /// this one's in the figures; needs --plots.
    #[arg(long, value_name = "MODEL", requires = "plots")]
    baseline: Option<std::path::PathBuf>,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    rmt: RmtArgs,
    #[command(flatten)]
    selection: SelectionArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Validates the arguments, analyses the model, writes the report.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let mut options = AnalyzeOptions {
        device: args.device.parse()?,
        selection: args.selection.to_selection()?,
        convention: args.convention.parse()?,
        precision: args.precision.parse()?,
        keep_eigenvalues: args.eigenvalues,
        randomize: args.randomize.then_some(args.seed),
        tail: rmt_torch::heavy_tail::power_law::TailOptions {
            drop_top: args.xmax_drop,
            clip_fingers: args.clip_fingers,
            min_tail: args.min_tail,
            xmin_peak: args.xmin_peak,
        },
        rmt: args.rmt.to_options()?,
    };
    let format: OutputFormat = args.output.format.parse()?;
    args.plots.prepare()?;
    if args.plots.plots.is_some() {
        request_figure_data(&mut options);
    }
    let (analysis, baseline) =
        analyze_with_baseline(&args.model, args.baseline.as_deref(), &options, args.quiet)?;
    write_output(&args.output, &render_analysis(&analysis, format)?)?;
    args.plots.write(args.quiet, |directory, formats| {
        write_analysis_figures(&analysis, baseline.as_ref(), directory, formats)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The model and, when given, a baseline model (read with the same checkpoint key), both
/// analysed with `options`.
pub(super) fn analyze_with_baseline(
    model: &ModelArgs,
    baseline: Option<&Path>,
    options: &AnalyzeOptions,
    quiet: bool,
) -> anyhow::Result<(Analysis, Option<Analysis>)> {
    let key = model.key.as_deref();
    let analysis = analyze_file(&model.model, key, options, quiet)?;
    let baseline = baseline
        .map(|path| analyze_file(path, key, options, quiet))
        .transpose()?;
    Ok((analysis, baseline))
}

/// Loads a model (the checkpoint entry `key`, when given) and analyses it with a progress bar
/// over its layers.
fn analyze_file(
    path: &Path,
    key: Option<&str>,
    options: &AnalyzeOptions,
    quiet: bool,
) -> anyhow::Result<Analysis> {
    let model = Model::load_entry(path, key)?;
    let bar = progress_bar(quiet, "layers");
    let analysis = analyze(&model, options, |done, total, name| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(name.to_string());
    })
    .with_context(|| format!("analysing {}", path.display()))?;
    bar.finish_and_clear();
    Ok(analysis)
}
