//! The order a model's tensors are listed in: the file's, unless its writer sorted them by
//! name (safetensors does, so every Hugging Face checkpoint is), which loses the module order
//! and puts `layers.10` before `layers.2` and a block's `attention.output` before its
//! `attention.self.query`. Such a list is put back in the order the names imply: embeddings
//! first and heads last, numbered blocks by number, and within a block the attention's query,
//! key, value and output before the MLP's gate, up and down projections ([`super::roles`]).
use std::cmp::Ordering;

use super::roles::{role_of, Part};
use super::NamedTensor;

/// `tensors` in the model's order: as they are when the file kept one, inferred from the
/// names when they come sorted by name.
pub fn in_model_order(mut tensors: Vec<NamedTensor>) -> Vec<NamedTensor> {
    if tensors.windows(2).all(|pair| pair[0].name <= pair[1].name) {
        tensors.sort_by(|a, b| compare_names(&a.name, &b.name));
    }
    tensors
}

/// A dotted name's part: numbers compare as numbers (`2` before `10`), before any text.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Segment<'a> {
    Number(u64),
    Text(&'a str),
}

fn segments(name: &str) -> Vec<Segment<'_>> {
    name.split('.')
        .map(|part| match part.parse() {
            Ok(number) if part.bytes().all(|b| b.is_ascii_digit()) => Segment::Number(number),
            _ => Segment::Text(part),
        })
        .collect()
}

/// The order of two tensor names in a model: group (embeddings, the rest, heads), then the
/// name up to its first number (the block), then the part within the block, then the name.
fn compare_names(a: &str, b: &str) -> Ordering {
    key(a).cmp(&key(b))
}

type Key<'a> = (u8, Vec<Segment<'a>>, u8, Vec<Segment<'a>>);

fn key(name: &str) -> Key<'_> {
    let role = role_of(name);
    let group = match role.map(|r| r.part) {
        Some(Part::Embedding) => 0,
        Some(Part::Head) => 2,
        _ => 1,
    };
    let all = segments(name);
    let block_end = all
        .iter()
        .position(|s| matches!(s, Segment::Number(_)))
        .map_or(all.len(), |at| at + 1);
    let block: Vec<Segment<'_>> = segments(name).into_iter().take(block_end).collect();
    let part = role.map_or(u8::MAX, |r| r.part as u8);
    (group, block, part, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        names.sort_by(|a, b| compare_names(a, b));
        names
    }

    /// A BERT checkpoint as safetensors stores it (by name) comes back in module order.
    #[test]
    fn a_sorted_bert_checkpoint_is_put_back_in_module_order() {
        let module_order = [
            "embeddings.word_embeddings.weight",
            "embeddings.position_embeddings.weight",
            "encoder.layer.0.attention.self.query.weight",
            "encoder.layer.0.attention.self.key.weight",
            "encoder.layer.0.attention.self.value.weight",
            "encoder.layer.0.attention.output.dense.weight",
            "encoder.layer.0.intermediate.dense.weight",
            "encoder.layer.0.output.dense.weight",
            "encoder.layer.2.attention.self.query.weight",
            "encoder.layer.10.attention.self.query.weight",
            "pooler.dense.weight",
        ];
        let mut by_name = module_order.to_vec();
        by_name.sort();
        assert_ne!(by_name, module_order);
        let put_back = sorted(&by_name);
        // The two embeddings keep their relative order by name; everything else is the module's.
        assert_eq!(
            &put_back[2..],
            &module_order[2..]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()[..]
        );
        assert!(put_back[..2].iter().all(|n| n.starts_with("embeddings.")));
    }

    #[test]
    fn llama_blocks_count_as_numbers_and_the_head_comes_last() {
        let names = sorted(&[
            "lm_head.weight",
            "model.layers.10.mlp.down_proj.weight",
            "model.layers.2.mlp.gate_proj.weight",
            "model.layers.2.self_attn.o_proj.weight",
            "model.embed_tokens.weight",
            "model.layers.2.mlp.down_proj.weight",
            "model.layers.2.self_attn.q_proj.weight",
        ]);
        assert_eq!(
            names,
            [
                "model.embed_tokens.weight",
                "model.layers.2.self_attn.q_proj.weight",
                "model.layers.2.self_attn.o_proj.weight",
                "model.layers.2.mlp.gate_proj.weight",
                "model.layers.2.mlp.down_proj.weight",
                "model.layers.10.mlp.down_proj.weight",
                "lm_head.weight",
            ]
        );
    }
}
