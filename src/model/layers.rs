//! Which tensors are weight matrices, and how each becomes a stack of matrices.
//!
//! The one place that decides it, for every command: 2-D tensors (Linear, Embedding, RNN/LSTM/GRU
//! `weight_ih`/`weight_hh`) are one matrix; Conv1d (out, in, k) and Conv2d (out, in, kh, kw)
//! kernels are either sliced per kernel position (k or kh·kw matrices of shape out × in whose
//! eigenvalues are pooled: WeightWatcher's reading of Conv2d) or reshaped to one out × in·k matrix
//! (Thamm, Staats & Rosenow 2022). [`LayerSelection::weightwatcher`] applies WeightWatcher 0.7.7's
//! own rules instead (`--ww-compat`): which layers it analyses, and its reading of Conv1d.
use super::experts::ExpertLayout;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::model::fused::{self, AttentionHeads};
use crate::model::roles::{self, Part};
use crate::model::{Model, NamedTensor};
use crate::option_names::{option_names, serde_as_text};

/// How a convolution kernel becomes matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvMode {
    /// One out × in matrix per kernel position, eigenvalues pooled (WeightWatcher).
    #[default]
    Slices,
    /// One out × (in·k) matrix for the whole kernel (Thamm, Staats & Rosenow).
    Reshape,
    /// WeightWatcher 0.7.7's reading: Conv2d as `slices`; a Conv1d kernel (out, in, k) as one
    /// SVD of the 3-D tensor, i.e. the in × k matrix of every output channel, their singular
    /// values pooled and only the largest min(out, in, k) kept, with N = max(out, in, k).
    WeightWatcher,
}

option_names!(ConvMode, "conv mode", { Slices => "slices", Reshape => "reshape", WeightWatcher => "ww" });

serde_as_text!(ConvMode);

/// What kind of layer a weight tensor belongs to, read from its rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// A 2-D weight: Linear, Embedding, a recurrent layer's input or hidden weights.
    Dense,
    /// A Conv1d kernel (out, in, k).
    Conv1d,
    /// A Conv2d kernel (out, in, kh, kw).
    Conv2d,
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dense => "dense",
            Self::Conv1d => "conv1d",
            Self::Conv2d => "conv2d",
        })
    }
}

/// The matrices a layer is analysed as: `slices` matrices of `n` × `m`, `n` ≥ `m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixShape {
    /// Rows after orientation (the larger side).
    pub n: usize,
    /// Columns after orientation (the smaller side): the number of eigenvalues per matrix.
    pub m: usize,
    /// How many matrices: kernel positions in `slices` mode, else 1.
    pub slices: usize,
}

impl MatrixShape {
    /// Aspect ratio Q = N/M ≥ 1.
    pub fn q(&self) -> f64 {
        self.n as f64 / self.m as f64
    }

    /// Eigenvalues in the pooled ESD: M per matrix.
    pub fn num_evals(&self) -> usize {
        self.m * self.slices
    }

    /// (slices, N, M) as floats, for cost and memory arithmetic.
    pub(crate) fn sizes(&self) -> (f64, f64, f64) {
        (self.slices as f64, self.n as f64, self.m as f64)
    }
}

/// Which tensors to analyse and how to read convolutions.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LayerSelection {
    /// How convolution kernels become matrices.
    pub conv_mode: ConvMode,
    /// Only tensors whose dotted name matches (anywhere in the name).
    pub name_pattern: Option<Regex>,
    /// Layers with fewer pooled eigenvalues are skipped ([`DEFAULT_MIN_EVALS`]).
    pub min_evals: usize,
    /// Layers with more pooled eigenvalues are skipped (none by default; WeightWatcher's
    /// `max_evals` under [`Self::weightwatcher`]).
    pub max_evals: Option<usize>,
    /// Layers whose larger side N exceeds this are skipped (none by default; WeightWatcher's
    /// `max_N` under [`Self::weightwatcher`]).
    pub max_n: Option<usize>,
    /// Split fused query-key-value projections into q, k and v ([`crate::model::fused`]).
    pub split_fused: bool,
    /// Also analyse each attention head's block of q, k, v and o (`--split-heads`).
    pub split_heads: bool,
    /// WeightWatcher 0.7.7's rules (`--ww-compat`): only module `weight` parameters (no
    /// recurrent `weight_ih`/`weight_hh`, no `in_proj_weight`), tied weights analysed once per
    /// name, Conv1d read as [`ConvMode::WeightWatcher`]; and, in the analysis, its rank and
    /// entropy definitions.
    pub ww_compat: bool,
}

/// Layers with fewer pooled eigenvalues are skipped by default (WeightWatcher 0.7.7's real
/// default, though its documentation says 10).
pub const DEFAULT_MIN_EVALS: usize = 8;

/// WeightWatcher 0.7.7's `max_evals`: layers with more pooled eigenvalues are not analysed.
pub const WEIGHTWATCHER_MAX_EVALS: usize = 15_000;

/// WeightWatcher 0.7.7's `max_N`: layers with a larger side N above it are not analysed.
pub const WEIGHTWATCHER_MAX_N: usize = 50_000;

impl Default for LayerSelection {
    fn default() -> Self {
        Self {
            conv_mode: ConvMode::Slices,
            name_pattern: None,
            min_evals: DEFAULT_MIN_EVALS,
            max_evals: None,
            max_n: None,
            split_fused: false,
            split_heads: false,
            ww_compat: false,
        }
    }
}

impl LayerSelection {
    /// WeightWatcher 0.7.7's selection and reading of layers, with its limits.
    pub fn weightwatcher() -> Self {
        Self {
            conv_mode: ConvMode::WeightWatcher,
            max_evals: Some(WEIGHTWATCHER_MAX_EVALS),
            max_n: Some(WEIGHTWATCHER_MAX_N),
            ww_compat: true,
            ..Self::default()
        }
    }

    /// Only tensors whose name matches the regular expression `pattern`; a malformed pattern
    /// is an [`Error::InvalidParameter`] of `layers`, with the regex engine's reason.
    pub fn with_pattern(mut self, pattern: &str) -> Result<Self> {
        let regex = Regex::new(pattern).map_err(|err| {
            let reason = err.to_string();
            let reason = reason.lines().last().unwrap_or_default().trim().to_string();
            Error::parameter(
                "layers",
                format!("'{pattern}' is not a valid regular expression: {reason}"),
            )
        })?;
        self.name_pattern = Some(regex);
        Ok(self)
    }

    /// Checks the parameters ([`Error::InvalidParameter`]).
    pub fn check(&self) -> Result<()> {
        if self.min_evals == 0 {
            return Err(Error::parameter("min_evals", "must be at least 1"));
        }
        if let Some(max_evals) = self.max_evals.filter(|&max| max < self.min_evals) {
            return Err(Error::parameter(
                "max_evals",
                format!("{max_evals} is below min_evals {}", self.min_evals),
            ));
        }
        if self.max_n == Some(0) {
            return Err(Error::parameter("max_n", "must be at least 1"));
        }
        if self.ww_compat && self.conv_mode != ConvMode::WeightWatcher {
            return Err(Error::parameter(
                "conv",
                format!(
                    "ww_compat reads convolutions as WeightWatcher does (conv mode ww), not as {}",
                    self.conv_mode
                ),
            ));
        }
        Ok(())
    }
}

/// The verdict on one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A weight matrix (or stack of them) to analyse.
    Weight {
        /// Its layer kind.
        kind: LayerKind,
        /// The matrices it is analysed as.
        shape: MatrixShape,
    },
    /// Not analysed, and why.
    Skipped(String),
}

/// A tensor that is not analysed, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedTensor {
    /// The tensor's dotted name.
    pub name: String,
    /// Why it is not a weight matrix here.
    pub reason: String,
}

/// A weight tensor chosen for analysis.
#[derive(Clone)]
pub struct WeightLayer<'m> {
    /// The tensor's dotted name (with `[q]`, `[k]` or `[v]` for a part of a fused projection).
    pub name: String,
    /// Its layer kind.
    pub kind: LayerKind,
    /// The matrices it is analysed as.
    pub shape: MatrixShape,
    /// How convolutions are read.
    pub conv_mode: ConvMode,
    /// The tensor (read when its matrices are asked for).
    pub tensor: &'m NamedTensor,
    /// For one expert of a 3-D mixture-of-experts tensor: its index along the first dimension
    /// (the layer is that slice, read alone).
    pub expert: Option<usize>,
    /// For a part of a split fused projection: the dimension and the indices it keeps (of the
    /// expert's slice, for an expert).
    pub rows: Option<(usize, Vec<i64>)>,
}

/// The per-parameter buffers optimizers keep beside the weights (Adam's moments, SGD's momentum,
/// RMSprop's and Adadelta's averages): tensors of a checkpoint's optimizer state, never layers.
const OPTIMIZER_MOMENTS: [&str; 7] = [
    "exp_avg",
    "exp_avg_sq",
    "max_exp_avg_sq",
    "momentum_buffer",
    "square_avg",
    "acc_delta",
    "grad_avg",
];

/// The optimizer buffer a tensor's name ends in, if any (`optimizer.state.0.exp_avg`).
fn optimizer_moment(name: &str) -> Option<&'static str> {
    let last = name.rsplit('.').next()?;
    OPTIMIZER_MOMENTS
        .iter()
        .copied()
        .find(|moment| *moment == last)
}

/// Decides whether a tensor is a weight matrix under `selection`, and its matrix shape.
pub fn classify(named: &NamedTensor, selection: &LayerSelection) -> Verdict {
    if let Some(pattern) = &selection.name_pattern {
        if !pattern.is_match(&named.name) {
            return Verdict::Skipped("name does not match --layers".into());
        }
    }
    if crate::model::adapter::is_magnitude(&named.name) {
        return Verdict::Skipped(
            "DoRA magnitude vector (rescales the rows of the weight it adapts when merged)".into(),
        );
    }
    if let Some(moment) = optimizer_moment(&named.name) {
        return Verdict::Skipped(format!("optimizer state ({moment}), not a weight"));
    }
    if let Some(earlier) = named.tied_to.as_ref().filter(|_| !selection.ww_compat) {
        return Verdict::Skipped(format!(
            "tied to {earlier} (the same weights, analysed once)"
        ));
    }
    if let Some(reason) = named.dtype.skip_reason() {
        return Verdict::Skipped(reason);
    }
    let dims: Vec<usize> = named.shape.iter().map(|&d| d.max(0) as usize).collect();
    let layer_kind = match dims.len() {
        0 => return Verdict::Skipped("scalar".into()),
        1 => return Verdict::Skipped("1-D (bias or normalisation vector)".into()),
        2 => LayerKind::Dense,
        3 => LayerKind::Conv1d,
        4 => LayerKind::Conv2d,
        rank => return Verdict::Skipped(format!("{rank}-D tensors are not analysed")),
    };
    if selection.ww_compat && named.name.rsplit('.').next() != Some("weight") {
        return Verdict::Skipped(
            "not a module's `weight` (WeightWatcher reads only Linear, Conv1d, Conv2d and \
             Embedding weights: no recurrent or attention in_proj weights)"
                .into(),
        );
    }
    if dims.contains(&0) {
        return Verdict::Skipped("empty tensor".into());
    }
    let experts = ExpertLayout::of(&named.name, &named.shape);
    let layer_kind = if experts.is_some() {
        LayerKind::Dense
    } else {
        layer_kind
    };
    let (rows, cols, slices) = match (layer_kind, selection.conv_mode, &experts) {
        (LayerKind::Dense, _, Some(layout)) => (
            dims[1] / layout.parts.len(),
            dims[2],
            layout.experts * layout.parts.len(),
        ),
        (LayerKind::Dense, _, None) => (dims[0], dims[1], 1),
        (LayerKind::Conv1d, ConvMode::WeightWatcher, _) => {
            (*dims.iter().max().unwrap(), *dims.iter().min().unwrap(), 1)
        }
        (_, ConvMode::Slices | ConvMode::WeightWatcher, _) => {
            (dims[0], dims[1], dims[2..].iter().product())
        }
        (_, ConvMode::Reshape, _) => (dims[0], dims[1..].iter().product(), 1),
    };
    let shape = MatrixShape {
        n: rows.max(cols),
        m: rows.min(cols),
        slices,
    };
    // Each expert's matrix is a layer of its own: the limits apply to one of them.
    let limited = MatrixShape {
        slices: if experts.is_some() { 1 } else { slices },
        ..shape
    };
    let matrices = || {
        if experts.is_some() {
            format!("{rows}×{cols} per expert")
        } else if slices > 1 {
            format!("{rows}×{cols} ×{slices} slices")
        } else {
            format!("{rows}×{cols}")
        }
    };
    if limited.num_evals() < selection.min_evals {
        return Verdict::Skipped(format!(
            "{} eigenvalues < minimum {} ({})",
            limited.num_evals(),
            selection.min_evals,
            matrices()
        ));
    }
    if let Some(max_evals) = selection.max_evals.filter(|&max| limited.num_evals() > max) {
        return Verdict::Skipped(format!(
            "{} eigenvalues > maximum {max_evals} ({})",
            limited.num_evals(),
            matrices()
        ));
    }
    if let Some(max_n) = selection.max_n.filter(|&max| limited.n > max) {
        return Verdict::Skipped(format!(
            "N = {} > maximum {max_n} ({})",
            limited.n,
            matrices()
        ));
    }
    Verdict::Weight {
        kind: layer_kind,
        shape,
    }
}

/// The weight layers of `model` under `selection`, and the tensors skipped with their reasons.
///
/// A selection that leaves nothing is an error that says why the tensors were skipped.
pub fn select<'m>(
    model: &'m Model,
    selection: &LayerSelection,
) -> Result<(Vec<WeightLayer<'m>>, Vec<SkippedTensor>)> {
    let mut layers = Vec::new();
    let mut skipped = Vec::new();
    let heads = if selection.split_fused || selection.split_heads {
        AttentionHeads::of_model(model)?
    } else {
        None
    };
    for named in &model.tensors {
        let (kind, shape) = match classify(named, selection) {
            Verdict::Weight { kind, shape } => (kind, shape),
            Verdict::Skipped(reason) => {
                skipped.push(SkippedTensor {
                    name: named.name.clone(),
                    reason,
                });
                continue;
            }
        };
        let whole = WeightLayer {
            name: named.name.clone(),
            kind,
            shape,
            conv_mode: selection.conv_mode,
            tensor: named,
            expert: None,
            rows: None,
        };
        if let Some(layout) = ExpertLayout::of(&named.name, &named.shape) {
            layers.extend(whole.experts(layout));
            continue;
        }
        let role = roles::role_of(&named.name);
        let fused = selection.split_fused && role.is_some_and(|r| r.part == Part::FusedQkv);
        if !fused {
            let heads = match (selection.split_heads, role, heads) {
                (true, Some(role), Some(heads)) if kind == LayerKind::Dense => whole
                    .heads(role.part, heads)
                    .into_iter()
                    .filter(|head| head.shape.num_evals() >= selection.min_evals)
                    .collect(),
                _ => Vec::new(),
            };
            layers.push(whole);
            layers.extend(heads);
            continue;
        }
        match fused::split(&named.name, &named.shape, heads) {
            Ok(split) => layers.extend(whole.parts(split)),
            Err(reason) => {
                skipped.push(SkippedTensor {
                    name: format!("{}[q,k,v]", named.name),
                    reason: format!("not split (analysed as stored): {reason}"),
                });
                layers.push(whole);
            }
        }
    }
    if layers.is_empty() {
        let why = if model.tensors.is_empty() {
            "the file holds no tensors".to_string()
        } else {
            let examples: Vec<String> = skipped
                .iter()
                .take(3)
                .map(|s| format!("{}: {}", s.name, s.reason))
                .collect();
            let tensors = if skipped.len() == 1 {
                "tensor"
            } else {
                "tensors"
            };
            format!(
                "{} {tensors}, all skipped ({})",
                skipped.len(),
                examples.join("; ")
            )
        };
        return Err(Error::NoWeightMatrices(why));
    }
    Ok((layers, skipped))
}

impl WeightLayer<'_> {
    /// The q, k and v layers of this fused projection, as `split` places them.
    fn parts(self, split: fused::FusedSplit) -> impl Iterator<Item = Self> {
        let dim = split.dim;
        split
            .parts
            .into_iter()
            .zip(fused::PART_SUFFIXES)
            .map(move |(indices, suffix)| {
                let mut dims = self.tensor.shape.clone();
                dims[dim] = indices.len() as i64;
                let (rows, cols) = (dims[0].max(0) as usize, dims[1].max(0) as usize);
                WeightLayer {
                    name: format!("{}{suffix}", self.name),
                    shape: MatrixShape {
                        n: rows.max(cols),
                        m: rows.min(cols),
                        slices: 1,
                    },
                    rows: Some((dim, indices)),
                    ..self.clone()
                }
            })
    }

    /// The layer as a stack of matrices, shape [slices, N, M] with N ≥ M, in the stored dtype
    /// (the tensor is read from its file now).
    pub fn matrices(&self) -> Result<Tensor> {
        as_matrices(&self.weight()?, self.kind, self.conv_mode)
    }

    /// One layer per attention head of a query, key or value projection (its rows) or an
    /// output projection (its columns), named `NAME[h3]`: key and value projections have
    /// `kv_heads` heads under grouped-query attention. None for another part, or when the
    /// heads do not divide the matrix.
    fn heads(&self, part: Part, heads: AttentionHeads) -> Vec<Self> {
        let (dim, count) = match part {
            Part::Query => (0, heads.heads),
            Part::Key | Part::Value => (0, heads.kv_heads),
            Part::AttentionOutput => (1, heads.heads),
            _ => return Vec::new(),
        };
        let dims = &self.tensor.shape;
        let (extent, other) = (dims[dim], dims[1 - dim]);
        let width = extent / count.max(1) as i64;
        if count < 2 || width == 0 || width * count as i64 != extent {
            return Vec::new();
        }
        (0..count)
            .map(|head| WeightLayer {
                name: format!("{}[h{head}]", self.name),
                shape: MatrixShape {
                    n: width.max(other) as usize,
                    m: width.min(other) as usize,
                    slices: 1,
                },
                rows: Some((
                    dim,
                    (head as i64 * width..(head as i64 + 1) * width).collect(),
                )),
                ..self.clone()
            })
            .collect()
    }

    /// One layer per expert and part of a 3-D expert tensor, each its expert's slice (and its
    /// half of the rows, for a fused gate-up projection).
    fn experts(self, layout: ExpertLayout) -> impl Iterator<Item = Self> {
        let dims = &self.tensor.shape;
        let (rows, cols) = (dims[1] / layout.parts.len() as i64, dims[2]);
        let shape = MatrixShape {
            n: rows.max(cols) as usize,
            m: rows.min(cols) as usize,
            slices: 1,
        };
        let split = layout.parts.len() > 1;
        (0..layout.experts).flat_map(move |expert| {
            let (layout, this) = (layout.clone(), self.clone());
            layout
                .parts
                .clone()
                .into_iter()
                .enumerate()
                .map(move |(index, part)| WeightLayer {
                    name: layout.layer_name(expert, part),
                    kind: LayerKind::Dense,
                    shape,
                    expert: Some(expert),
                    rows: split.then(|| {
                        (
                            0,
                            (index as i64 * rows..(index as i64 + 1) * rows).collect(),
                        )
                    }),
                    ..this.clone()
                })
        })
    }

    /// The shape of what the layer reads: the stored one, less an expert's first dimension,
    /// with a fused projection's part cut to its rows.
    pub fn stored_shape(&self) -> Vec<i64> {
        let mut shape = self.tensor.shape.clone();
        if self.expert.is_some() {
            shape.remove(0);
        }
        if let Some((dim, indices)) = &self.rows {
            shape[*dim] = indices.len() as i64;
        }
        shape
    }

    /// The layer's weight as stored (its rows, for a part of a fused projection; its slice, for
    /// an expert), read from its file now.
    pub fn weight(&self) -> Result<Tensor> {
        let tensor = match self.expert {
            Some(expert) => self.tensor.load_slice(expert)?,
            None => self.tensor.load()?,
        };
        Ok(match &self.rows {
            Some((dim, indices)) => {
                tensor.f_index_select(*dim as i64, &Tensor::from_slice(indices))?
            }
            None => tensor,
        })
    }
}

/// A weight tensor of `kind` as a stack of matrices [slices, N, M], N ≥ M: the one place that
/// decides how convolutions become matrices. The exception is a Conv1d read as
/// [`ConvMode::WeightWatcher`]: its out matrices of max(in, k) × min(in, k), of whose pooled
/// spectrum only the largest [`MatrixShape::m`] values are kept.
pub fn as_matrices(t: &Tensor, kind: LayerKind, conv_mode: ConvMode) -> Result<Tensor> {
    let stacked = match (kind, conv_mode) {
        (LayerKind::Dense, _) => t.f_unsqueeze(0)?,
        (LayerKind::Conv1d, ConvMode::Slices) => t.f_permute([2, 0, 1])?,
        (LayerKind::Conv1d, ConvMode::WeightWatcher) => t.shallow_clone(),
        (LayerKind::Conv2d, ConvMode::Slices | ConvMode::WeightWatcher) => {
            let size = t.size();
            t.f_permute([2, 3, 0, 1])?
                .f_reshape([size[2] * size[3], size[0], size[1]])?
        }
        (_, ConvMode::Reshape) => t.f_reshape([1, t.size()[0], -1])?,
    };
    let rows = stacked.size()[1];
    let cols = stacked.size()[2];
    Ok(if rows < cols {
        stacked.f_transpose(1, 2)?
    } else {
        stacked
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn named(name: &str, dims: &[i64]) -> NamedTensor {
        NamedTensor::in_memory(name, Tensor::zeros(dims, (Kind::Float, tch::Device::Cpu)))
    }

    #[test]
    fn classifies_by_rank_and_orients_rows_first() {
        let sel = LayerSelection::default();
        let moment = classify(&named("optimizer.state.0.exp_avg_sq", &[10, 300]), &sel);
        assert_eq!(
            moment,
            Verdict::Skipped("optimizer state (exp_avg_sq), not a weight".into())
        );
        let dense = classify(&named("fc.weight", &[10, 300]), &sel);
        assert_eq!(
            dense,
            Verdict::Weight {
                kind: LayerKind::Dense,
                shape: MatrixShape {
                    n: 300,
                    m: 10,
                    slices: 1
                }
            }
        );
        let conv = classify(&named("conv.weight", &[64, 3, 5, 5]), &sel);
        assert_eq!(
            conv,
            Verdict::Weight {
                kind: LayerKind::Conv2d,
                shape: MatrixShape {
                    n: 64,
                    m: 3,
                    slices: 25
                }
            }
        );
        let reshape = LayerSelection {
            conv_mode: ConvMode::Reshape,
            ..sel.clone()
        };
        let conv = classify(&named("conv.weight", &[64, 3, 5, 5]), &reshape);
        assert_eq!(
            conv,
            Verdict::Weight {
                kind: LayerKind::Conv2d,
                shape: MatrixShape {
                    n: 75,
                    m: 64,
                    slices: 1
                }
            }
        );
        assert!(matches!(
            classify(&named("bias", &[10]), &sel),
            Verdict::Skipped(_)
        ));
        assert!(matches!(
            classify(&named("row", &[1, 300]), &sel),
            Verdict::Skipped(_)
        ));
        assert!(matches!(
            classify(&named("empty", &[0, 30]), &sel),
            Verdict::Skipped(_)
        ));
    }

    #[test]
    fn slices_are_the_kernel_positions() {
        let t =
            Tensor::arange(2 * 3 * 2 * 2, (Kind::Double, tch::Device::Cpu)).reshape([2, 3, 2, 2]);
        let named = NamedTensor::in_memory("w", t.shallow_clone());
        let layer = WeightLayer {
            name: "w".into(),
            kind: LayerKind::Conv2d,
            shape: MatrixShape {
                n: 3,
                m: 2,
                slices: 4,
            },
            conv_mode: ConvMode::Slices,
            tensor: &named,
            expert: None,
            rows: None,
        };
        let m = layer.matrices().unwrap();
        assert_eq!(m.size(), vec![4, 3, 2]);
        // slice (i=0, j=1) is W[:, :, 0, 1], transposed to in × out
        let expected = t.select(2, 0).select(2, 1).transpose(0, 1);
        assert!(m.get(1).equal(&expected));
    }
}
