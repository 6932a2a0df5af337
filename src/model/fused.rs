//! Fused query-key-value projections split into q, k and v (`--split-fused`), with the head
//! counts of the checkpoint's `config.json` (grouped-query attention included).
//!
//! Where q, k and v sit in the fused tensor, along its output dimension:
//! - `c_attn` (GPT-2's Conv1D, stored in × out): [q; k; v] along dimension 1, equal parts;
//! - `in_proj_weight` (`nn.MultiheadAttention`), `qkv_proj` (Phi-3), `Wqkv` (MPT), `qkv` (ViT,
//!   timm): [q; k; v] along dimension 0, q of heads·head_dim rows and k, v of kv_heads·head_dim;
//! - `query_key_value`: GPT-NeoX and BLOOM interleave per head, (heads, 3, head_dim); Falcon with
//!   `new_decoder_architecture` groups per key-value head, (kv_heads, heads/kv_heads + 2,
//!   head_dim); older multi-query Falcon keeps [q; k; v].
//!
//! Without a `config.json`, heads = kv_heads (three equal parts; interleaved needs the heads).
use std::path::Path;

use crate::error::Result;

/// Attention head counts read from a checkpoint's `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionHeads {
    /// Query heads.
    pub heads: usize,
    /// Key-value heads (fewer than `heads` under grouped-query attention).
    pub kv_heads: usize,
    /// Falcon's `new_decoder_architecture`: `query_key_value` grouped per key-value head.
    pub grouped: bool,
}

impl AttentionHeads {
    /// The head counts of `config.json` in `dir`, when it has them; an unreadable or malformed
    /// config is an error naming it.
    pub fn from_config_dir(dir: &Path) -> Result<Option<Self>> {
        Ok(crate::model::file::config_json(dir)?
            .as_ref()
            .and_then(Self::from_config))
    }

    /// The head counts of `model`: its `config.json`'s, or a GGUF file's metadata
    /// (`{architecture}.attention.head_count`, `head_count_kv`).
    pub fn of_model(model: &crate::model::Model) -> Result<Option<Self>> {
        if model.format == crate::model::FileFormat::Gguf {
            return Ok(Self::from_gguf(&model.other_entries));
        }
        Ok(model
            .config_dir()
            .map(Self::from_config_dir)
            .transpose()?
            .flatten())
    }

    /// The head counts a GGUF file's metadata gives.
    pub fn from_gguf(metadata: &[crate::model::CheckpointEntry]) -> Option<Self> {
        use crate::model::EntryValue;
        let entry = |key: &str| metadata.iter().find(|e| e.name == key).map(|e| &e.value);
        let Some(EntryValue::Str(arch)) = entry("general.architecture") else {
            return None;
        };
        let count = |key: &str| match entry(&format!("{arch}.attention.{key}")) {
            Some(EntryValue::Int(n)) if *n > 0 => Some(*n as usize),
            _ => None,
        };
        let heads = count("head_count")?;
        let kv_heads = count("head_count_kv").unwrap_or(heads);
        (heads % kv_heads == 0).then_some(Self {
            heads,
            kv_heads,
            grouped: false,
        })
    }

    /// The head counts of a parsed config (its `text_config` for multimodal models).
    pub fn from_config(config: &serde_json::Value) -> Option<Self> {
        let config = config.get("text_config").unwrap_or(config);
        let number = |keys: &[&str]| {
            keys.iter()
                .find_map(|key| config.get(*key)?.as_u64())
                .map(|n| n as usize)
                .filter(|&n| n > 0)
        };
        let heads = number(&["num_attention_heads", "n_head", "num_heads", "n_heads"])?;
        let multi_query = config.get("multi_query").and_then(|v| v.as_bool()) == Some(true);
        let kv_heads = number(&[
            "num_key_value_heads",
            "num_kv_heads",
            "n_head_kv",
            "kv_n_heads",
        ])
        .unwrap_or(if multi_query { 1 } else { heads });
        let grouped = config
            .get("new_decoder_architecture")
            .and_then(|v| v.as_bool())
            == Some(true);
        (heads % kv_heads == 0).then_some(Self {
            heads,
            kv_heads,
            grouped,
        })
    }
}

/// The rows (or columns) of q, k and v in a fused tensor: indices along `dim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FusedSplit {
    /// The dimension they are stacked along.
    pub dim: usize,
    /// Indices of q, k and v along `dim`, in that order.
    pub parts: [Vec<i64>; 3],
}

/// The suffixes that name the parts of a split tensor (`….c_attn.weight[q]`).
pub const PART_SUFFIXES: [&str; 3] = ["[q]", "[k]", "[v]"];

/// How the fused tensor `name` of `shape` splits, or why it cannot.
pub fn split(
    name: &str,
    shape: &[i64],
    heads: Option<AttentionHeads>,
) -> std::result::Result<FusedSplit, String> {
    let lower = name.to_ascii_lowercase();
    let mut segments = lower.rsplit('.');
    let last = match segments.next() {
        Some("weight") => segments.next().unwrap_or_default(),
        Some(other) => other,
        None => "",
    };
    if shape.len() != 2 {
        return Err(format!("a fused projection is 2-D, not {shape:?}"));
    }
    let dim = usize::from(last == "c_attn");
    let rows = shape[dim].max(0) as u128;
    // Counts in u128: head counts come from a file and may be anything up to u64::MAX.
    let (heads, kv_heads, grouped) = heads.map_or((0, 0, false), |h| {
        (h.heads as u128, h.kv_heads as u128, h.grouped)
    });
    if heads > 0 && (kv_heads == 0 || heads % kv_heads != 0) {
        return Err(format!(
            "{heads} query heads do not share {kv_heads} key-value heads"
        ));
    }
    // Index ranges [start, start + len) per part, each list of spans checked to cover `rows`.
    let spans: [Vec<(u128, u128)>; 3] = match last {
        "query_key_value" if heads == 0 => {
            return Err("query_key_value interleaves heads: needs config.json's head counts".into())
        }
        "query_key_value" if kv_heads == heads || grouped => {
            let per_group = heads / kv_heads + 2;
            let head_dim = rows / (kv_heads * per_group);
            if kv_heads * per_group * head_dim != rows || head_dim == 0 {
                return Err(format!(
                    "{rows} fused rows do not divide into {kv_heads} groups of {per_group} heads"
                ));
            }
            let queries = per_group - 2;
            let mut spans: [Vec<(u128, u128)>; 3] = Default::default();
            for group in 0..kv_heads {
                let base = group * per_group * head_dim;
                spans[0].push((base, queries * head_dim));
                spans[1].push((base + queries * head_dim, head_dim));
                spans[2].push((base + (queries + 1) * head_dim, head_dim));
            }
            spans
        }
        "c_attn" | "in_proj_weight" | "qkv_proj" | "wqkv" | "qkv" | "query_key_value" => {
            let (q, kv) = if heads == 0 {
                (rows / 3, rows / 3)
            } else {
                let head_dim = rows / (heads + 2 * kv_heads);
                (heads * head_dim, kv_heads * head_dim)
            };
            if q + 2 * kv != rows || kv == 0 {
                return Err(format!(
                    "{rows} fused rows are not q {q} + k {kv} + v {kv} (check config.json's head counts)"
                ));
            }
            [vec![(0, q)], vec![(q, kv)], vec![(q + kv, kv)]]
        }
        other => return Err(format!("{other} is not a fused projection rmt-torch knows")),
    };
    // Every span lies within `rows`, which came from an i64 shape.
    let parts = spans.map(|spans| {
        spans
            .into_iter()
            .flat_map(|(start, len)| start as i64..(start + len) as i64)
            .collect()
    });
    Ok(FusedSplit { dim, parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(heads: usize, kv_heads: usize, grouped: bool) -> Option<AttentionHeads> {
        Some(AttentionHeads {
            heads,
            kv_heads,
            grouped,
        })
    }

    #[test]
    fn layouts_of_the_known_fused_projections() {
        // GPT-2: in × 3·out, thirds along the columns.
        let gpt2 = split("h.0.attn.c_attn.weight", &[8, 24], None).unwrap();
        assert_eq!(gpt2.dim, 1);
        assert_eq!(gpt2.parts[1], (8..16).collect::<Vec<i64>>());
        // Phi-3 with grouped-query attention: 4 query heads, 2 kv heads of 2 dims.
        let phi = split(
            "layers.0.self_attn.qkv_proj.weight",
            &[16, 8],
            heads(4, 2, false),
        )
        .unwrap();
        assert_eq!(phi.dim, 0);
        assert_eq!(phi.parts.each_ref().map(Vec::len), [8, 4, 4]);
        assert_eq!(phi.parts[2][0], 12);
        // GPT-NeoX: per head (q, k, v) of head_dim 2.
        let neox = split(
            "layers.0.attention.query_key_value.weight",
            &[12, 4],
            heads(2, 2, false),
        )
        .unwrap();
        assert_eq!(neox.parts[0], vec![0, 1, 6, 7]);
        assert_eq!(neox.parts[1], vec![2, 3, 8, 9]);
        assert_eq!(neox.parts[2], vec![4, 5, 10, 11]);
        // Falcon's grouped layout: 4 query heads over 2 kv heads, head_dim 1.
        let falcon = split(
            "h.0.self_attention.query_key_value.weight",
            &[8, 4],
            heads(4, 2, true),
        )
        .unwrap();
        assert_eq!(falcon.parts[0], vec![0, 1, 4, 5]);
        assert_eq!(falcon.parts[1], vec![2, 6]);
        assert_eq!(falcon.parts[2], vec![3, 7]);
        // Multi-query Falcon: [q; k; v].
        let multi = split(
            "h.0.self_attention.query_key_value.weight",
            &[6, 4],
            heads(4, 1, false),
        )
        .unwrap();
        assert_eq!(multi.parts.each_ref().map(Vec::len), [4, 1, 1]);
        assert!(split("h.0.attention.query_key_value.weight", &[12, 4], None).is_err());
        assert!(split("x.qkv_proj.weight", &[10, 4], heads(4, 2, false)).is_err());
        // Head counts a hostile config.json could hold: refused, never an overflow.
        let huge = usize::MAX;
        assert!(split("x.qkv_proj.weight", &[12, 4], heads(huge, huge, false)).is_err());
        assert!(split("x.query_key_value.weight", &[12, 4], heads(huge, 1, true)).is_err());
        assert!(split("x.query_key_value.weight", &[12, 4], heads(4, 0, false)).is_err());
    }

    #[test]
    fn head_counts_from_configs() {
        let llama: serde_json::Value =
            serde_json::json!({"num_attention_heads": 32, "num_key_value_heads": 8});
        assert_eq!(AttentionHeads::from_config(&llama), heads(32, 8, false));
        let falcon = serde_json::json!({"n_head": 71, "multi_query": true});
        assert_eq!(AttentionHeads::from_config(&falcon), heads(71, 1, false));
        let gpt2 = serde_json::json!({"n_head": 12});
        assert_eq!(AttentionHeads::from_config(&gpt2), heads(12, 12, false));
        assert_eq!(AttentionHeads::from_config(&serde_json::json!({})), None);
    }
}
