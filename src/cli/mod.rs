//! The command line: clap definitions, validated into library options, then library calls.
mod analyze;
mod doctor;
mod info;
mod output;

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

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Info(args) => info::run(args),
        Command::Doctor(args) => doctor::run(args),
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
