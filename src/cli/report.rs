//! `rmt-torch report`: the analysis of one model as a self-contained HTML page.
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::environment::Environment;
use crate::report::html::{html_report, LayerFigures};
use crate::workflows::jacobian::{analyze_jacobians, JacobianOptions, SampleCount};

use crate::report::html::ReportSections;
use crate::workflows::compare::compare_with_progress;
use crate::Model;

use super::analyze::analyze_with;
use super::output::{advance, check_output_path, progress_bar};
use super::{AnalysisArgs, EntryArgs};

/// Arguments of `report`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
The page holds a table of contents that stays at the top of the window, a summary of the model
(mean α, α̂, log-norm, quality-label counts), a table of every layer with links to its section,
the across-layer figure, and per layer a collapsible section (open when at most 12 have
figures) with a one-sentence verdict and the figures: the ESD against
Marchenko-Pastur with the Tracy-Widom threshold, the power-law tail on log-log axes, level
spacings against the Wigner surmise (cumulative inset), the number variance against GOE and the
Porter-Thomas p-values of the singular vectors; with --input, the input-output Jacobians'
singular values (dynamical isometry); with --base, what changed since the base model (as
`compare` reports it: the largest updates first, α before and after, each update's analysis);
then the settings and versions used. Figures are
inline SVG: one file, no network, readable in any browser.

EXAMPLES:
  rmt-torch report models/digits_cnn_trained.pt --baseline models/digits_cnn_init.pt -o cnn.html
  rmt-torch report model.pt --input batch.pt --jacobian-samples 4 -o model.html
  rmt-torch report finetuned/ --base base/ -o finetuned.html
  rmt-torch report adapter/ --base base/ -o adapted.html
  rmt-torch report resnet50.safetensors --no-vectors --layers 'layer4|fc' -o resnet50.html
  rmt-torch report resnet50.safetensors --figures-for-worst 5 -o resnet50.html")]
pub struct ReportArgs {
    /// Model file: a TorchScript archive, a torch.save checkpoint (zip or legacy) or a
    /// safetensors file; the format is read from the content, not the extension.
    model: PathBuf,
    #[command(flatten)]
    entry: EntryArgs,
    /// The HTML file to write.
    #[arg(long, short, default_value = "report.html", value_name = "FILE")]
    output: PathBuf,
    /// A second model (e.g. the same network at initialisation) whose ESDs are overlaid.
    #[arg(long, value_name = "MODEL")]
    baseline: Option<PathBuf>,
    /// The model this one derives from (before fine-tuning, the last release; for a LoRA
    /// adapter given as MODEL, the model it adapts, which it is then laid over): adds a
    /// section on what changed, layer by layer, as `rmt-torch compare BASE MODEL` reports it.
    #[arg(long, value_name = "MODEL")]
    base: Option<PathBuf>,
    /// Skip the Porter-Thomas figures (they cost an eigendecomposition per matrix); the report
    /// draws them by default.
    #[arg(long, conflicts_with = "vectors")]
    no_vectors: bool,
    /// An input batch (torch.save tensor, .npy or safetensors): adds a section on the
    /// input-output Jacobians of a TorchScript model over its first samples, with the RMT
    /// suite's options below. Running the model executes its code, as torch.jit.load does.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// The tensor to use when the input file holds several.
    #[arg(long, value_name = "NAME", requires = "input")]
    input_key: Option<String>,
    /// Samples of the batch whose Jacobians are computed (the first N, or `all`).
    #[arg(long, default_value_t = SampleCount::First(8), value_name = "N|all", requires = "input")]
    jacobian_samples: SampleCount,
    /// Figures only for the K worst layers (over-trained first, then under-trained, failed fits,
    /// well-trained; the farthest α from 2 ≤ α ≤ 6 first): every layer keeps its verdict, and
    /// a deep model's page stays small (ResNet18 with every figure: 5.5 MB). Default: all.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    figures_for_worst: Option<u64>,
    #[command(flatten)]
    analysis: AnalysisArgs,
}

/// Analyses the model (and the baseline), writes the page.
pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let request = &args.analysis.request;
    if request.eigenvalues || request.figure_data {
        anyhow::bail!(
            "report keeps every layer's eigenvalues for its figures already and writes no JSON: drop --eigenvalues and --figure-data"
        );
    }
    let options = args.analysis.options(|request| {
        request.rmt.vectors = !args.no_vectors;
        request.figure_data = true;
    })?;
    check_output_path(&args.output, &[&args.model])?;
    let quiet = args.analysis.quiet;
    let key = args.entry.key.as_deref();
    let (model, base) = match &args.base {
        Some(base) => (
            Model::load_derived(&args.model, base, key)?,
            Some(Model::load_entry(base, key)?),
        ),
        None => (Model::load_entry(&args.model, key)?, None),
    };
    let (analysis, baseline) =
        analyze_with(&model, args.baseline.as_deref(), key, &options, quiet)?;
    let comparison = match &base {
        Some(base) => {
            let bar = progress_bar(quiet, "layers compared");
            let plain = args.analysis.options(|_| ())?;
            let comparison = compare_with_progress(base, &model, &plain, |done, total, name| {
                advance(&bar, done, total, name)
            })
            .with_context(|| format!("comparing with {}", base.path.display()))?;
            bar.finish_and_clear();
            Some(comparison)
        }
        None => None,
    };
    let jacobian = match &args.input {
        Some(input) => {
            let mut rmt = options.rmt().clone();
            rmt.vectors = false;
            let jacobian_options = JacobianOptions {
                device: options.device(),
                samples: args.jacobian_samples,
                rmt,
                ..JacobianOptions::default()
            };
            let bar = progress_bar(quiet, "rows of J");
            let analysis = analyze_jacobians(
                &args.model,
                input,
                args.input_key.as_deref(),
                &jacobian_options,
                |done, total| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                },
            )
            .with_context(|| {
                format!(
                    "Jacobians of {} on {}",
                    args.model.display(),
                    input.display()
                )
            })?;
            bar.finish_and_clear();
            Some(analysis)
        }
        None => None,
    };
    let html = html_report(
        &analysis,
        ReportSections {
            baseline: baseline.as_ref(),
            jacobian: jacobian.as_ref(),
            comparison: comparison.as_ref(),
        },
        &Environment::detect(),
        args.figures_for_worst
            .map_or(LayerFigures::All, |k| LayerFigures::Worst(k as usize)),
    )?;
    std::fs::write(&args.output, html)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    if !quiet {
        eprintln!("wrote {}", args.output.display());
    }
    Ok(0)
}
