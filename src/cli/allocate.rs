//! `rmt-torch allocate`: per-layer pruning ratios, learning rates or LoRA experts from α.

use clap::{Args, Subcommand};

use crate::analysis::options::finite_number;
use crate::choice;
use crate::workflows::allocate::{allocate, Decision, LrMap};
use crate::AnalysisRequest;

use super::analyze::analyze_model;
use super::{AnalysisArgs, ModelArgs, OutputArgs};

/// Arguments of `allocate`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Each decision is its reference's mapping on the α the chosen --estimator gives, in the
model's layer order. Learning rates go to every analysed layer but embeddings (TempBalance's
Conv2d and Linear layers); sparsity and experts to the layers of transformer blocks when the
model has any (the references act on decoder blocks), else to every analysed layer. Every
layer is analysed, however few its eigenvalues (--min-evals 1 unless given), as the references
count them. A layer whose fit failed is given the mean α of the others. The JSON carries
`shares` (name, block, alpha, params, value) and `values`, the {layer: value} map the
reference scripts read.

EXAMPLES:
  rmt-torch allocate sparsity model/ --target 0.7 -f json -o ratios.json
  rmt-torch allocate sparsity model/ --target 0.5 --block-wise --estimator farms-peak
  rmt-torch allocate lr models/digits_cnn_trained.pt --base 0.01 --map sqrt
  rmt-torch allocate lora model/ --total 160 --beta 2.5")]
pub struct AllocateArgs {
    #[command(subcommand)]
    decision: DecisionArgs,
}

/// What every decision reads and writes: the model, the analysis, the output.
#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    analysis: AnalysisArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Subcommand)]
enum DecisionArgs {
    /// Per-layer sparsity for pruning (AlphaPruning, Lu et al. 2024): ratios linear in α over
    /// [1 − ε, 1 + ε], rescaled so that the parameter-weighted mean is the target; a higher α (a
    /// less trained layer) is pruned more. α by alpha-peak unless --estimator says otherwise.
    Sparsity {
        /// The model's overall sparsity, strictly between 0 and 1.
        #[arg(long, value_parser = finite_number)]
        target: f64,
        /// Half-width ε of the ratios' range before rescaling.
        #[arg(long, value_parser = finite_number, default_value_t = 0.3)]
        epsilon: f64,
        /// One α per transformer block, the mean of its layers' (AlphaPruning's default
        /// mapping): every layer of a block is pruned alike.
        #[arg(long)]
        block_wise: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Per-layer learning rates (TempBalance, Zhou et al. 2023), around a base rate η; the
    /// first and last layers and layers of fewer than 50 eigenvalues keep η. α by hill-median
    /// unless --estimator says otherwise.
    Lr {
        /// The base learning rate η.
        #[arg(long, value_parser = finite_number)]
        base: f64,
        /// `linear`: α_min..α_max onto 0.5η..1.5η. `sqrt`: √α/Σ√α·n·η. `log2`: log₂α/Σlog₂α·n·η.
        /// `step`: by rank, the j-th smallest α of n gets η·(0.5 + j/n).
        #[arg(long, value_parser = choice::<LrMap>(), default_value_t = LrMap::default())]
        map: LrMap,
        #[command(flatten)]
        run: RunArgs,
    },
    /// LoRA experts per transformer block (AlphaLoRA, Qing et al. 2024): n_l = round(T·ᾱ_l^β /
    /// Σ ᾱ^β), ᾱ_l the mean α of block l, the rounding repaired to hit T. α by alpha-peak
    /// unless --estimator says otherwise.
    Lora {
        /// T, the experts over all blocks.
        #[arg(long, default_value_t = 160)]
        total: usize,
        /// The exponent β.
        #[arg(long, value_parser = finite_number, default_value_t = 2.5)]
        beta: f64,
        #[command(flatten)]
        run: RunArgs,
    },
}

impl DecisionArgs {
    /// The library's decision, and what it runs on.
    fn split(self) -> (RunArgs, Decision) {
        match self {
            Self::Sparsity {
                target,
                epsilon,
                block_wise,
                run,
            } => (
                run,
                Decision::Sparsity {
                    target,
                    epsilon,
                    block_wise,
                },
            ),
            Self::Lr { base, map, run } => (run, Decision::LearningRate { base, map }),
            Self::Lora { total, beta, run } => (run, Decision::LoraExperts { total, beta }),
        }
    }
}

/// The analysis settings `allocate NAME` runs with unless told, for its help: the defaults as
/// its decision completes them ([`Decision::complete`], whatever the decision's values).
pub(super) fn analysis_defaults(name: &str) -> serde_json::Map<String, serde_json::Value> {
    let decision = match name {
        "lr" => Decision::LearningRate {
            base: 1.0,
            map: LrMap::default(),
        },
        "lora" => Decision::LoraExperts {
            total: 1,
            beta: 1.0,
        },
        _ => Decision::Sparsity {
            target: 0.5,
            epsilon: 0.0,
            block_wise: false,
        },
    };
    let mut request = AnalysisRequest::default();
    decision.complete(&mut request);
    request
        .resolve()
        .map(|options| options.settings_json())
        .unwrap_or_default()
}

/// Analyses the model and writes the decision taken from it.
pub fn run(args: AllocateArgs) -> anyhow::Result<u8> {
    let (
        RunArgs {
            model,
            analysis,
            output,
        },
        decision,
    ) = args.decision.split();
    let options = analysis.options(|request| decision.complete(request))?;
    output.prepare(&[&model.model])?;
    let loaded = model.load()?;
    let result = analyze_model(&loaded, &options, analysis.quiet)?;
    output.emit(&allocate(&result, &decision)?)?;
    Ok(0)
}
