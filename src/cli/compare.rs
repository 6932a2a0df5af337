//! `rmt-torch compare`: what changed between two models, layer by layer.
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::report::plots::write_compare_figures;
use crate::workflows::compare::{compare_with_progress, COMPARE_FIELDS};
use crate::workflows::health::Rule;
use crate::Model;

use super::output::{advance, progress_bar};
use super::{AnalysisArgs, EntryArgs, OutputArgs, PlotArgs};

/// Arguments of `compare`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Layers are matched by name, the prefixes wrappers add aside (module., _orig_mod.,
base_model.model., model.), and must have the same shape (or the transposed one for a 2-D
weight, as GPT-2's Conv1D stores it). A layer without a partner, or of another shape, is listed
with the reason, never zero-filled. Each matched pair is read, compared and dropped before the
next: the two models are never both in memory.

COLUMNS (the JSON's names; base.*, other.* and update.* are each side's and the update's layer
records, with every field analyze reports):
  relative_frobenius  ‖ΔW‖_F / ‖W_base‖_F, ΔW = W_other − W_base: how much of the layer the
                      update is (the table is sorted by it, largest first)
  relative_spectral   ‖ΔW‖₂ / ‖W_base‖₂, the weights as [out, rest] matrices
  cka                 linear CKA of the two weights as [out, rest] matrices, rows as examples,
                      columns centred (Kornblith et al. 2019): 1 for a scaled copy
  esd_ks, esd_wasserstein
                      Kolmogorov-Smirnov and Wasserstein-1 distances between the two ESDs on
                      log₁₀ λ (the latter in decades)
  delta_alpha         other.alpha − base.alpha
  update.*            the whole suite on ΔW: is the update low-rank (few eigenvalues beyond the
                      Tracy-Widom edge: update.num_spikes_tw), noise (random-like) or
                      heavy-tailed (update.alpha)?
  update.rank         for a LoRA adapter's update, read from its factors: its rank r (its ESD
                      is r eigenvalues and zeros, so the Tracy-Widom and Marchenko-Pastur tests
                      are not computed)

FIGURES (--plots DIR): compare (α before and after, the update's size, against the layers) and
each changed layer's update ESD against its Marchenko-Pastur fit (LLL_NAME_update_esd).

EXIT CODES: 0 no --fail-if rule violated, 1 a rule violated, 2 the comparison failed (a file
that cannot be read, no layer in common, a bad rule).

EXAMPLES:
  rmt-torch compare models/digits_cnn_init.pt models/digits_cnn_trained.pt
  rmt-torch compare base.pt tuned.pt --fail-if 'max_delta_alpha>1' --fail-if 'any(cka<0.9)'
  rmt-torch compare init.pt trained.pt --plots figures/ --plot-format svg
  rmt-torch compare base/ finetuned/ -f json -o changes.json
  rmt-torch compare base/ lora-adapter/ --fail-if 'max_update.rank>16'")]
pub struct CompareArgs {
    /// The base model: any file or checkpoint directory `analyze` reads.
    base: PathBuf,
    /// The model compared with it (a fine-tune, a later checkpoint), or a LoRA adapter
    /// directory of the base: then the base with the adapter laid over it, W + ΔW, layer by
    /// layer (no merged model is written), and each update analysed from its factors.
    other: PathBuf,
    #[command(flatten)]
    entry: EntryArgs,
    /// A rule that fails the comparison when true (repeatable; exit 1), read per layer:
    /// max_FIELD or min_FIELD OP VALUE, any(FIELD OP VALUE), count(FIELD OP VALUE) OP N, with
    /// layers=REGEX: before any of them to read only some layers; FIELD one of the numeric
    /// columns (relative_frobenius, cka, delta_alpha, update.num_spikes_tw, …). E.g.
    /// 'max_delta_alpha>1', 'any(cka<0.9)'.
    #[arg(long, value_name = "RULE", value_parser = compare_rule)]
    fail_if: Vec<Rule>,
    #[command(flatten)]
    analysis: AnalysisArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten, next_help_heading = "Figures")]
    plots: PlotArgs,
}

/// A `--fail-if` rule over the comparison's numeric columns.
pub(super) fn compare_rule(text: &str) -> Result<Rule, String> {
    Rule::parse(text, COMPARE_FIELDS).map_err(|err| err.to_string())
}

/// Compares the two models and writes the comparison; exit 1 when a rule is violated.
pub fn run(args: CompareArgs) -> anyhow::Result<u8> {
    args.analysis
        .refuse_unwritten_data(args.output.format, args.plots.plots.is_some())?;
    let options = args
        .analysis
        .options(|request| request.figure_data |= args.plots.plots.is_some())?;
    args.plots.prepare()?;
    args.output.prepare(&[&args.base, &args.other])?;
    let key = args.entry.key.as_deref();
    let base = Model::load_entry(&args.base, key)?;
    let other = Model::load_derived(&args.other, &args.base, key)?;
    let bar = progress_bar(args.analysis.quiet, "layers");
    let mut comparison = compare_with_progress(&base, &other, &options, |done, total, name| {
        advance(&bar, done, total, name)
    })
    .with_context(|| {
        format!(
            "comparing {} with {}",
            args.other.display(),
            args.base.display()
        )
    })?;
    bar.finish_and_clear();
    comparison.judge(&args.fail_if);
    args.output.emit(&comparison)?;
    args.plots.write(args.analysis.quiet, |directory, files| {
        write_compare_figures(&comparison, directory, files)
    })?;
    Ok(if comparison.violations.is_empty() {
        0
    } else {
        1
    })
}
