//! Hugging Face checkpoint directories (made by `scripts/make_fixtures.py` the way
//! `save_pretrained` lays them out): sharded safetensors and .bin with their indexes, shards
//! without an index, diffusers-style component folders, tied weights, and broken directories.
use rmt_torch::model::FileFormat;
use rmt_torch::Model;
use serde_json::Value;

use crate::fixtures::{self, run, run_ok};

fn analysis(path: &std::path::Path) -> Value {
    serde_json::from_str(&run_ok(&["analyze", path.to_str().unwrap(), "-f", "json"])).unwrap()
}

fn layers(analysis: &Value) -> Vec<(String, f64)> {
    analysis["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["lambda_max"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn sharded_directories_equal_the_same_weights_in_one_file() {
    let single = analysis(&fixtures::file("hf_single.safetensors"));
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures::file("hf_lambda_max.json")).unwrap(),
    )
    .unwrap();
    let expected = layers(&single);
    assert_eq!(expected.len(), 5);
    for (name, lambda_max) in &expected {
        let numpy = reference[name].as_f64().unwrap();
        assert!(
            (lambda_max - numpy).abs() <= 1e-10 * numpy,
            "{name}: {lambda_max} vs numpy {numpy}"
        );
    }
    for directory in ["hf_safetensors_sharded", "hf_bin_sharded", "hf_unindexed"] {
        let path = fixtures::file(directory);
        let model = Model::load(&path).unwrap();
        assert_eq!(model.format, FileFormat::CheckpointDirectory);
        let found = analysis(&path);
        assert_eq!(found["format"], "checkpoint_directory", "{directory}");
        if directory == "hf_unindexed" {
            // Without an index, the shards' order: the same layers, in another order.
            let (mut found, mut expected) = (layers(&found), expected.clone());
            found.sort_by(|a, b| a.0.cmp(&b.0));
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(found, expected, "{directory}");
            continue;
        }
        // The index's order (the state dict's), not the shards' order.
        assert_eq!(layers(&found), expected, "{directory}");
        assert_eq!(found["summary"], single["summary"], "{directory}");
    }
    let layout = Model::load(fixtures::file("hf_bin_sharded"))
        .unwrap()
        .directory
        .unwrap();
    assert!(layout
        .index
        .unwrap()
        .ends_with("pytorch_model.bin.index.json"));
    assert_eq!(layout.files.len(), 2);
}

#[test]
fn tied_weights_are_analysed_once_and_reported() {
    let model = Model::load(fixtures::file("hf_bin_sharded")).unwrap();
    let head = model
        .tensors
        .iter()
        .find(|t| t.name == "lm_head.weight")
        .unwrap();
    assert_eq!(head.tied_to.as_deref(), Some("embed.weight"));
    let found = analysis(&fixtures::file("hf_bin_sharded"));
    let skipped = found["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["name"] == "lm_head.weight"
            && s["reason"]
                .as_str()
                .unwrap()
                .starts_with("tied to embed.weight")),
        "{skipped:?}"
    );
    let info = run_ok(&["info", fixtures::file("hf_bin_sharded").to_str().unwrap()]);
    assert!(
        info.contains("read from:") && info.contains("pytorch_model.bin.index.json"),
        "{info}"
    );
}

#[test]
fn diffusers_components_are_prefixed_by_their_folder() {
    let model = Model::load(fixtures::file("hf_diffusers")).unwrap();
    let names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "text_encoder.layers.0.norm.weight",
            "text_encoder.layers.1.attn.q_proj.weight",
            "text_encoder.layers.1.mlp.up_proj.weight",
            "unet.embed.weight",
            "unet.layers.0.attn.q_proj.weight",
            "unet.layers.0.mlp.up_proj.weight",
        ]
    );
    assert_eq!(
        model.directory.unwrap().components,
        ["text_encoder", "unet"]
    );
}

#[test]
fn broken_directories_are_clear_errors_naming_the_file() {
    for (directory, expected) in [
        (
            "hf_missing_shard",
            "model-00002-of-00002.safetensors is missing",
        ),
        (
            "hf_index_lies",
            "maps 'ghost.weight' to model-00001-of-00002.safetensors, which does not hold it",
        ),
        ("hf_truncated_shard", "model-00002-of-00002.safetensors"),
        ("hf_escaping_index", "not a file name in the directory"),
    ] {
        let path = fixtures::file(directory);
        let output = run(&["analyze", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{directory}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{directory}: {stderr}");
    }
}

#[test]
fn a_zoo_counts_each_checkpoint_directory_as_one_model() {
    let zoo = fixtures::root().join("target/zoo-directories");
    let _ = std::fs::remove_dir_all(&zoo);
    std::fs::create_dir_all(&zoo).unwrap();
    for directory in ["hf_safetensors_sharded", "hf_bin_sharded"] {
        let target = zoo.join(directory);
        std::fs::create_dir_all(&target).unwrap();
        for entry in std::fs::read_dir(fixtures::file(directory)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, target.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(
        fixtures::file("hf_single.safetensors"),
        zoo.join("single.safetensors"),
    )
    .unwrap();
    let report: Value = serde_json::from_str(&run_ok(&[
        "zoo",
        zoo.to_str().unwrap(),
        "--cache",
        "none",
        "-f",
        "json",
    ]))
    .unwrap();
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 3, "{models:?}");
    assert!(
        models.iter().all(|m| m["verdict"] == "no_policy"),
        "{models:?}"
    );
}
