//! Decisions from α: per-layer pruning ratios (AlphaPruning, Lu et al. 2024), learning rates
//! (TempBalance, Zhou et al. 2023) and LoRA experts per block (AlphaLoRA, Qing et al. 2024), as
//! pure functions of an [`Analysis`] — the command line, Python and the training plugins share
//! them. Each mapping is the reference code's, quirks included and named where they are.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::analysis::{Analysis, AnalysisRequest, LayerReport};
use crate::error::{Error, Result};
use crate::model::roles::Part;
use crate::option_names::{option_names, serde_as_text};
use crate::report::{format_number, table::Table, Render};
use crate::stats::heavy_tail::estimator::Estimator;

/// A decision to take from α, with its parameters: in JSON (Python's form) an object such as
/// `{"decision": "sparsity", "target": 0.7, "epsilon": 0.3, "block_wise": false}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decision {
    /// AlphaPruning's per-layer sparsity: ratios mapped linearly from [α_min, α_max] to
    /// [1 − ε, 1 + ε] and rescaled so that the parameter-weighted mean is `target`; a higher α
    /// (a less trained layer) is pruned more.
    Sparsity {
        /// The model's overall sparsity, in (0, 1).
        target: f64,
        /// Half-width ε of the ratios' range before rescaling, in [0, 1).
        epsilon: f64,
        /// One α per transformer block (the mean of its layers'), AlphaPruning's default.
        block_wise: bool,
    },
    /// TempBalance's per-layer learning rates; the first and last layers, and layers of fewer
    /// than 50 eigenvalues, keep `base`.
    LearningRate {
        /// The untuned learning rate η.
        base: f64,
        /// How α becomes a rate.
        map: LrMap,
    },
    /// AlphaLoRA's LoRA experts per transformer block: n_l = round(T·ᾱ_l^β / Σ ᾱ^β), the
    /// rounding repaired to hit T.
    LoraExperts {
        /// T, the experts over all blocks.
        total: usize,
        /// The exponent β.
        beta: f64,
    },
}

/// TempBalance's maps from α to learning rate (`get_layer_temps`), η the base rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LrMap {
    /// Linear from [α_min, α_max] to [0.5·η, 1.5·η] (`tb_linear_map`).
    #[default]
    Linear,
    /// √α / Σ√α · n · η (`tb_sqrt`).
    Sqrt,
    /// log₂α / Σ log₂α · n · η (`tb_log2`).
    Log2,
    /// By rank: the j-th smallest α gets η·(0.5 + j/n) (`tb_step`).
    Step,
}

option_names!(LrMap, "learning-rate map", {
    Linear => "linear",
    Sqrt => "sqrt",
    Log2 => "log2",
    Step => "step",
});

serde_as_text!(LrMap);

/// TempBalance's learning-rate range, as multiples of η.
const LR_RANGE: (f64, f64) = (0.5, 1.5);
/// TempBalance leaves layers with fewer eigenvalues than this at η (`eigs_thresh`).
const LR_MIN_EIGENVALUES: usize = 50;

/// One layer's (or, for LoRA experts, one block's) share of the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// The layer, or `block N`.
    pub name: String,
    /// Its transformer block, if any.
    pub block: Option<usize>,
    /// The α the decision read (a block's mean for block-wise decisions); `None` when the
    /// layer's fit failed, and it is then given the mean α of the others.
    pub alpha: Option<f64>,
    /// Its parameters (a block's: all of its layers').
    pub params: u64,
    /// The sparsity ratio, learning rate or number of experts.
    pub value: f64,
    /// Whether α set the value (false: a learning rate left at η).
    pub tuned: bool,
}

/// A decision taken from one model's analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    /// The model file.
    pub model: String,
    /// The estimator the α came from.
    pub estimator: Estimator,
    /// The decision and its parameters.
    #[serde(flatten)]
    pub decision: Decision,
    /// Layer by layer (block by block for LoRA experts), in the model's order.
    pub shares: Vec<Share>,
    /// The same as `{name: value}`, as the reference scripts read it.
    pub values: Map<String, Value>,
}

impl Decision {
    /// The estimator its reference reads α with: TempBalance's median Hill estimate for
    /// learning rates, the xmin-peak fit of AlphaPruning and AlphaLoRA otherwise.
    pub fn reference_estimator(&self) -> Estimator {
        match self {
            Self::LearningRate { .. } => Estimator::HillMedian,
            Self::Sparsity { .. } | Self::LoraExperts { .. } => Estimator::AlphaPeak,
        }
    }

    /// `request` with what the decision's reference analyses with where nothing was given: its
    /// estimator, and every layer counted (`min_evals` 1), since the references act on every
    /// layer of theirs (TempBalance's first and last layers are its first and last, however
    /// small).
    pub fn complete(&self, request: &mut AnalysisRequest) {
        request.estimator.get_or_insert(self.reference_estimator());
        request.selection.min_evals.get_or_insert(1);
    }

    /// The decision's parameters, checked.
    pub(crate) fn check(&self) -> Result<()> {
        let refuse = |name: &str, why: &str| Err(Error::parameter(name, why.to_string()));
        match *self {
            Self::Sparsity {
                target, epsilon, ..
            } => {
                if !(target > 0.0 && target < 1.0) {
                    return refuse("target", "a sparsity strictly between 0 and 1");
                }
                if !(0.0..1.0).contains(&epsilon) {
                    return refuse("epsilon", "ε in [0, 1)");
                }
            }
            Self::LearningRate { base, .. } => {
                if !(base > 0.0 && base.is_finite()) {
                    return refuse("base", "a positive learning rate");
                }
            }
            Self::LoraExperts { total, beta } => {
                if total == 0 {
                    return refuse("total", "at least one expert");
                }
                if !beta.is_finite() {
                    return refuse("beta", "a finite exponent");
                }
            }
        }
        Ok(())
    }
}

/// Takes `decision` from `analysis` ([`allocate_layers`] over its layers).
pub fn allocate(analysis: &Analysis, decision: &Decision) -> Result<Allocation> {
    let estimator = analysis.settings.estimator.unwrap_or_default();
    allocate_layers(&analysis.model, estimator, &analysis.layers, decision)
}

/// Takes `decision` from the layer records of `model`, their α by `estimator`: the layers it
/// acts on and their values. Learning rates go to every layer but embeddings; sparsity and
/// experts to the transformer blocks' layers when the model has blocks, else to every layer;
/// attention heads (`--split-heads`) to none.
pub fn allocate_layers<'a>(
    model: &str,
    estimator: Estimator,
    records: impl IntoIterator<Item = &'a LayerReport>,
    decision: &Decision,
) -> Result<Allocation> {
    let records: Vec<&LayerReport> = records.into_iter().collect();
    decision.check()?;
    // Learning rates go to every trained matrix (TempBalance's Conv2d and Linear layers, not
    // embeddings); pruning ratios and experts to the transformer blocks' layers when there are
    // blocks (AlphaPruning's and AlphaLoRA's decoder layers).
    let blocked = records.iter().any(|l| l.block.is_some());
    let learning_rate = matches!(decision, Decision::LearningRate { .. });
    let layers: Vec<&LayerReport> = records
        .into_iter()
        .filter(|l| l.head.is_none())
        .filter(|l| {
            if learning_rate {
                l.role != Some(Part::Embedding)
            } else {
                l.block.is_some() || !blocked
            }
        })
        .collect();
    if layers.is_empty() {
        return Err(Error::NoWeightMatrices(format!(
            "{model}: no analysed layer to allocate over"
        )));
    }
    let alphas: Vec<Option<f64>> = layers
        .iter()
        .map(|l| l.power_law.as_ref().map(|fit| fit.alpha))
        .collect();
    let params: Vec<u64> = layers
        .iter()
        .map(|l| (l.n * l.m * l.rf.max(1)) as u64)
        .collect();
    let shares: Vec<Share> = match *decision {
        Decision::Sparsity {
            target,
            epsilon,
            block_wise,
        } => {
            let mut scores = filled(&alphas);
            if block_wise {
                scores = block_means(&layers, &scores);
            }
            let weights: Vec<f64> = params.iter().map(|&p| p as f64).collect();
            let ratios = sparsity_ratios(&scores, &weights, target, epsilon);
            if let Some((i, ratio)) = ratios.iter().enumerate().find(|(_, &r)| r >= 1.0) {
                return Err(Error::parameter(
                    "target",
                    format!(
                        "{} would be pruned by {:.1} % at target {target} and ε {epsilon}; \
                         lower ε or the target",
                        layers[i].name,
                        ratio * 100.0
                    ),
                ));
            }
            layer_shares(&layers, &alphas, block_wise.then_some(&scores), &params)
                .zip(ratios)
                .map(|(share, value)| Share { value, ..share })
                .collect()
        }
        Decision::LearningRate { base, map } => {
            let last = layers.len() - 1;
            let tuned: Vec<usize> = (0..layers.len())
                .filter(|&i| {
                    i != 0 && i != last && layers[i].m * layers[i].rf.max(1) >= LR_MIN_EIGENVALUES
                })
                .collect();
            let scores = filled(&alphas);
            let picked: Vec<f64> = tuned.iter().map(|&i| scores[i]).collect();
            let rates = learning_rates(&picked, base, map);
            let mut values = vec![base; layers.len()];
            for (&i, rate) in tuned.iter().zip(rates) {
                values[i] = rate;
            }
            layer_shares(&layers, &alphas, None, &params)
                .enumerate()
                .map(|(i, share)| Share {
                    value: values[i],
                    tuned: tuned.contains(&i),
                    ..share
                })
                .collect()
        }
        Decision::LoraExperts { total, beta } => {
            let blocks = blocks_of(&layers);
            if blocks.is_empty() {
                return Err(Error::NoWeightMatrices(format!(
                    "{model}: no transformer blocks, so no LoRA experts per block"
                )));
            }
            let scores = filled(&alphas);
            let means: Vec<f64> = blocks
                .iter()
                .map(|(_, members)| mean(members.iter().map(|&i| scores[i])))
                .collect();
            let experts = lora_experts(&means, total, beta);
            blocks
                .iter()
                .zip(means.iter().zip(experts))
                .map(|((block, members), (&alpha, count))| Share {
                    name: format!("block {block}"),
                    block: Some(*block),
                    alpha: Some(alpha),
                    params: members.iter().map(|&i| params[i]).sum(),
                    value: count as f64,
                    tuned: true,
                })
                .collect()
        }
    };
    let values = shares
        .iter()
        .map(|s| (s.name.clone(), Value::from(s.value)))
        .collect();
    Ok(Allocation {
        model: model.to_string(),
        estimator,
        decision: decision.clone(),
        shares,
        values,
    })
}

/// Each layer's share with its α (or its block's mean) and parameters; values filled later.
fn layer_shares<'a>(
    layers: &'a [&LayerReport],
    alphas: &'a [Option<f64>],
    block_scores: Option<&'a Vec<f64>>,
    params: &'a [u64],
) -> impl Iterator<Item = Share> + 'a {
    layers.iter().enumerate().map(move |(i, layer)| Share {
        name: layer.name.clone(),
        block: layer.block,
        alpha: match block_scores {
            Some(scores) => Some(scores[i]),
            None => alphas[i],
        },
        params: params[i],
        value: f64::NAN,
        tuned: true,
    })
}

/// The α of each layer, a failed fit given the mean of the others (the middle of the range).
fn filled(alphas: &[Option<f64>]) -> Vec<f64> {
    let known = mean(alphas.iter().flatten().copied());
    alphas.iter().map(|a| a.unwrap_or(known)).collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// The transformer blocks in order, each with the indices of its layers.
fn blocks_of(layers: &[&LayerReport]) -> Vec<(usize, Vec<usize>)> {
    let mut blocks: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let Some(block) = layer.block else { continue };
        match blocks.iter_mut().find(|(b, _)| *b == block) {
            Some((_, members)) => members.push(i),
            None => blocks.push((block, vec![i])),
        }
    }
    blocks
}

/// Each layer's score replaced by its block's mean (a layer outside blocks keeps its own).
fn block_means(layers: &[&LayerReport], scores: &[f64]) -> Vec<f64> {
    let blocks = blocks_of(layers);
    let mut means = scores.to_vec();
    for (_, members) in &blocks {
        let block_mean = mean(members.iter().map(|&i| scores[i]));
        for &i in members {
            means[i] = block_mean;
        }
    }
    means
}

/// AlphaPruning's `ww_sparsity`: rᵢ = ((sᵢ − s_min)/(s_max − s_min))·2ε + 1 − ε, then every rᵢ
/// times target·Σp / Σ(p·r). Where every score is equal (the reference divides by zero) every
/// ratio is the target.
pub fn sparsity_ratios(scores: &[f64], params: &[f64], target: f64, epsilon: f64) -> Vec<f64> {
    let (lo, hi) = range(scores);
    let ratios: Vec<f64> = scores
        .iter()
        .map(|&s| {
            if hi > lo {
                (s - lo) / (hi - lo) * (2.0 * epsilon) + (1.0 - epsilon)
            } else {
                1.0
            }
        })
        .collect();
    let total: f64 = params.iter().sum();
    let weighted: f64 = params.iter().zip(&ratios).map(|(p, r)| p * r).sum();
    let scaler = total * target / weighted;
    ratios.iter().map(|r| r * scaler).collect()
}

/// TempBalance's `get_layer_temps` over the tuned layers' scores. The linear map is
/// `numpy.interp` onto [0.5·η, 1.5·η]; where every score is equal, every rate is η.
pub fn learning_rates(scores: &[f64], base: f64, map: LrMap) -> Vec<f64> {
    let n = scores.len() as f64;
    let (lo, hi) = range(scores);
    let (low, high) = (LR_RANGE.0 * base, LR_RANGE.1 * base);
    match map {
        LrMap::Linear => scores
            .iter()
            .map(|&s| {
                if hi > lo {
                    low + (s - lo) * (high - low) / (hi - lo)
                } else {
                    base
                }
            })
            .collect(),
        LrMap::Sqrt | LrMap::Log2 => {
            let transform = |s: f64| {
                if map == LrMap::Sqrt {
                    s.sqrt()
                } else {
                    s.log2()
                }
            };
            let sum: f64 = scores.iter().map(|&s| transform(s)).sum();
            scores
                .iter()
                .map(|&s| transform(s) / sum * n * base)
                .collect()
        }
        LrMap::Step => {
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
            let mut rates = vec![base; scores.len()];
            for (rank, &i) in order.iter().enumerate() {
                rates[i] = base * (LR_RANGE.0 + (LR_RANGE.1 - LR_RANGE.0) * rank as f64 / n);
            }
            rates
        }
    }
}

/// AlphaLoRA's `exponential_scaling`: nᵢ = round(T·sᵢ^β / Σ s^β) (half to even, as numpy), then
/// while Σn ≠ T one more expert to the first argmin of (sᵢ^β − nᵢ), or one fewer from the first
/// argmax — the reference compares the unnormalised powers with the counts, and so does this.
pub fn lora_experts(scores: &[f64], total: usize, beta: f64) -> Vec<usize> {
    let powers: Vec<f64> = scores.iter().map(|s| s.powf(beta)).collect();
    let sum: f64 = powers.iter().sum();
    let mut counts: Vec<i64> = powers
        .iter()
        .map(|p| (p / sum * total as f64).round_ties_even() as i64)
        .collect();
    let target = total as i64;
    loop {
        let difference = target - counts.iter().sum::<i64>();
        if difference == 0 {
            break;
        }
        let gaps = powers.iter().zip(&counts).map(|(p, &c)| p - c as f64);
        let pick = if difference > 0 {
            gaps.enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |best, (i, g)| if g < best.1 { (i, g) } else { best },
                )
                .0
        } else {
            gaps.enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, g)| {
                    if g > best.1 {
                        (i, g)
                    } else {
                        best
                    }
                })
                .0
        };
        counts[pick] += difference.signum();
    }
    counts.into_iter().map(|c| c.max(0) as usize).collect()
}

fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

impl Render for Allocation {
    fn table(&self) -> String {
        let what = match &self.decision {
            Decision::Sparsity {
                target,
                epsilon,
                block_wise,
            } => format!(
                "sparsity ratios for a target of {target} (ε {epsilon}{})",
                if *block_wise { ", block-wise α" } else { "" }
            ),
            Decision::LearningRate { base, map } => {
                format!("learning rates around {base} ({map} map; `fixed`: left at the base)")
            }
            Decision::LoraExperts { total, beta } => {
                format!("LoRA experts per block, {total} in all (β {beta})")
            }
        };
        let value_header = match &self.decision {
            Decision::Sparsity { .. } => "sparsity",
            Decision::LearningRate { .. } => "learning_rate",
            Decision::LoraExperts { .. } => "experts",
        };
        let mut table = Table::new(["name", "alpha", "params", value_header]);
        for share in &self.shares {
            let value = match &self.decision {
                Decision::LoraExperts { .. } => format!("{}", share.value),
                _ if !share.tuned => format!("{} fixed", format_number(share.value)),
                _ => format_number(share.value),
            };
            table.push(vec![
                share.name.clone(),
                share.alpha.map_or("fit failed".into(), format_number),
                share.params.to_string(),
                value,
            ]);
        }
        format!(
            "{}: {what}, α by {}\n\n{}",
            self.model,
            self.estimator,
            table.render()
        )
    }

    fn csv_rows(&self) -> Result<Vec<Value>> {
        self.shares
            .iter()
            .map(|share| {
                serde_json::to_value(share).map_err(|err| Error::serialize("an allocation", err))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparsity_ratios_average_to_the_target() {
        let ratios = sparsity_ratios(&[2.0, 3.0, 4.0], &[1.0, 2.0, 1.0], 0.5, 0.3);
        let mean = (ratios[0] + 2.0 * ratios[1] + ratios[2]) / 4.0;
        assert!((mean - 0.5).abs() < 1e-15);
        assert!(ratios[0] < ratios[1] && ratios[1] < ratios[2]);
        let equal = sparsity_ratios(&[3.0, 3.0], &[1.0, 5.0], 0.7, 0.3);
        assert!(equal.iter().all(|r| (r - 0.7).abs() < 1e-15), "{equal:?}");
    }

    #[test]
    fn learning_rate_maps() {
        let linear = learning_rates(&[2.0, 4.0, 3.0], 1.0, LrMap::Linear);
        assert_eq!(linear, [0.5, 1.5, 1.0]);
        let step = learning_rates(&[2.0, 4.0, 3.0], 1.0, LrMap::Step);
        assert_eq!(step, [0.5, 0.5 + 2.0 / 3.0, 0.5 + 1.0 / 3.0]);
        let sqrt = learning_rates(&[4.0, 9.0], 1.0, LrMap::Sqrt);
        assert!((sqrt[0] - 0.8).abs() < 1e-15 && (sqrt[1] - 1.2).abs() < 1e-15);
    }

    #[test]
    fn lora_experts_hit_the_total() {
        for total in [1, 7, 160] {
            let counts = lora_experts(&[2.1, 3.7, 2.9, 5.0], total, 2.5);
            assert_eq!(counts.iter().sum::<usize>(), total);
        }
    }
}
