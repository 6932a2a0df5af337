//! Two models compared layer by layer: what fine-tuning (or a later checkpoint) changed, and
//! where. Layers are matched by name ([`match_layers`]); each matched pair is read, compared and
//! dropped before the next (never both models whole in memory), and gives each side's analysis,
//! the analysis of the update ΔW = W_other − W_base with the whole suite (is the update
//! low-rank, noise, heavy-tailed?), and distances between the two weights and their ESDs.
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::analysis::{analyze, AnalyzeOptions, LayerReport};
use crate::error::{Error, Result};
use crate::model::fused::AttentionHeads;
use crate::model::layers::{self, WeightLayer};
use crate::model::{FileFormat, Model, NamedTensor};
use crate::workflows::health::{Rule, RuleFields};

/// The numeric fields of a layer comparison that its table shows and rules may name: its own,
/// then `side.field` of the three layer records.
pub const NUMERIC_FIELDS: [&str; 12] = [
    "relative_frobenius",
    "relative_spectral",
    "cka",
    "esd_ks",
    "esd_wasserstein",
    "delta_alpha",
    "base.alpha",
    "other.alpha",
    "update.alpha",
    "update.num_spikes_tw",
    "update.stable_rank",
    "update.rank",
];

/// What `compare --fail-if` rules may name: [`NUMERIC_FIELDS`] per layer, no summary.
pub const COMPARE_FIELDS: RuleFields = RuleFields {
    layer: |name| NUMERIC_FIELDS.iter().copied().find(|field| *field == name),
    examples: "relative_frobenius, relative_spectral, cka, esd_ks, esd_wasserstein, delta_alpha, base.alpha, other.alpha, update.alpha, update.num_spikes_tw, update.stable_rank, update.rank",
    summary: false,
};

/// The schema name and version of `compare`'s JSON.
pub const COMPARE_SCHEMA: &str = "rmt-torch/compare/v1";

/// Name prefixes that wrappers add without changing the layer: DataParallel's `module.`,
/// `torch.compile`'s `_orig_mod.`, PEFT's `base_model.model.`, and a task model's `model.`.
const WRAPPER_PREFIXES: [&str; 4] = ["module.", "_orig_mod.", "base_model.model.", "model."];

/// A layer's name without the wrappers' prefixes: the key layers are matched by.
pub fn match_key(name: &str) -> &str {
    let mut key = name;
    while let Some(rest) = WRAPPER_PREFIXES
        .iter()
        .find_map(|prefix| key.strip_prefix(prefix))
    {
        key = rest;
    }
    key
}

/// How the other model stores a matched layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// The same shape.
    Same,
    /// Transposed (a 2-D weight stored [in, out], as GPT-2's Conv1D does): compared as the
    /// base stores it.
    Transposed,
    /// A Llama-family query or key projection whose rows one side keeps in llama.cpp's rotary
    /// order (GGUF files: within each head the two halves interleaved, as `convert_hf_to_gguf`
    /// permutes them) and the other in Hugging Face's: compared in the base's order.
    Rotary {
        /// Heads of the projection (key-value heads for a key).
        heads: usize,
        /// Whether the other side is the GGUF one (its order is undone) rather than the base
        /// (the other's rows are put in llama.cpp's order).
        other_is_gguf: bool,
    },
}

impl Storage {
    /// `other` as the base stores it.
    fn aligned(self, other: Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Same => other,
            Self::Transposed => other.f_tr()?.f_contiguous()?,
            Self::Rotary {
                heads,
                other_is_gguf,
            } => {
                let size = other.size();
                let (rows, heads) = (size[0], heads as i64);
                let half = rows / heads / 2;
                // convert_hf_to_gguf: rows as [heads, 2, half], axes 1 and 2 swapped; undone
                // by the same swap of [heads, half, 2].
                let from = if other_is_gguf {
                    [heads, half, 2]
                } else {
                    [heads, 2, half]
                };
                other
                    .f_reshape([from[0], from[1], from[2], -1])?
                    .f_transpose(1, 2)?
                    .f_reshape(size.as_slice())?
                    .f_contiguous()?
            }
        })
    }
}

/// The heads of a GGUF Llama-family `model` (`general.architecture` llama), whose q and k
/// rows llama.cpp keeps in its rotary order; `None` for any other model.
pub fn rotary_heads(model: &Model) -> Option<AttentionHeads> {
    let arch = model
        .other_entries
        .iter()
        .find(|e| e.name == "general.architecture")?;
    let llama = arch.value == crate::model::EntryValue::Str("llama".into());
    (model.format == FileFormat::Gguf && llama)
        .then(|| AttentionHeads::from_gguf(&model.other_entries))
        .flatten()
}

/// A pair of layers the comparison reads, by their positions in each model's weight layers.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedPair {
    /// Index among the base model's weight layers.
    pub base: usize,
    /// Index among the other model's.
    pub other: usize,
    /// How the other side stores it.
    pub storage: Storage,
}

/// Which model a layer without a partner belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The base model.
    Base,
    /// The other model.
    Other,
}

/// A layer left out of the comparison, and why: never zero-filled, never guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmatched {
    /// Its name in its model.
    pub name: String,
    /// The model it is in.
    pub side: Side,
    /// Why it has no partner.
    pub reason: String,
}

/// Matches the weight layers of two models by name, wrappers' prefixes aside
/// ([`match_key`]), or else by their transformer role (block, part, expert) when exactly one
/// layer of each model has it (a GGUF file's `blk.3.attn_q.weight` and a Hugging Face
/// checkpoint's `model.layers.3.self_attn.q_proj.weight`; `rotary` gives the heads of the one
/// that is a GGUF Llama, whose q and k rows are in llama.cpp's order, and which side it is). A
/// pair must have the same stored shape, or the transposed one for a 2-D weight. Everything
/// else is listed with the reason.
pub fn match_layers(
    base: &[WeightLayer<'_>],
    other: &[WeightLayer<'_>],
    rotary: Option<(AttentionHeads, bool)>,
) -> (Vec<MatchedPair>, Vec<Unmatched>) {
    use crate::model::roles::{role_of, Part};
    let mut pairs = Vec::new();
    let mut unmatched = Vec::new();
    let mut taken = vec![false; other.len()];
    let unique = |layers: &[WeightLayer<'_>], role| {
        let mut found = layers
            .iter()
            .enumerate()
            .filter(|(_, l)| role_of(&l.name) == Some(role))
            .map(|(index, _)| index);
        match (found.next(), found.next()) {
            (Some(index), None) => Some(index),
            _ => None,
        }
    };
    for (index, layer) in base.iter().enumerate() {
        let key = match_key(&layer.name);
        let by_name = other.iter().position(|o| match_key(&o.name) == key);
        let role = role_of(&layer.name).filter(|_| by_name.is_none());
        let by_role = role
            .filter(|role| unique(base, *role) == Some(index))
            .and_then(|role| unique(other, role));
        let Some(partner) = by_name.or(by_role).filter(|&p| !taken[p]) else {
            unmatched.push(Unmatched {
                name: layer.name.clone(),
                side: Side::Base,
                reason: "no weight layer of that name in the other model".into(),
            });
            continue;
        };
        taken[partner] = true;
        let (ours, theirs) = (
            WeightLayer::stored_shape(layer),
            WeightLayer::stored_shape(&other[partner]),
        );
        let transposed: Vec<i64> = ours.iter().rev().copied().collect();
        let rotary_heads = rotary.and_then(|(heads, other_is_gguf)| {
            let part = role.filter(|_| by_role.is_some())?.part;
            let heads = match part {
                Part::Query => heads.heads,
                Part::Key => heads.kv_heads,
                _ => return None,
            };
            (ours.len() == 2 && ours[0] % (2 * heads as i64) == 0).then_some(Storage::Rotary {
                heads,
                other_is_gguf,
            })
        });
        let storage = if let Some(rotary) = rotary_heads.filter(|_| ours == theirs) {
            rotary
        } else if ours == theirs {
            Storage::Same
        } else if ours.len() == 2 && theirs == transposed {
            Storage::Transposed
        } else {
            unmatched.push(Unmatched {
                name: layer.name.clone(),
                side: Side::Base,
                reason: format!("shape {ours:?} here, {theirs:?} in the other model"),
            });
            continue;
        };
        pairs.push(MatchedPair {
            base: index,
            other: partner,
            storage,
        });
    }
    for (layer, _) in other.iter().zip(&taken).filter(|(_, taken)| !**taken) {
        unmatched.push(Unmatched {
            name: layer.name.clone(),
            side: Side::Other,
            reason: "no weight layer of that name in the base model".into(),
        });
    }
    (pairs, unmatched)
}

/// One matched layer: both sides' analyses, the update's, and how far apart they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerComparison {
    /// The layer's name in the base model.
    pub name: String,
    /// Its name in the other model, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_name: Option<String>,
    /// How the other model stores it.
    pub storage: Storage,
    /// ‖ΔW‖_F / ‖W_base‖_F: how much of the layer the update is.
    pub relative_frobenius: f64,
    /// ‖ΔW‖₂ / ‖W_base‖₂ (largest singular values of the weights as [out, rest] matrices).
    pub relative_spectral: f64,
    /// Linear CKA between the two weights as [out, rest] matrices (rows as examples, columns
    /// centred; Kornblith et al. 2019): 1 when one is an isotropic scaling of the other.
    pub cka: Option<f64>,
    /// Kolmogorov-Smirnov distance between the two ESDs, on log λ.
    pub esd_ks: Option<f64>,
    /// Wasserstein-1 distance between the two ESDs, on log₁₀ λ (in decades).
    pub esd_wasserstein: Option<f64>,
    /// α of the other model minus α of the base.
    pub delta_alpha: Option<f64>,
    /// The base layer's analysis.
    pub base: LayerReport,
    /// The other layer's analysis.
    pub other: LayerReport,
    /// The analysis of the update ΔW = W_other − W_base; absent when the layer is unchanged
    /// (ΔW = 0 has no spectrum to read).
    pub update: Option<LayerReport>,
}

/// A comparison in a few numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompareSummary {
    /// Layers matched.
    pub layers: usize,
    /// Of those, layers that changed (ΔW ≠ 0).
    pub changed: usize,
    /// Of those, layers whose quality label changed.
    pub relabelled: usize,
    /// Layers of either model left out.
    pub unmatched: usize,
    /// Mean `delta_alpha` over the layers where both sides' fits succeeded.
    pub mean_delta_alpha: Option<f64>,
    /// The layer with the largest update relative to its weight…
    pub most_changed: Option<String>,
    /// …and that update's `relative_frobenius`.
    pub max_relative_frobenius: Option<f64>,
    /// The smallest CKA between the two sides of a layer.
    pub min_cka: Option<f64>,
}

impl CompareSummary {
    /// The summary of `layers` compared, `unmatched` left out.
    pub fn of(layers: &[LayerComparison], unmatched: usize) -> Self {
        let deltas: Vec<f64> = layers.iter().filter_map(|l| l.delta_alpha).collect();
        let most = layers
            .iter()
            .filter(|l| l.relative_frobenius.is_finite())
            .max_by(|a, b| a.relative_frobenius.total_cmp(&b.relative_frobenius));
        Self {
            layers: layers.len(),
            changed: layers.iter().filter(|l| l.update.is_some()).count(),
            relabelled: layers
                .iter()
                .filter(|l| l.base.quality != l.other.quality)
                .count(),
            unmatched,
            mean_delta_alpha: (!deltas.is_empty())
                .then(|| deltas.iter().sum::<f64>() / deltas.len() as f64),
            most_changed: most.map(|l| l.name.clone()),
            max_relative_frobenius: most.map(|l| l.relative_frobenius),
            min_cka: layers.iter().filter_map(|l| l.cka).reduce(f64::min),
        }
    }
}

/// Two models compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// [`COMPARE_SCHEMA`].
    pub schema: String,
    /// The base model.
    pub base: String,
    /// The other model.
    pub other: String,
    /// Every analysis option the three analyses of each layer used, defaults filled in (as
    /// `analyze`'s JSON `settings`).
    pub settings: crate::AnalysisRequest,
    /// The matched layers in the base model's order.
    pub layers: Vec<LayerComparison>,
    /// Layers of either model left out, with the reason.
    pub unmatched: Vec<Unmatched>,
    /// The comparison in a few numbers.
    #[serde(default)]
    pub summary: CompareSummary,
    /// The rules the comparison was judged by ([`Comparison::judge`]), as written.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Those it violates.
    #[serde(default)]
    pub violations: Vec<String>,
}

impl Comparison {
    /// One flat record per matched layer, in the model's order: its `name`, then
    /// [`NUMERIC_FIELDS`] and each side's `quality` (`base.quality`, …), keyed by those names.
    pub fn rows(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        use serde_json::Value;
        self.layers
            .iter()
            .map(|layer| {
                // One serialisation of the pair: the sides are its `base`, `other` and
                // `update` objects.
                let record = serde_json::to_value(layer).unwrap_or(Value::Null);
                let cell = |column: &str| {
                    let value = match column.split_once('.') {
                        Some((side, name)) => &record[side][name],
                        None => &record[column],
                    };
                    value.clone()
                };
                std::iter::once("name")
                    .chain(NUMERIC_FIELDS)
                    .chain(["base.quality", "other.quality", "update.quality"])
                    .map(|column| (column.to_string(), cell(column)))
                    .collect()
            })
            .collect()
    }

    /// Judges the comparison by per-layer `rules` (`max_delta_alpha>1`, `any(cka<0.9)`,
    /// `layers=attn:count(relative_frobenius>0.5)>=2`): records them and those violated.
    pub fn judge(&mut self, rules: &[Rule]) {
        let rows: Vec<serde_json::Value> = self
            .rows()
            .into_iter()
            .map(serde_json::Value::Object)
            .collect();
        self.rules = rules.iter().map(ToString::to_string).collect();
        self.violations = rules
            .iter()
            .filter(|rule| rule.violated_over(&rows))
            .map(ToString::to_string)
            .collect();
    }
}

/// Compares `other` with `base` layer by layer, each side and the update analysed with
/// `options`.
pub fn compare(base: &Model, other: &Model, options: &AnalyzeOptions) -> Result<Comparison> {
    compare_with_progress(base, other, options, |_, _, _| {})
}

/// [`compare`], calling `on_layer(done, total, name)` before each matched layer.
pub fn compare_with_progress(
    base: &Model,
    other: &Model,
    options: &AnalyzeOptions,
    mut on_layer: impl FnMut(usize, usize, &str),
) -> Result<Comparison> {
    let mut request = options.settings().clone();
    let keep_eigenvalues = request.eigenvalues || request.figure_data;
    request.eigenvalues = true;
    let with_eigenvalues = request.resolve()?;
    let (base_layers, _) = layers::select(base, options.selection())?;
    let (other_layers, _) = layers::select(other, options.selection())?;
    let rotary = match (rotary_heads(base), rotary_heads(other)) {
        (None, Some(heads)) => Some((heads, true)),
        (Some(heads), None) => Some((heads, false)),
        _ => None,
    };
    let (pairs, unmatched) = match_layers(&base_layers, &other_layers, rotary);
    if pairs.is_empty() {
        return Err(Error::NoWeightMatrices(format!(
            "no layer of {} matches one of {} by name and shape ({} unmatched)",
            other.path.display(),
            base.path.display(),
            unmatched.len()
        )));
    }
    let mut layers = Vec::with_capacity(pairs.len());
    for (done, pair) in pairs.iter().enumerate() {
        let (ours, theirs) = (&base_layers[pair.base], &other_layers[pair.other]);
        on_layer(done, pairs.len(), &ours.name);
        let mut comparison = compare_pair(ours, theirs, pair.storage, &with_eigenvalues)
            .map_err(|err| err.in_layer(&base.path, &ours.name))?;
        if !keep_eigenvalues {
            for report in [&mut comparison.base, &mut comparison.other]
                .into_iter()
                .chain(comparison.update.as_mut())
            {
                report.eigenvalues = None;
            }
        }
        layers.push(comparison);
    }
    on_layer(pairs.len(), pairs.len(), "");
    let summary = CompareSummary::of(&layers, unmatched.len());
    Ok(Comparison {
        schema: COMPARE_SCHEMA.into(),
        base: base.path.display().to_string(),
        other: other.path.display().to_string(),
        settings: options.settings().clone(),
        layers,
        unmatched,
        summary,
        rules: Vec::new(),
        violations: Vec::new(),
    })
}

/// Each of `tensors` analysed as `analyze` would, as the layers of one model so that their
/// eigensolves run side by side; their reports in order. A tensor without a spectrum (all
/// zeros) is an error naming `name`.
fn analysed_together(
    name: &str,
    tensors: Vec<NamedTensor>,
    options: &AnalyzeOptions,
) -> Result<Vec<LayerReport>> {
    let count = tensors.len();
    let model = Model {
        path: name.into(),
        format: FileFormat::InMemory,
        tensors,
        other_entries: Vec::new(),
        directory: None,
    };
    let analysis = analyze(&model, options)?;
    if analysis.layers.len() != count {
        return Err(Error::NoWeightMatrices(format!(
            "{name}: one of the weights compared is identically zero (no spectrum)"
        )));
    }
    Ok(analysis.layers)
}

/// Rows of a band of a weight converted to f64 at once by [`cross_product`]: 32 MiB of them.
const BAND_BYTES: i64 = 32 << 20;

/// Yᵀ·X of two [n, p] weights (stored dtype) in f64 on `device`, a band of rows at a time (no
/// f64 copy of either), and the column sums of each.
fn cross_product(x: &Tensor, y: &Tensor, device: tch::Device) -> Result<(Tensor, Tensor, Tensor)> {
    let (n, p) = (x.size()[0], x.size()[1]);
    let band = (BAND_BYTES / (8 * p).max(1)).clamp(1, n.max(1));
    let options = (Kind::Double, device);
    let (mut cross, mut sum_x, mut sum_y) = (
        Tensor::f_zeros([p, p], options)?,
        Tensor::f_zeros([p], options)?,
        Tensor::f_zeros([p], options)?,
    );
    for start in (0..n).step_by(band as usize) {
        let rows = band.min(n - start);
        let to_f64 = |t: &Tensor| -> Result<Tensor> {
            Ok(t.f_narrow(0, start, rows)?
                .f_to_device(device)?
                .f_to_kind(Kind::Double)?)
        };
        let (xb, yb) = (to_f64(x)?, to_f64(y)?);
        cross = cross.f_add(&yb.f_tr()?.f_matmul(&xb)?)?;
        sum_x = sum_x.f_add(&xb.f_sum_dim_intlist(0, false, Kind::Double)?)?;
        sum_y = sum_y.f_add(&yb.f_sum_dim_intlist(0, false, Kind::Double)?)?;
    }
    Ok((cross, sum_x, sum_y))
}

/// Linear CKA of two [n, p] weights from their Gram matrices as the analysis forms them
/// (X·Xᵀ when n < p, else XᵀX, [`crate::model::layers::as_matrices`]): on the n × n route
/// the Grams centred as H·K·H; on the p × p route XcᵀXc = XᵀX − n·μμᵀ and the cross term
/// YcᵀXc from one more product, banded. The same CKA as [`linear_cka`], without its products.
fn cka_from_grams(
    kx: &Tensor,
    ky: &Tensor,
    x: &Tensor,
    y: &Tensor,
    device: tch::Device,
) -> Result<Option<f64>> {
    let (n, p) = (x.size()[0], x.size()[1]);
    let squared =
        |t: &Tensor| -> Result<f64> { Ok(f64::try_from(t.f_square()?.f_sum(Kind::Double)?)?) };
    let (cross, xx, yy) = if n < p {
        let centred = |k: &Tensor| -> Result<Tensor> {
            let rows = k.f_mean_dim(1, true, Kind::Double)?;
            let columns = k.f_mean_dim(0, true, Kind::Double)?;
            let all = k.f_mean(Kind::Double)?;
            Ok(k.f_sub(&rows)?.f_sub(&columns)?.f_add(&all)?)
        };
        let (kx, ky) = (centred(kx)?, centred(ky)?);
        let cross = f64::try_from(kx.f_mul(&ky)?.f_sum(Kind::Double)?)?;
        (cross, squared(&kx)?, squared(&ky)?)
    } else {
        let (product, sum_x, sum_y) = cross_product(x, y, device)?;
        let rows = n as f64;
        let (mean_x, mean_y) = (sum_x.f_div_scalar(rows)?, sum_y.f_div_scalar(rows)?);
        let outer = |a: &Tensor, b: &Tensor| -> Result<Tensor> {
            Ok(a.f_unsqueeze(1)?
                .f_matmul(&b.f_unsqueeze(0)?)?
                .f_mul_scalar(rows)?)
        };
        let cross = product.f_sub(&outer(&mean_y, &mean_x)?)?;
        let xx = kx.f_sub(&outer(&mean_x, &mean_x)?)?;
        let yy = ky.f_sub(&outer(&mean_y, &mean_y)?)?;
        (squared(&cross)?, squared(&xx)?, squared(&yy)?)
    };
    let denominator = (xx * yy).sqrt();
    Ok((denominator > 0.0).then(|| cross / denominator))
}

/// A dense pair compared from three Gram matrices formed once (base, other, update), which give
/// the three spectra, CKA and the norms: no f64 copy of either side or of the update (each is
/// read a band at a time), no product formed twice, the three eigensolves side by side. `None` where it does not apply (another kind of layer,
/// `--precision fast`, options that read the matrices themselves, an adapter's update).
fn compare_dense_pair(
    ours: &WeightLayer<'_>,
    theirs: &WeightLayer<'_>,
    storage: Storage,
    options: &AnalyzeOptions,
) -> Result<Option<LayerComparison>> {
    use crate::analysis::{reads_matrices, report_of_spectrum, LayerMeta};
    use crate::model::layers::{as_matrices, ConvMode, LayerKind};
    use crate::spectrum::{Gram, Precision};
    if ours.kind != LayerKind::Dense
        || options.precision() != Precision::F64
        || reads_matrices(options)
        || theirs.tensor.merged_update().is_some()
    {
        return Ok(None);
    }
    let _no_grad = tch::no_grad_guard();
    let device = options.device().resolve()?;
    let name = ours.name.as_str();
    let base = ours.weight()?;
    let other = storage.aligned(theirs.weight()?)?;
    let gram = |t: &Tensor| -> Result<Gram> {
        Gram::of(
            name,
            &as_matrices(t, LayerKind::Dense, ConvMode::Slices)?,
            device,
            Precision::F64,
        )
    };
    let update_gram = Gram::of_difference(name, &other, &base, device)?;
    let (base_gram, other_gram) = (gram(&base)?, gram(&other)?);
    let cka = cka_from_grams(
        &base_gram.symmetric()?,
        &other_gram.symmetric()?,
        &base,
        &other,
        device,
    )?;
    drop((base, other));
    // Each side's eigensolve and statistics on a thread of its own.
    let metas = [
        LayerMeta::of(ours, ours.tensor.dtype.to_string()),
        LayerMeta::of(ours, theirs.tensor.dtype.to_string()),
        LayerMeta::of(ours, "float64".into()),
    ];
    type Solved = Result<(f64, f64, Option<LayerReport>)>;
    let solve = |gram: Gram, meta: LayerMeta| -> Solved {
        let spectrum = gram.spectrum()?;
        let total = spectrum.squared_singular_values.iter().sum::<f64>();
        let largest = spectrum
            .squared_singular_values
            .iter()
            .copied()
            .fold(0.0, f64::max);
        Ok((total, largest, report_of_spectrum(meta, spectrum, options)))
    };
    let [base_meta, other_meta, update_meta] = metas;
    let (base_solved, other_solved, update_solved) = std::thread::scope(|scope| {
        let base = scope.spawn(move || solve(base_gram, base_meta));
        let other = scope.spawn(move || solve(other_gram, other_meta));
        let update = solve(update_gram, update_meta);
        let joined = |handle: std::thread::ScopedJoinHandle<'_, Solved>| {
            handle.join().unwrap_or_else(|_| {
                Err(Error::InvalidInput(format!("{name}: an eigensolve failed")))
            })
        };
        (joined(base), joined(other), update)
    });
    let (
        (base_total, base_largest, base_report),
        (_, _, other_report),
        (update_total, update_largest, update_report),
    ) = (base_solved?, other_solved?, update_solved?);
    let relative_frobenius = (update_total / base_total).sqrt();
    let relative_spectral = (update_largest / base_largest).sqrt();
    let zero = || {
        Error::NoWeightMatrices(format!(
            "{name}: one of the weights compared is identically zero (no spectrum)"
        ))
    };
    let (base_report, other_report) = (
        base_report.ok_or_else(zero)?,
        other_report.ok_or_else(zero)?,
    );
    Ok(Some(pair_record(
        ours,
        theirs,
        storage,
        [relative_frobenius, relative_spectral],
        cka,
        [base_report, other_report],
        update_report,
    )))
}

/// The record of a compared pair from its parts: the distances between the ESDs and α's
/// change are read from the two reports.
fn pair_record(
    ours: &WeightLayer<'_>,
    theirs: &WeightLayer<'_>,
    storage: Storage,
    [relative_frobenius, relative_spectral]: [f64; 2],
    cka: Option<f64>,
    [base, other]: [LayerReport; 2],
    update: Option<LayerReport>,
) -> LayerComparison {
    let esd = |report: &LayerReport| report.eigenvalues.clone().unwrap_or_default();
    let (base_esd, other_esd) = (esd(&base), esd(&other));
    LayerComparison {
        name: ours.name.clone(),
        other_name: (theirs.name != ours.name).then(|| theirs.name.clone()),
        storage,
        relative_frobenius,
        relative_spectral,
        cka,
        esd_ks: log_esd_distance(&base_esd, &other_esd, Distance::KolmogorovSmirnov),
        esd_wasserstein: log_esd_distance(&base_esd, &other_esd, Distance::Wasserstein),
        delta_alpha: base
            .power_law
            .as_ref()
            .zip(other.power_law.as_ref())
            .map(|(b, o)| o.alpha - b.alpha),
        base,
        other,
        update,
    }
}

fn compare_pair(
    ours: &WeightLayer<'_>,
    theirs: &WeightLayer<'_>,
    storage: Storage,
    options: &AnalyzeOptions,
) -> Result<LayerComparison> {
    if let Some(record) = compare_dense_pair(ours, theirs, storage, options)? {
        return Ok(record);
    }
    let base = ours.weight()?.f_to_kind(Kind::Double)?;
    let other = storage.aligned(theirs.weight()?.f_to_kind(Kind::Double)?)?;
    let update = other.f_sub(&base)?;
    let name = ours.name.as_str();
    let rows = base.size()[0];
    let matrix = |t: &Tensor| t.f_reshape([rows, -1]);
    let (b, o, u) = (matrix(&base)?, matrix(&other)?, matrix(&update)?);
    let frobenius = |t: &Tensor| -> Result<f64> {
        Ok(f64::try_from(t.f_square()?.f_sum(Kind::Double)?)?.sqrt())
    };
    // An adapter's update is analysed from its factors, exactly: W + ΔW − W would add
    // round-off to its M − r zero singular values.
    let factored = match theirs.tensor.merged_update() {
        Some(update) if storage == Storage::Same && theirs.rows.is_none() => {
            Some(update.read_into_memory(name)?)
        }
        _ => None,
    };
    let in_memory = |t: &Tensor| NamedTensor::in_memory(name, t.shallow_clone());
    let mut tensors = vec![in_memory(&base), in_memory(&other)];
    let update_norm = frobenius(&u)?;
    let changed = update_norm > 0.0;
    if changed {
        tensors.push(factored.unwrap_or_else(|| in_memory(&update)));
    }
    let mut reports = analysed_together(name, tensors, options)?.into_iter();
    let (base_report, other_report) = match (reports.next(), reports.next()) {
        (Some(base), Some(other)) => (base, other),
        _ => unreachable!("analysed_together returns one report per tensor"),
    };
    let update_report = reports.next();
    // ‖ΔW‖₂/‖W‖₂ of a dense layer from the two λmax just computed (the same shape, so the
    // ESD's scaling cancels); a kernel's [out, rest] matrices are not the ESD's slices.
    let dense = ours.kind == crate::model::layers::LayerKind::Dense
        && !options.settings().selection.ww_compat;
    let spectral_ratio = |update: Option<&LayerReport>, u: &Tensor, b: &Tensor| -> Result<f64> {
        if dense {
            let top = update.map_or(0.0, |u| u.metrics.lambda_max);
            return Ok((top / base_report.metrics.lambda_max).sqrt());
        }
        let spectral = |t: &Tensor| -> Result<f64> {
            Ok(f64::try_from(t.f_linalg_norm(
                2,
                [-2i64, -1].as_slice(),
                false,
                Kind::Double,
            )?)?)
        };
        Ok(spectral(u)? / spectral(b)?)
    };
    let relative_spectral = spectral_ratio(update_report.as_ref(), &u, &b)?;
    Ok(pair_record(
        ours,
        theirs,
        storage,
        [update_norm / frobenius(&b)?, relative_spectral],
        linear_cka(&b, &o)?,
        [base_report, other_report],
        update_report,
    ))
}

/// Linear CKA of two [n, p] matrices, rows the examples, columns centred:
/// ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F), through the n×n Grams (‖YᵀX‖²_F = ⟨XXᵀ, YYᵀ⟩) when n ≤ p and
/// the p×p products otherwise, whichever is smaller. `None` when a side is constant.
pub fn linear_cka(x: &Tensor, y: &Tensor) -> Result<Option<f64>> {
    let centred =
        |t: &Tensor| -> Result<Tensor> { Ok(t.f_sub(&t.f_mean_dim(0, true, Kind::Double)?)?) };
    let (x, y) = (centred(x)?, centred(y)?);
    let squared_norm =
        |t: &Tensor| -> Result<f64> { Ok(f64::try_from(t.f_square()?.f_sum(Kind::Double)?)?) };
    let (cross, xx, yy) = if x.size()[0] <= x.size()[1] {
        let (kx, ky) = (x.f_matmul(&x.f_tr()?)?, y.f_matmul(&y.f_tr()?)?);
        let cross = f64::try_from(kx.f_mul(&ky)?.f_sum(Kind::Double)?)?;
        (cross, squared_norm(&kx)?, squared_norm(&ky)?)
    } else {
        (
            squared_norm(&y.f_tr()?.f_matmul(&x)?)?,
            squared_norm(&x.f_tr()?.f_matmul(&x)?)?,
            squared_norm(&y.f_tr()?.f_matmul(&y)?)?,
        )
    };
    let denominator = (xx * yy).sqrt();
    Ok((denominator > 0.0).then(|| cross / denominator))
}

/// A distance between two distributions of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distance {
    /// sup |F₁ − F₂|.
    KolmogorovSmirnov,
    /// ∫ |F₁ − F₂|.
    Wasserstein,
}

/// `distance` between the empirical distributions of log₁₀ λ of two ESDs (positive eigenvalues
/// only); `None` when either has none.
pub fn log_esd_distance(a: &[f64], b: &[f64], distance: Distance) -> Option<f64> {
    let logs = |values: &[f64]| {
        let mut logs: Vec<f64> = values
            .iter()
            .filter(|&&v| v > 0.0 && v.is_finite())
            .map(|v| v.log10())
            .collect();
        logs.sort_by(f64::total_cmp);
        logs
    };
    let (a, b) = (logs(a), logs(b));
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let (mut sup, mut integral): (f64, f64) = (0.0, 0.0);
    let mut previous = a[0].min(b[0]);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        let gap = (i as f64 / na - j as f64 / nb).abs();
        integral += gap * (next - previous);
        while i < a.len() && a[i] == next {
            i += 1;
        }
        while j < b.len() && b[j] == next {
            j += 1;
        }
        sup = sup.max((i as f64 / na - j as f64 / nb).abs());
        previous = next;
    }
    Some(match distance {
        Distance::KolmogorovSmirnov => sup,
        Distance::Wasserstein => integral,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappers_prefixes_are_not_part_of_the_name() {
        assert_eq!(match_key("module.fc.weight"), "fc.weight");
        assert_eq!(match_key("_orig_mod.module.fc.weight"), "fc.weight");
        assert_eq!(
            match_key("base_model.model.model.layers.0.q_proj.weight"),
            "layers.0.q_proj.weight"
        );
        assert_eq!(match_key("fc.weight"), "fc.weight");
    }

    /// KS and Wasserstein-1 of two small samples, by hand: {0, 1} against {1, 2} on log₁₀ of
    /// {1, 10} and {10, 100}: the CDFs differ by 1/2 on [0, 2), so KS = 1/2 and W₁ = 1.
    #[test]
    fn esd_distances_by_hand() {
        let (a, b) = ([1.0, 10.0], [10.0, 100.0]);
        let ks = log_esd_distance(&a, &b, Distance::KolmogorovSmirnov).unwrap();
        let w1 = log_esd_distance(&a, &b, Distance::Wasserstein).unwrap();
        assert!((ks - 0.5).abs() < 1e-15, "{ks}");
        assert!((w1 - 1.0).abs() < 1e-15, "{w1}");
        assert_eq!(log_esd_distance(&a, &a, Distance::Wasserstein), Some(0.0));
        assert_eq!(log_esd_distance(&a, &[0.0], Distance::Wasserstein), None);
    }

    /// CKA from the analysis's Gram matrices equals CKA from the weights, on both routes (a
    /// wide [out, in] weight: X·Xᵀ; a tall one: XᵀX and the banded cross product), stored in
    /// float32 as a checkpoint would hold them.
    #[test]
    fn cka_from_grams_equals_cka_from_the_weights() {
        use crate::model::layers::{as_matrices, ConvMode, LayerKind};
        use crate::spectrum::{Gram, Precision};
        tch::manual_seed(11);
        for (rows, cols) in [(12, 40), (40, 12), (16, 16)] {
            let x = Tensor::randn([rows, cols], (Kind::Float, tch::Device::Cpu)) + 0.3;
            let y = &x * 0.7 + Tensor::randn([rows, cols], (Kind::Float, tch::Device::Cpu));
            let gram = |t: &Tensor| {
                let matrices = as_matrices(t, LayerKind::Dense, ConvMode::Slices).unwrap();
                Gram::of("w", &matrices, tch::Device::Cpu, Precision::F64)
                    .unwrap()
                    .symmetric()
                    .unwrap()
            };
            let ours = cka_from_grams(&gram(&x), &gram(&y), &x, &y, tch::Device::Cpu)
                .unwrap()
                .unwrap();
            let (xd, yd) = (x.to_kind(Kind::Double), y.to_kind(Kind::Double));
            let theirs = linear_cka(&xd, &yd).unwrap().unwrap();
            assert!(
                (ours - theirs).abs() < 1e-12,
                "{rows}×{cols}: {ours} vs {theirs}"
            );
        }
    }

    /// The update's Gram matrix formed in bands from the two stored weights has the spectrum
    /// and entry variance of the difference formed whole, on both orientations.
    #[test]
    fn the_update_gram_in_bands_equals_the_difference_formed() {
        use crate::model::layers::{as_matrices, ConvMode, LayerKind};
        use crate::spectrum::{Gram, Precision};
        tch::manual_seed(5);
        for (rows, cols) in [(12, 40), (40, 12)] {
            let x = Tensor::randn([rows, cols], (Kind::Float, tch::Device::Cpu));
            let y = &x + Tensor::randn([rows, cols], (Kind::Float, tch::Device::Cpu)) * 0.1;
            let banded = Gram::of_difference("w", &y, &x, tch::Device::Cpu)
                .unwrap()
                .spectrum()
                .unwrap();
            let whole = y.to_kind(Kind::Double) - x.to_kind(Kind::Double);
            let matrices = as_matrices(&whole, LayerKind::Dense, ConvMode::Slices).unwrap();
            let formed = Gram::of("w", &matrices, tch::Device::Cpu, Precision::F64)
                .unwrap()
                .spectrum()
                .unwrap();
            let largest = formed.squared_singular_values.last().copied().unwrap();
            for (a, b) in banded
                .squared_singular_values
                .iter()
                .zip(&formed.squared_singular_values)
            {
                assert!((a - b).abs() < 1e-12 * largest, "{rows}×{cols}: {a} vs {b}");
            }
            assert!(
                (banded.entry_variance - formed.entry_variance).abs()
                    < 1e-12 * formed.entry_variance
            );
        }
    }

    /// CKA is 1 for a matrix and any isotropic scaling of it (and invariant to an orthogonal
    /// map of the columns), and below 1 for unrelated matrices.
    #[test]
    fn cka_of_a_scaled_matrix_is_one() {
        let x = Tensor::from_slice(&[1.0, 2.0, 3.0, 0.5, -1.0, 4.0, 2.0, 2.0, -3.0, 1.0, 0.0, 1.0])
            .reshape([4, 3]);
        let scaled = &x * 3.0;
        assert!((linear_cka(&x, &scaled).unwrap().unwrap() - 1.0).abs() < 1e-12);
        let wide = x.tr();
        assert!((linear_cka(&wide, &(&wide * -2.0)).unwrap().unwrap() - 1.0).abs() < 1e-12);
        let other =
            Tensor::from_slice(&[0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
                .reshape([4, 3]);
        let tall = linear_cka(&x, &other).unwrap().unwrap();
        assert!(tall < 0.99);
        // The same pair with zero columns appended (n ≤ p): the n×n route, the same CKA.
        let widen = |t: &Tensor| {
            Tensor::cat(
                &[t, &Tensor::zeros([4, 2], (Kind::Double, tch::Device::Cpu))],
                1,
            )
        };
        let wide = linear_cka(&widen(&x), &widen(&other)).unwrap().unwrap();
        assert!((tall - wide).abs() < 1e-12, "{tall} vs {wide}");
    }
}
