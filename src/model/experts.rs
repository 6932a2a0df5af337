//! Mixture-of-experts projections stored as one 3-D tensor [experts, out, in] (Hugging Face
//! transformers 5 fuses them: `mlp.experts.gate_up_proj` [E, 2I, H] with the gate's rows
//! first, `mlp.experts.down_proj` [E, H, I]; llama.cpp's GGUF `blk.N.ffn_gate_exps` [E, I, H],
//! `ffn_up_exps`, `ffn_down_exps`). Each expert's matrix is a layer of its own, named
//! `…experts.7.up`, read as that expert's slice alone.

/// How a 3-D expert tensor is cut into layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertLayout {
    /// Experts: the tensor's first dimension.
    pub experts: usize,
    /// The parts of each expert's matrix, along its rows: `gate` and `up` halves of a fused
    /// gate-up projection, or one part.
    pub parts: Vec<&'static str>,
    /// The name before `{expert}.{part}` (`model.layers.0.mlp.experts.`, `blk.0.experts.`).
    pub prefix: String,
}

impl ExpertLayout {
    /// The layout of the tensor `name` of `shape`, when its name marks it as a 3-D expert
    /// tensor whose rows split as its parts need.
    pub fn of(name: &str, shape: &[i64]) -> Option<Self> {
        let [experts, rows, _] = shape else {
            return None;
        };
        let (prefix, parts): (String, &[&'static str]) =
            if let Some(base) = name.strip_suffix(".weight").and_then(gguf_experts) {
                base
            } else {
                let (stem, last) = name.rsplit_once('.')?;
                stem.ends_with("experts").then_some(())?;
                let parts: &[&'static str] = match last {
                    "gate_up_proj" => &["gate", "up"],
                    "gate_proj" => &["gate"],
                    "up_proj" => &["up"],
                    "down_proj" => &["down"],
                    _ => return None,
                };
                (format!("{stem}."), parts)
            };
        (*experts > 0 && rows % parts.len() as i64 == 0).then(|| Self {
            experts: *experts as usize,
            parts: parts.to_vec(),
            prefix,
        })
    }

    /// The layer name of `part` of expert `expert`.
    pub fn layer_name(&self, expert: usize, part: &str) -> String {
        format!("{}{expert}.{part}", self.prefix)
    }
}

/// `blk.N.ffn_gate_exps` and its kin: the prefix `blk.N.experts.` and the parts.
fn gguf_experts(stem: &str) -> Option<(String, &'static [&'static str])> {
    let (block, last) = stem.rsplit_once('.')?;
    let parts: &'static [&'static str] = match last {
        "ffn_gate_up_exps" => &["gate", "up"],
        "ffn_gate_exps" => &["gate"],
        "ffn_up_exps" => &["up"],
        "ffn_down_exps" => &["down"],
        _ => return None,
    };
    Some((format!("{block}.experts."), parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_and_gguf_expert_tensors_are_recognised() {
        let fused = ExpertLayout::of("model.layers.3.mlp.experts.gate_up_proj", &[8, 64, 32]);
        assert_eq!(
            fused,
            Some(ExpertLayout {
                experts: 8,
                parts: vec!["gate", "up"],
                prefix: "model.layers.3.mlp.experts.".into()
            })
        );
        assert_eq!(
            fused.unwrap().layer_name(7, "up"),
            "model.layers.3.mlp.experts.7.up"
        );
        let gguf = ExpertLayout::of("blk.2.ffn_down_exps.weight", &[4, 32, 16]).unwrap();
        assert_eq!(gguf.layer_name(1, "down"), "blk.2.experts.1.down");
        assert_eq!(ExpertLayout::of("conv.weight", &[8, 3, 3]), None);
        assert_eq!(
            ExpertLayout::of("model.layers.3.mlp.experts.gate_up_proj", &[8, 63, 32]),
            None
        );
        assert_eq!(
            ExpertLayout::of("model.layers.3.mlp.experts.down_proj", &[8, 32]),
            None
        );
    }
}
