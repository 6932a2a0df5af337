//! The command line: clap definitions, validated into library options, then library calls.
mod analyze;
mod dist;
mod doctor;
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
use regex::Regex;

use rmt_torch::LayerSelection;

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

/// The model file, and where its weights sit when it is a nested checkpoint.
#[derive(Debug, Args)]
struct ModelArgs {
    /// Model file: a TorchScript archive, a torch.save checkpoint (zip or legacy) or a
    /// safetensors file; the format is read from the content, not the extension.
    model: PathBuf,
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
            self.key.as_deref(),
        )?)
    }
}

/// Options shared by every command that chooses weight matrices.
#[derive(Debug, Args)]
struct SelectionArgs {
    /// How convolution kernels become matrices. `slices`: one out×in matrix per kernel
    /// position, eigenvalues pooled into one ESD (WeightWatcher's default). `reshape`: one
    /// out×(in·k) matrix per kernel (Thamm, Staats & Rosenow).
    #[arg(long, default_value = "slices", value_parser = ["slices", "reshape"])]
    conv: String,
    /// Analyse only tensors whose dotted name matches this regular expression
    /// (e.g. 'features\.\d+\.weight' or 'fc|classifier').
    #[arg(long, value_name = "REGEX")]
    layers: Option<String>,
    /// Skip layers whose ESD has fewer eigenvalues than this (8, as WeightWatcher 0.7.7 does).
    #[arg(long, default_value_t = 8, value_name = "N")]
    min_evals: usize,
}

impl SelectionArgs {
    fn to_selection(&self) -> anyhow::Result<LayerSelection> {
        let name_pattern = self
            .layers
            .as_deref()
            .map(|pattern| {
                Regex::new(pattern).map_err(|err| {
                    let reason = err.to_string();
                    let reason = reason.lines().last().unwrap_or_default().trim().to_string();
                    anyhow::anyhow!(
                        "--layers '{pattern}' is not a valid regular expression: {reason}"
                    )
                })
            })
            .transpose()?;
        Ok(LayerSelection {
            conv_mode: self.conv.parse()?,
            name_pattern,
            min_evals: self.min_evals,
        })
    }
}

/// Options of the universal RMT suite, shared by every command that reports on spectra.
#[derive(Debug, Args)]
struct RmtArgs {
    /// False-positive rate of the Tracy-Widom spike count (num_spikes_tw) per layer: a random
    /// matrix has spikes with this probability. Bonferroni-corrected over conv slices.
    #[arg(long, default_value_t = 0.05, value_name = "P")]
    tw_level: f64,
    /// Unfolding before spacing statistics. `gaussian`: Gaussian broadening of the staircase
    /// (seed 003, window 2a, 2a levels dropped at each end). `polynomial`: a least-squares
    /// polynomial fit of the staircase (2 % dropped at each end).
    #[arg(long, default_value = "gaussian", value_parser = ["gaussian", "polynomial"])]
    unfolding: String,
    /// Half-window a of the Gaussian broadening.
    #[arg(long, default_value_t = 15, value_name = "A")]
    unfolding_window: usize,
    /// Degree of the staircase polynomial.
    #[arg(long, default_value_t = 7, value_name = "D")]
    unfolding_degree: usize,
    /// Level number variance Σ²(L) at these interval lengths, beside the exact GOE curve and
    /// Poisson: a list (`1,2,5,10`) or a range START:END[:STEP] (`0.5:10:0.5`).
    #[arg(long, value_name = "LENGTHS")]
    number_variance: Option<String>,
    /// Porter-Thomas test of every right singular vector (entries against N(0, 1/M)); costs an
    /// eigendecomposition per matrix. JSON carries p-values in ascending-eigenvalue order.
    #[arg(long)]
    vectors: bool,
    /// Window of the Porter-Thomas moving average (seed 003 uses 15).
    #[arg(long, default_value_t = 15, value_name = "K")]
    pt_window: usize,
    /// Compare the symmetric part (W + Wᵀ)/√2 of square matrices with Wigner's semicircle and
    /// seed 001's two-component density; costs one more eigensolve per square layer.
    #[arg(long)]
    semicircle: bool,
}

impl RmtArgs {
    fn to_options(&self) -> anyhow::Result<rmt_torch::RmtOptions> {
        use rmt_torch::rmt::unfolding::{Unfolding, UnfoldingMethod};
        if !(self.tw_level > 0.0 && self.tw_level < 1.0) {
            anyhow::bail!("--tw-level must be in (0, 1), got {}", self.tw_level);
        }
        let unfolding = match self.unfolding.parse()? {
            UnfoldingMethod::Gaussian if self.unfolding_window == 0 => {
                anyhow::bail!("--unfolding-window must be at least 1")
            }
            UnfoldingMethod::Gaussian => Unfolding::GaussianBroadening {
                window: self.unfolding_window,
            },
            UnfoldingMethod::Polynomial if self.unfolding_degree == 0 => {
                anyhow::bail!("--unfolding-degree must be at least 1")
            }
            UnfoldingMethod::Polynomial => Unfolding::Polynomial {
                degree: self.unfolding_degree,
            },
        };
        Ok(rmt_torch::RmtOptions {
            level: self.tw_level,
            unfolding,
            number_variance: self
                .number_variance
                .as_deref()
                .map(|text| parse_positive_list(text, "--number-variance"))
                .transpose()?
                .unwrap_or_default(),
            vectors: self.vectors,
            porter_thomas_window: self.pt_window.max(1),
            semicircle: self.semicircle,
            keep_spacings: false,
        })
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
    match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Info(args) => info::run(args),
        Command::Report(args) => report::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Dist(args) => dist::run(args),
        Command::Jacobian(args) => jacobian::run(args),
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
    #[arg(long, default_value = "png", value_delimiter = ',', value_parser = ["png", "svg"], value_name = "FORMATS")]
    plot_format: Vec<String>,
}

impl PlotArgs {
    fn formats(&self) -> anyhow::Result<Vec<rmt_torch::report::plots::ImageFormat>> {
        Ok(self
            .plot_format
            .iter()
            .map(|f| f.parse())
            .collect::<Result<_, _>>()?)
    }

    /// Creates the figure directory before any work, so a bad path fails at once.
    fn prepare(&self) -> anyhow::Result<()> {
        self.formats()?;
        if let Some(directory) = &self.plots {
            rmt_torch::report::plots::create_directory(directory)?;
        }
        Ok(())
    }

    /// Writes figures with `write(directory, formats)` when --plots was given, and says where.
    fn write(
        &self,
        quiet: bool,
        write: impl FnOnce(
            &std::path::Path,
            &[rmt_torch::report::plots::ImageFormat],
        ) -> rmt_torch::Result<Vec<PathBuf>>,
    ) -> anyhow::Result<()> {
        let Some(directory) = &self.plots else {
            return Ok(());
        };
        self.prepare()?;
        let written = write(directory, &self.formats()?)?;
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
    #[arg(long, short, default_value = "table", value_parser = ["table", "json", "csv"])]
    format: String,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}
