//! Where a weight sits in a transformer, read from its name: the block (the encoder or decoder
//! layer it belongs to) and its part (attention query, key, value, output or a fused
//! projection; MLP gate, up or down projection; embedding; head). The naming schemes of
//! Hugging Face's BERT, GPT-2, GPT-NeoX, Llama/Mistral, OPT, ViT and T5, Meta's Llama and
//! PyTorch's `nn.TransformerEncoder` are recognised, and llama.cpp's GGUF names
//! (`blk.N.attn_q`, `ffn_down`, `token_embd`); other names have no role.
use serde::{Deserialize, Serialize};

use crate::option_names::option_names;

/// A weight's part of a transformer block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Token, position or type embeddings.
    Embedding,
    /// The attention's query projection.
    Query,
    /// The attention's key projection.
    Key,
    /// The attention's value projection.
    Value,
    /// Query, key and value in one matrix (GPT-2's `c_attn`, `qkv_proj`, `query_key_value`,
    /// `Wqkv`, `in_proj_weight`).
    FusedQkv,
    /// The attention's output projection.
    AttentionOutput,
    /// The MLP's gate projection (gated MLPs: Llama's `gate_proj`, `w1`).
    MlpGate,
    /// The MLP's up projection (with the gate in one matrix: Phi-3's `gate_up_proj`).
    MlpUp,
    /// The MLP's down projection.
    MlpDown,
    /// The output head (`lm_head`, a classifier).
    Head,
}

option_names!(Part, "part", {
    Embedding => "embedding",
    Query => "query",
    Key => "key",
    Value => "value",
    FusedQkv => "fused_qkv",
    AttentionOutput => "attention_output",
    MlpGate => "mlp_gate",
    MlpUp => "mlp_up",
    MlpDown => "mlp_down",
    Head => "head",
});

/// The two halves of a transformer block, as the per-block summary compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sublayer {
    /// Query, key, value and output projections.
    Attention,
    /// Gate, up and down projections.
    Mlp,
}

impl Part {
    /// The half of a block this part belongs to; `None` for embeddings and heads.
    pub fn sublayer(self) -> Option<Sublayer> {
        match self {
            Self::Query | Self::Key | Self::Value | Self::FusedQkv | Self::AttentionOutput => {
                Some(Sublayer::Attention)
            }
            Self::MlpGate | Self::MlpUp | Self::MlpDown => Some(Sublayer::Mlp),
            Self::Embedding | Self::Head => None,
        }
    }
}

/// A weight's place in a transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// The block's number (`layers.3`, `h.3`, `layer.3`, `blocks.3`, …); `None` outside blocks.
    pub block: Option<usize>,
    /// What the weight does.
    pub part: Part,
    /// The expert, for one expert of a mixture-of-experts block (`…experts.7.up`).
    pub expert: Option<usize>,
    /// The attention head, for one head's block of a projection (`…q_proj.weight[h3]`).
    pub head: Option<usize>,
}

/// Segments that introduce a block number.
const BLOCK_LISTS: [&str; 8] = [
    "layers", "layer", "h", "blocks", "block", "encoder", "decoder", "blk",
];

/// The role of the tensor called `name`, when its name follows a known transformer scheme.
pub fn role_of(name: &str) -> Option<Role> {
    if let Some((base, head)) = name
        .strip_suffix(']')
        .and_then(|rest| rest.rsplit_once("[h"))
        .and_then(|(base, head)| Some((base, head.parse::<usize>().ok()?)))
    {
        return role_of(base).map(|role| Role {
            head: Some(head),
            ..role
        });
    }
    if let Some((base, part)) = [
        ("[q]", Part::Query),
        ("[k]", Part::Key),
        ("[v]", Part::Value),
    ]
    .into_iter()
    .find_map(|(suffix, part)| Some((name.strip_suffix(suffix)?, part)))
    {
        return role_of(base).map(|role| Role { part, ..role });
    }
    let lower = name.to_ascii_lowercase();
    let mut segments: Vec<&str> = lower.split('.').collect();
    if let Some(role) = expert_role(&segments) {
        return Some(role);
    }
    match segments.last() {
        Some(&"weight") => {
            segments.pop();
        }
        Some(&"in_proj_weight") => {}
        _ => return None,
    }
    let block = block_of(&segments);
    let last = *segments.last()?;
    let parent = segments.len().checked_sub(2).map(|i| segments[i]);
    let within = |words: &[&str]| {
        segments[..segments.len() - 1]
            .iter()
            .any(|s| words.iter().any(|w| s.contains(w)))
    };
    let in_attention = within(&["attn", "attention"]);
    let in_mlp = within(&[
        "mlp",
        "feed_forward",
        "ffn",
        "intermediate",
        "densereludense",
    ]);
    let part = match last {
        "c_attn" | "qkv_proj" | "query_key_value" | "wqkv" | "qkv" | "in_proj_weight"
        | "attn_qkv" => Part::FusedQkv,
        "attn_q" => Part::Query,
        "attn_k" => Part::Key,
        "attn_v" => Part::Value,
        "attn_output" => Part::AttentionOutput,
        "ffn_gate" => Part::MlpGate,
        "ffn_up" => Part::MlpUp,
        "ffn_down" => Part::MlpDown,
        "q_proj" | "query" | "wq" | "to_q" | "q" if in_attention || last != "q" => Part::Query,
        "k_proj" | "key" | "wk" | "to_k" | "k" if in_attention || last != "k" => Part::Key,
        "v_proj" | "value" | "wv" | "to_v" | "v" if in_attention || last != "v" => Part::Value,
        "o_proj" | "out_proj" | "wo" | "dense" | "o" | "to_out" | "c_proj" if in_attention => {
            Part::AttentionOutput
        }
        "0" if parent == Some("to_out") => Part::AttentionOutput,
        "gate_proj" | "w1" | "wi_0" => Part::MlpGate,
        "up_proj" | "w3" | "fc1" | "c_fc" | "dense_h_to_4h" | "fc_in" | "wi" | "wi_1"
        | "linear1" | "gate_up_proj" => Part::MlpUp,
        "dense" if parent == Some("intermediate") => Part::MlpUp,
        "down_proj" | "w2" | "fc2" | "dense_4h_to_h" | "fc_out" | "linear2" => Part::MlpDown,
        "c_proj" | "wo" if in_mlp => Part::MlpDown,
        "dense" if parent == Some("output") && block.is_some() => Part::MlpDown,
        "embed_tokens"
        | "wte"
        | "wpe"
        | "word_embeddings"
        | "position_embeddings"
        | "token_type_embeddings"
        | "tok_embeddings"
        | "embed_positions"
        | "embed_in"
        | "shared"
        | "token_embd"
        | "position_embd"
        | "token_types" => Part::Embedding,
        "lm_head" | "embed_out" | "output" | "classifier" | "head" if block.is_none() => Part::Head,
        _ => return None,
    };
    // A plain MLP's fc1 or a CNN's layers are not a transformer's: parts of a block need one.
    if part.sublayer().is_some() && block.is_none() {
        return None;
    }
    // Experts stored one matrix each (Mixtral's `experts.3.w1`, Qwen-MoE's `experts.3.up_proj`).
    let expert = segments.windows(2).find_map(|pair| {
        (pair[0] == "experts")
            .then(|| pair[1].parse::<usize>().ok())
            .flatten()
    });
    Some(Role {
        block,
        part,
        expert,
        head: None,
    })
}

/// The block number in `segments`, after one of [`BLOCK_LISTS`].
fn block_of(segments: &[&str]) -> Option<usize> {
    segments.windows(2).find_map(|pair| {
        BLOCK_LISTS
            .contains(&pair[0])
            .then(|| pair[1].parse::<usize>().ok())
            .flatten()
    })
}

/// One expert's projection of a mixture-of-experts block, as [`crate::model::experts`]
/// names it: `…experts.7.gate`, `.up`, `.down`.
fn expert_role(segments: &[&str]) -> Option<Role> {
    let [.., "experts", expert, part] = segments else {
        return None;
    };
    let part = match *part {
        "gate" => Part::MlpGate,
        "up" => Part::MlpUp,
        "down" => Part::MlpDown,
        _ => return None,
    };
    Some(Role {
        block: block_of(segments),
        part,
        expert: Some(expert.parse().ok()?),
        head: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Option<(Option<usize>, Part)> {
        role_of(name).map(|r| (r.block, r.part))
    }

    #[test]
    fn the_common_schemes_are_read() {
        use Part::*;
        let cases = [
            // BERT (and MiniLM, RoBERTa)
            ("bert.embeddings.word_embeddings.weight", None, Embedding),
            (
                "encoder.layer.3.attention.self.query.weight",
                Some(3),
                Query,
            ),
            ("encoder.layer.3.attention.self.key.weight", Some(3), Key),
            (
                "encoder.layer.3.attention.self.value.weight",
                Some(3),
                Value,
            ),
            (
                "encoder.layer.3.attention.output.dense.weight",
                Some(3),
                AttentionOutput,
            ),
            ("encoder.layer.3.intermediate.dense.weight", Some(3), MlpUp),
            ("encoder.layer.3.output.dense.weight", Some(3), MlpDown),
            // GPT-2: Conv1D layouts, fused attention
            ("transformer.wte.weight", None, Embedding),
            ("transformer.h.11.attn.c_attn.weight", Some(11), FusedQkv),
            (
                "transformer.h.11.attn.c_proj.weight",
                Some(11),
                AttentionOutput,
            ),
            ("transformer.h.11.mlp.c_fc.weight", Some(11), MlpUp),
            ("transformer.h.11.mlp.c_proj.weight", Some(11), MlpDown),
            ("lm_head.weight", None, Head),
            // Llama, Mistral, Qwen
            ("model.embed_tokens.weight", None, Embedding),
            ("model.layers.0.self_attn.q_proj.weight", Some(0), Query),
            (
                "model.layers.0.self_attn.o_proj.weight",
                Some(0),
                AttentionOutput,
            ),
            ("model.layers.0.mlp.gate_proj.weight", Some(0), MlpGate),
            ("model.layers.0.mlp.up_proj.weight", Some(0), MlpUp),
            ("model.layers.0.mlp.gate_up_proj.weight", Some(0), MlpUp),
            ("model.layers.0.mlp.down_proj.weight", Some(0), MlpDown),
            // Meta's Llama
            ("layers.5.attention.wq.weight", Some(5), Query),
            ("layers.5.attention.wo.weight", Some(5), AttentionOutput),
            ("layers.5.feed_forward.w1.weight", Some(5), MlpGate),
            ("layers.5.feed_forward.w2.weight", Some(5), MlpDown),
            ("layers.5.feed_forward.w3.weight", Some(5), MlpUp),
            ("output.weight", None, Head),
            // llama.cpp's GGUF names
            ("token_embd.weight", None, Embedding),
            ("blk.7.attn_q.weight", Some(7), Query),
            ("blk.7.attn_k.weight", Some(7), Key),
            ("blk.7.attn_v.weight", Some(7), Value),
            ("blk.7.attn_qkv.weight", Some(7), FusedQkv),
            ("blk.7.attn_output.weight", Some(7), AttentionOutput),
            ("blk.7.ffn_gate.weight", Some(7), MlpGate),
            ("blk.7.ffn_up.weight", Some(7), MlpUp),
            ("blk.7.ffn_down.weight", Some(7), MlpDown),
            // One expert of a mixture-of-experts block
            ("model.layers.2.mlp.experts.5.up", Some(2), MlpUp),
            ("blk.2.experts.5.down", Some(2), MlpDown),
            (
                "model.layers.1.block_sparse_moe.experts.3.w1.weight",
                Some(1),
                MlpGate,
            ),
            // GPT-NeoX, OPT, ViT, nn.MultiheadAttention
            (
                "gpt_neox.layers.2.attention.query_key_value.weight",
                Some(2),
                FusedQkv,
            ),
            (
                "gpt_neox.layers.2.mlp.dense_4h_to_h.weight",
                Some(2),
                MlpDown,
            ),
            ("model.decoder.layers.1.fc1.weight", Some(1), MlpUp),
            ("blocks.4.attn.qkv.weight", Some(4), FusedQkv),
            ("blocks.4.mlp.fc2.weight", Some(4), MlpDown),
            (
                "encoder.layers.0.self_attn.in_proj_weight",
                Some(0),
                FusedQkv,
            ),
            (
                "encoder.layers.0.self_attn.out_proj.weight",
                Some(0),
                AttentionOutput,
            ),
            // T5
            ("shared.weight", None, Embedding),
            (
                "encoder.block.0.layer.0.SelfAttention.q.weight",
                Some(0),
                Query,
            ),
            (
                "encoder.block.0.layer.0.SelfAttention.o.weight",
                Some(0),
                AttentionOutput,
            ),
            (
                "encoder.block.0.layer.1.DenseReluDense.wi.weight",
                Some(0),
                MlpUp,
            ),
            (
                "encoder.block.0.layer.1.DenseReluDense.wo.weight",
                Some(0),
                MlpDown,
            ),
        ];
        for (name, block, part) in cases {
            assert_eq!(role(name), Some((block, part)), "{name}");
        }
    }

    #[test]
    fn experts_are_numbered() {
        for (name, expert) in [
            ("model.layers.2.mlp.experts.5.up", Some(5)),
            (
                "model.layers.1.block_sparse_moe.experts.3.w1.weight",
                Some(3),
            ),
            ("model.layers.1.mlp.up_proj.weight", None),
        ] {
            assert_eq!(role_of(name).unwrap().expert, expert, "{name}");
        }
    }

    #[test]
    fn other_names_have_no_role() {
        for name in [
            "conv1.weight",
            "fc.weight",
            "encoder.layer.3.attention.output.LayerNorm.weight",
            "bert.pooler.dense.weight",
            "features.0.weight",
            "model.layers.0.self_attn.q_proj.bias",
            "layer1.0.conv1.weight",
            "fc1.weight",
            "net.2.weight",
            "blk.7.attn_norm.weight",
        ] {
            assert_eq!(role(name), None, "{name}");
        }
    }
}
