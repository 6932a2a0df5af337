//! The command line: clap definitions, validated into library options, then library calls.
mod analyze;
mod dist;
mod doctor;
mod hessian;
mod info;
mod jacobian;
mod output;
mod report;
mod theory;
mod track;
mod zoo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use rmt_torch::heavy_tail::power_law::TailOptions;
use rmt_torch::report::plots::{FigureFiles, ImageFormat};
use rmt_torch::report::OutputFormat;
use rmt_torch::rmt::unfolding::{
    UnfoldingMethod, DEFAULT_GAUSSIAN_WINDOW, DEFAULT_POLYNOMIAL_DEGREE,
};
use rmt_torch::{
    AnalyzeOptions, ConvMode, DeviceChoice, EsdConvention, LayerSelection, OptionNames, Precision,
};

/// Random matrix theory diagnostics for PyTorch models.
///
/// Reads TorchScript archives (scripted or traced) and safetensors files, computes the
/// eigenvalue spectrum (ESD) of every weight matrix in float64, and reports norms, ranks,
/// spectral entropy and the Marchenko-Pastur bulk for each layer.
#[derive(Debug, Parser)]
#[command(name = "rmt-torch", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Threads for libtorch's kernels and for the statistics (default: every core).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-layer spectral statistics of a model's weight matrices.
    Analyze(analyze::AnalyzeArgs),
    /// List a model's tensors: shape, dtype, and whether each is analysed as a weight matrix.
    Info(info::InfoArgs),
    /// A self-contained HTML report of one model: summary, layer table, every layer's figures.
    Report(report::ReportArgs),
    /// Input-output Jacobians of a TorchScript model on an input batch, and their spectra.
    Jacobian(jacobian::JacobianArgs),
    /// The loss Hessian of a TorchScript model on a batch: top eigenvalues, trace and spectral
    /// density by Lanczos, without forming it.
    Hessian(hessian::HessianArgs),
    /// Health checks over a model zoo: analyse every model, rank, apply a policy; exit 0/1/2.
    Zoo(zoo::ZooArgs),
    /// Spectral statistics over training: a sequence of checkpoints, or a SpectralMonitor's JSONL.
    Track(track::TrackArgs),
    /// The theory behind the spectra: Dyson Brownian motion, Hermite linearisation, the curse of
    /// depth, pre-activation statistics, ridge and random-features double descent.
    Theory(theory::TheoryArgs),
    /// Evaluate a distribution of the RMT suite: density, CDF, quantile, moments.
    Dist(dist::DistArgs),
    /// Show the libtorch build, CUDA and thread settings rmt-torch runs with.
    Doctor(doctor::DoctorArgs),
}

/// A clap value parser for one of the library's option enums: its names are listed in
/// `--help` and parsed straight into the enum.
fn choice<T>() -> impl clap::builder::TypedValueParser<Value = T>
where
    T: OptionNames + Clone + Send + Sync + 'static,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::NAMES).try_map(|name| name.parse::<T>())
}

/// The library's defaults, the one place they are written.
fn defaults() -> AnalyzeOptions {
    AnalyzeOptions::default()
}

/// The model file, and where its weights sit when it is a nested checkpoint.
#[derive(Debug, Args)]
struct ModelArgs {
    /// Model file: a TorchScript archive, a torch.save checkpoint (zip or legacy) or a
    /// safetensors file; the format is read from the content, not the extension.
    model: PathBuf,
    #[command(flatten)]
    entry: EntryArgs,
}

/// Which entry of a torch.save checkpoint holds the weights.
#[derive(Debug, Args)]
struct EntryArgs {
    /// For torch.save checkpoints: the dotted path of the entry holding the weights
    /// (e.g. 'ema.state_dict' or 'models.0'); by default state_dict, model_state_dict, model,
    /// module or net is used when present, else the whole checkpoint.
    #[arg(long, value_name = "A.B.C")]
    key: Option<String>,
}

impl ModelArgs {
    fn load(&self) -> anyhow::Result<rmt_torch::Model> {
        Ok(rmt_torch::Model::load_entry(
            &self.model,
            self.entry.key.as_deref(),
        )?)
    }
}

/// Which tensors are weight matrices, and how convolutions become matrices.
#[derive(Debug, Args)]
struct SelectionArgs {
    /// How convolution kernels become matrices. `slices`: one out×in matrix per kernel
    /// position, eigenvalues pooled into one ESD (WeightWatcher's default for Conv2d).
    /// `reshape`: one out×(in·k) matrix per kernel (Thamm, Staats & Rosenow 2022).
    #[arg(long, value_parser = choice::<ConvMode>(), default_value_t = defaults().selection.conv_mode)]
    conv: ConvMode,
    /// Analyse only tensors whose dotted name matches this regular expression
    /// (e.g. 'features\.\d+\.weight' or 'fc|classifier').
    #[arg(long, value_name = "REGEX")]
    layers: Option<String>,
    /// Skip layers whose ESD has fewer eigenvalues than this (WeightWatcher 0.7.7's default).
    #[arg(long, default_value_t = defaults().selection.min_evals, value_name = "N")]
    min_evals: usize,
    /// Skip layers whose ESD has more eigenvalues than this (default: none; 15000 with
    /// --ww-compat, WeightWatcher's max_evals).
    #[arg(long, value_name = "N")]
    max_evals: Option<usize>,
    /// Skip layers whose larger side N exceeds this, such as large embeddings (default: none;
    /// 50000 with --ww-compat, WeightWatcher's max_N).
    #[arg(long, value_name = "N")]
    max_n: Option<usize>,
    /// WeightWatcher 0.7.7's own rules, for numbers and a layer set that equal its
    /// analyze(): only the `weight` of Linear, Conv1d, Conv2d and Embedding layers (LSTM, GRU
    /// and attention in_proj weights are skipped), --max-evals 15000 and --max-n 50000 unless
    /// given, Conv1d as one SVD of the 3-D kernel keeping the top min(out, in, k) values
    /// (`--conv ww`), its rank and entropy definitions, and CSV with its DataFrame's columns.
    /// The README's "Differences from WeightWatcher" lists what changes, and why the defaults
    /// differ.
    #[arg(long)]
    ww_compat: bool,
    /// Split fused query-key-value projections (GPT-2's c_attn, qkv_proj, query_key_value,
    /// Wqkv, qkv, in_proj_weight) into q, k and v layers named NAME[q], NAME[k], NAME[v], with
    /// the head counts (grouped-query attention included) of the checkpoint's config.json.
    #[arg(long)]
    split_fused: bool,
}

impl SelectionArgs {
    /// The layer selection these flags mean (checked by the caller's options).
    fn to_selection(&self) -> anyhow::Result<LayerSelection> {
        Ok(LayerSelection {
            split_fused: self.split_fused,
            ..LayerSelection::chosen(
                self.conv,
                self.layers.as_deref(),
                self.min_evals,
                self.max_evals,
                self.max_n,
                self.ww_compat,
            )?
        })
    }
}

/// Options of the universal RMT suite, shared by every command that reports on spectra.
#[derive(Debug, Args)]
struct RmtArgs {
    /// False-positive rate of the Tracy-Widom spike count (num_spikes_tw) per layer: a random
    /// matrix has spikes with this probability. Bonferroni-corrected over conv slices.
    #[arg(value_parser = finite_number, long, default_value_t = defaults().rmt.level, value_name = "P")]
    tw_level: f64,
    /// Unfolding before spacing statistics. `gaussian`: Gaussian broadening of the staircase
    /// (Thamm, Staats & Rosenow 2022; window 2a, 2a levels dropped at each end). `polynomial`:
    /// a least-squares polynomial fit of the staircase (2 % dropped at each end).
    #[arg(long, value_parser = choice::<UnfoldingMethod>(), default_value_t = UnfoldingMethod::default())]
    unfolding: UnfoldingMethod,
    /// Half-window a of the Gaussian broadening.
    #[arg(long, default_value_t = DEFAULT_GAUSSIAN_WINDOW, value_name = "A")]
    unfolding_window: usize,
    /// Degree of the staircase polynomial.
    #[arg(long, default_value_t = DEFAULT_POLYNOMIAL_DEGREE, value_name = "D")]
    unfolding_degree: usize,
    /// Level number variance Σ²(L) at these interval lengths, beside the exact GOE curve and
    /// Poisson: a list (`1,2,5,10`) or a range START:END[:STEP] (`0.5:10:0.5`).
    #[arg(long, value_name = "LENGTHS")]
    number_variance: Option<String>,
    /// Porter-Thomas test of every right singular vector (entries against N(0, 1/M)); costs an
    /// eigendecomposition per matrix. Adds pt_rejected to the table; JSON carries the p-values
    /// in ascending-eigenvalue order.
    #[arg(long)]
    vectors: bool,
    /// Window of the Porter-Thomas moving average (Thamm, Staats & Rosenow 2022 use 15).
    #[arg(long, default_value_t = defaults().rmt.porter_thomas_window, value_name = "K")]
    pt_window: usize,
    /// Compare the symmetric part (W + Wᵀ)/√2 of square matrices with Wigner's semicircle and
    /// the two-component density of Favoni, Aarts, Lucini & Park; costs one more eigensolve
    /// per square layer.
    #[arg(long)]
    semicircle: bool,
}

impl RmtArgs {
    /// The suite's options these flags mean (checked by the caller's options).
    fn to_options(&self) -> anyhow::Result<rmt_torch::RmtOptions> {
        use rmt_torch::rmt::unfolding::Unfolding;
        let options = rmt_torch::RmtOptions {
            level: self.tw_level,
            unfolding: match self.unfolding {
                UnfoldingMethod::Gaussian => Unfolding::GaussianBroadening {
                    window: self.unfolding_window,
                },
                UnfoldingMethod::Polynomial => Unfolding::Polynomial {
                    degree: self.unfolding_degree,
                },
            },
            number_variance: self
                .number_variance
                .as_deref()
                .map(|text| parse_positive_list(text, "--number-variance"))
                .transpose()?
                .unwrap_or_default(),
            vectors: self.vectors,
            porter_thomas_window: self.pt_window,
            semicircle: self.semicircle,
            keep_spacings: false,
        };
        Ok(options)
    }
}

/// How every command that analyses weights (analyze, report, zoo, track) reads and analyses
/// them: one set of flags, validated once into the library's [`AnalyzeOptions`].
#[derive(Debug, Args)]
struct AnalysisArgs {
    /// Device for the spectra: `auto` (the first GPU if any, else CPU), `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value_t = defaults().device)]
    device: DeviceChoice,
    /// ESD convention. `ww`: λ = σ² of W (Conv2d slices halved), WeightWatcher's numbers.
    /// `rmt`: λ = σ²/N, the eigenvalues of WᵀW/N that Marchenko-Pastur describes.
    #[arg(long, value_parser = choice::<EsdConvention>(), default_value_t = defaults().convention)]
    convention: EsdConvention,
    /// Arithmetic. `f64`: WᵀW and eigenvalues in float64, exact to ~1e-12. `fast`: both in
    /// float32, about twice as fast; eigenvalues within 1e-4·λmax, α within 0.5 %.
    #[arg(long, value_parser = choice::<Precision>(), default_value_t = defaults().precision)]
    precision: Precision,
    /// Include each layer's eigenvalues (ascending) in JSON output.
    #[arg(long)]
    eigenvalues: bool,
    /// Also analyse each layer with its entries shuffled: rand_lambda_max, rand_distance (how
    /// far the ESD is from its randomised self) and num_traps (shuffled eigenvalues beyond the
    /// Marchenko-Pastur edge: large isolated entries); adds rand_dist and traps to the table.
    /// Doubles the cost.
    #[arg(long)]
    randomize: bool,
    /// Seed of the shuffles of --randomize (the same seed gives the same numbers; default 0).
    #[arg(long, value_name = "N", requires = "randomize")]
    seed: Option<u64>,
    /// Drop the K largest eigenvalues before the power-law fit (WeightWatcher's xmax=K).
    #[arg(long, default_value_t = defaults().tail.drop_top, value_name = "K")]
    xmax_drop: usize,
    /// Clip power-law "fingers": refit without the top 2–9 eigenvalues and keep the first fit
    /// whose α is more than 1 lower (WeightWatcher's fix_fingers='clip_xmax'); adds fingers
    /// and raw_alpha to the table.
    #[arg(long)]
    clip_fingers: bool,
    /// Choose xmin near the peak of the log-ESD only, in [0.95·p, 1.5·p] with p the left edge of
    /// the fullest of 100 bins of log10 λ (WeightWatcher's fix_fingers='xmin_peak', which fails
    /// every fit in WeightWatcher 0.7.7 under its default pl_package).
    #[arg(long)]
    xmin_peak: bool,
    /// Only consider power-law tails of at least N eigenvalues when choosing xmin.
    #[arg(long, default_value_t = defaults().tail.min_tail, value_name = "N")]
    min_tail: usize,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten, next_help_heading = "Layer selection")]
    selection: SelectionArgs,
    #[command(flatten, next_help_heading = "RMT suite")]
    rmt: RmtArgs,
}

impl AnalysisArgs {
    /// The validated library options these flags mean.
    fn options(&self) -> anyhow::Result<AnalyzeOptions> {
        let options = AnalyzeOptions {
            device: self.device,
            selection: self.selection.to_selection()?,
            convention: self.convention,
            precision: self.precision,
            keep_eigenvalues: self.eigenvalues,
            tail: TailOptions {
                drop_top: self.xmax_drop,
                clip_fingers: self.clip_fingers,
                min_tail: self.min_tail,
                xmin_peak: self.xmin_peak,
            },
            randomize: self.randomize.then_some(self.seed.unwrap_or(0)),
            rmt: self.rmt.to_options()?,
        };
        options.check()?;
        Ok(options)
    }
}

/// A number flag's value: any finite f64 (NaN and infinities are refused at parse time, so no
/// command ever computes with one).
fn finite_number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(value) => Err(format!("expected a finite number, got {value}")),
        Err(_) => Err(format!("expected a number, got `{text}`")),
    }
}

/// `1,2,5` or `START:END[:STEP]` (step 1 by default) as positive numbers; errors name `option`.
fn parse_positive_list(text: &str, option: &str) -> anyhow::Result<Vec<f64>> {
    let number = |part: &str| -> anyhow::Result<f64> {
        match part.trim().parse::<f64>() {
            Ok(value) if value > 0.0 && value.is_finite() => Ok(value),
            _ => anyhow::bail!("{option}: '{part}' is not a positive number"),
        }
    };
    if text.contains(':') {
        let parts: Vec<&str> = text.split(':').collect();
        let (start, end) = (
            number(parts[0])?,
            number(parts.get(1).copied().unwrap_or(""))?,
        );
        let step = parts.get(2).map(|p| number(p)).transpose()?.unwrap_or(1.0);
        if parts.len() > 3 || end < start || (end - start) / step > 10_000.0 {
            anyhow::bail!("{option}: '{text}' is not START:END[:STEP] with START ≤ END and at most 10000 steps");
        }
        let count = ((end - start) / step + 1e-9).floor() as usize + 1;
        Ok((0..count).map(|i| start + i as f64 * step).collect())
    } else {
        text.split(',').map(number).collect()
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(threads) = cli.threads {
        if threads == 0 {
            anyhow::bail!("invalid option --threads: must be at least 1");
        }
        tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }
    match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Info(args) => info::run(args),
        Command::Report(args) => report::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Dist(args) => dist::run(args),
        Command::Jacobian(args) => jacobian::run(args),
        Command::Hessian(args) => hessian::run(args),
        Command::Zoo(args) => zoo::run(args),
        Command::Track(args) => track::run(args),
        Command::Theory(args) => theory::run(args),
    }
}

/// Figures written beside the numbers.
#[derive(Debug, Args)]
struct PlotArgs {
    /// Write figures into DIR (created when missing), as PNG unless --plot-format says
    /// otherwise. Text is drawn with a bundled font, so no system fonts are needed. For analyze
    /// and track the JSON then also carries what the figures draw (eigenvalues; analyze: the
    /// unfolded spacings and Σ²(L) at L = 0.5…10 unless --number-variance chose lengths).
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// Image formats of the figures: `png`, `svg` (text kept as text) or both (`png,svg`).
    #[arg(long, default_value = "png", value_delimiter = ',', value_parser = choice::<ImageFormat>(), value_name = "FORMATS", requires = "plots")]
    plot_format: Vec<ImageFormat>,
    /// Pixels of a one-panel figure's layout, WIDTHxHEIGHT (figures of several panels scale
    /// with it); text keeps its size, so larger figures give the data more room.
    #[arg(long, default_value = "720x440", value_parser = plot_size, value_name = "WxH", requires = "plots")]
    plot_size: (u32, u32),
    /// Draw everything (text, lines, margins) S times larger, 0.25 to 8: the same figure with
    /// S times the pixels each way, for print. Pixels = inches × dpi: a 720-pixel-wide figure
    /// printed 6 inches wide at 300 dpi needs 1800 pixels, --plot-scale 2.5. PNG and SVG alike.
    #[arg(long, default_value_t = 1.0, value_parser = plot_scale, value_name = "S", requires = "plots")]
    plot_scale: f64,
}

/// A plot scale within [`rmt_torch::report::plots::PLOT_SCALES`].
fn plot_scale(text: &str) -> Result<f64, String> {
    let scales = rmt_torch::report::plots::PLOT_SCALES;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|scale| scales.contains(scale))
        .ok_or_else(|| {
            format!(
                "expected a scale from {} to {} (e.g. 2), got `{text}`",
                scales.start(),
                scales.end()
            )
        })
}

/// `WIDTHxHEIGHT` in pixels, each within [`rmt_torch::report::plots::PLOT_SIZES`].
fn plot_size(text: &str) -> Result<(u32, u32), String> {
    let sizes = rmt_torch::report::plots::PLOT_SIZES;
    let parse = |part: Option<&str>| {
        part.and_then(|p| p.trim().parse::<u32>().ok())
            .filter(|p| sizes.contains(p))
    };
    let mut parts = text.split(['x', 'X', '×']);
    match (parse(parts.next()), parse(parts.next()), parts.next()) {
        (Some(width), Some(height), None) => Ok((width, height)),
        _ => Err(format!(
            "expected WIDTHxHEIGHT in pixels, each {} to {} (e.g. 1200x800), got `{text}`",
            sizes.start(),
            sizes.end()
        )),
    }
}

impl PlotArgs {
    /// Creates the figure directory before any work, so a bad path fails at once.
    fn prepare(&self) -> anyhow::Result<()> {
        if let Some(directory) = &self.plots {
            rmt_torch::report::plots::create_directory(directory)?;
        }
        Ok(())
    }

    /// Writes figures with `write(directory, files)` when --plots was given, and says where.
    fn write(
        &self,
        quiet: bool,
        write: impl FnOnce(&std::path::Path, &FigureFiles) -> rmt_torch::Result<Vec<PathBuf>>,
    ) -> anyhow::Result<()> {
        let Some(directory) = &self.plots else {
            return Ok(());
        };
        self.prepare()?;
        let files = FigureFiles {
            formats: self.plot_format.clone(),
            panel_size: self.plot_size,
            scale: self.plot_scale,
        };
        let written = write(directory, &files)?;
        if !quiet {
            eprintln!("wrote {} figures to {}", written.len(), directory.display());
        }
        Ok(())
    }
}

/// Where results go: a file, or standard output.
#[derive(Debug, Args)]
struct OutputArgs {
    /// Output format: `table` for people, `json` (the full record, documented schema) or
    /// `csv` (one row per layer, JSON's field names) for machines.
    #[arg(long, short, value_parser = choice::<OutputFormat>(), default_value_t = OutputFormat::default())]
    format: OutputFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}
