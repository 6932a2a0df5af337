//! Python `torch.save` checkpoints read in pure Rust, bit-exact against Python's own tensors.
use rmt_torch::model::{dtype_name, EntryValue, FileFormat};
use rmt_torch::Model;

use crate::fixtures::{self, run};

#[test]
fn checkpoints_equal_their_safetensors_twins_bit_for_bit() {
    let text = std::fs::read_to_string(fixtures::file("checkpoint_pairs.json")).unwrap();
    let pairs: serde_json::Value = serde_json::from_str(&text).unwrap();
    let pairs = pairs.as_array().unwrap();
    assert!(pairs.len() >= 30, "{} pairs", pairs.len());
    for pair in pairs {
        let (checkpoint, twin) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        let ours =
            Model::load(fixtures::file(checkpoint)).unwrap_or_else(|e| panic!("{checkpoint}: {e}"));
        let python = Model::load(fixtures::file(twin)).unwrap();
        let expected_format = if checkpoint.contains("legacy") {
            FileFormat::TorchSaveLegacy
        } else {
            FileFormat::TorchSaveZip
        };
        assert_eq!(ours.format, expected_format, "{checkpoint}");
        let mut names: Vec<&str> = ours.tensors.iter().map(|t| t.name.as_str()).collect();
        let mut twin_names: Vec<&str> = python.tensors.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        twin_names.sort_unstable();
        assert_eq!(names, twin_names, "{checkpoint}");
        for named in &ours.tensors {
            let twin = python
                .tensors
                .iter()
                .find(|t| t.name == named.name)
                .unwrap();
            let (tensor, twin_tensor) = (named.load().unwrap(), twin.load().unwrap());
            assert_eq!(named.dtype, twin.dtype, "{checkpoint} {}", named.name);
            assert_eq!(
                dtype_name(tensor.kind()),
                named.dtype.to_string(),
                "{checkpoint} {}",
                named.name
            );
            assert_eq!(tensor.size(), named.shape, "{checkpoint} {}", named.name);
            assert_eq!(
                tensor.size(),
                twin_tensor.size(),
                "{checkpoint} {}",
                named.name
            );
            assert!(
                tensor.equal(&twin_tensor),
                "{checkpoint} {}: values differ",
                named.name
            );
        }
    }
}

#[test]
fn nested_checkpoints_yield_the_model_and_list_the_rest() {
    let model = Model::load(fixtures::file("ckpt_nested.pt")).unwrap();
    assert!(model.tensors.iter().all(|t| !t.name.contains("momentum")));
    assert_eq!(model.tensors.len(), 6);
    let others: Vec<&str> = model
        .other_entries
        .iter()
        .map(|entry| entry.name.as_str())
        .collect();
    assert_eq!(others, ["epoch", "optimizer_state_dict", "loss"]);
    assert_eq!(model.other_entries[0].value, EntryValue::Int(7));
    assert!(matches!(model.other_entries[1].value, EntryValue::Dict(_)));
    assert!(matches!(model.other_entries[2].value, EntryValue::Float(_)));
}

#[test]
fn checkpoints_are_analysed_like_any_model() {
    let out = crate::fixtures::run_ok(&[
        "analyze",
        fixtures::file("ckpt_transformer_float16_legacy.pt")
            .to_str()
            .unwrap(),
        "-f",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "self_attn.in_proj_weight",
            "self_attn.out_proj.weight",
            "linear1.weight",
            "linear2.weight"
        ]
    );
}

#[test]
fn refused_checkpoints_say_why_and_run_nothing() {
    let cases = [
        ("ckpt_whole_module.pt", "pickled __main__.MLP object"),
        ("ckpt_hostile.pt", "never runs pickled code"),
        ("ckpt_hostile_nested.pt", "no tensors"),
        ("ckpt_truncated.pt", "truncated"),
        ("ckpt_truncated_legacy.pt", "runs past the end"),
        ("ckpt_bad_pickle.pt", "data.pkl"),
    ];
    for (file, expected) in cases {
        let output = run(&["analyze", fixtures::file(file).to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{file}: {stderr}");
        assert!(stderr.contains(expected), "{file}: {stderr}");
    }
    assert!(!fixtures::dir().join("hostile-pickle-was-executed").exists());
    assert!(!fixtures::root()
        .join("hostile-pickle-was-executed")
        .exists());
}

#[test]
fn key_selects_any_entry_of_a_checkpoint() {
    let path = fixtures::file("ckpt_nested.pt");
    let optimiser = Model::load_entry(&path, Some("optimizer_state_dict.state")).unwrap();
    assert_eq!(optimiser.tensors.len(), 6);
    assert!(optimiser
        .tensors
        .iter()
        .all(|t| t.name.ends_with("momentum_buffer")));
    // Optimizer buffers are listed, never analysed as layers.
    let inventory = optimiser.inventory(&Default::default());
    assert!(
        inventory
            .iter()
            .all(|t| !t.analysed && t.verdict.contains("optimizer state (momentum_buffer)")),
        "{inventory:?}"
    );
    let output = run(&[
        "analyze",
        path.to_str().unwrap(),
        "--key",
        "optimizer_state_dict",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("optimizer state"), "{stderr}");
    let weights = Model::load_entry(&path, Some("model_state_dict")).unwrap();
    let automatic = Model::load(&path).unwrap();
    assert_eq!(weights.tensors.len(), automatic.tensors.len());
    let output = run(&[
        "info",
        path.to_str().unwrap(),
        "--key",
        "model_state_dict.nope",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("no entry 'nope'") && stderr.contains("fc1.weight"),
        "{stderr}"
    );
}

/// The high-water mark of a child's resident memory, polled from /proc until it exits.
fn peak_resident_bytes(mut child: std::process::Child) -> (std::process::ExitStatus, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            {
                peak = peak.max(kib * 1024);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Models are streamed: `info` reads no tensor, whatever the file's size, and `analyze` holds
/// no more than its largest layer needs. On an 805 MB checkpoint of a 32768 × 1024 embedding and
/// 40 layers of 1024 × 4096 (float32), `info` peaks at libtorch's own footprint (about 470 MiB);
/// `analyze` on two threads, which runs two of the smaller layers at once, peaks where it does on
/// one thread (2 MB apart measured; 65 MB apart when the embedding's eigensolve ran beside
/// another layer's Gram product), at most the embedding's working set above `info` (its 134 MB,
/// a 34 MB float64 band, its 8 MB Gram matrix) and below the file's size.
#[test]
fn models_are_streamed_one_layer_at_a_time() {
    let path = fixtures::dir().join("large_checkpoint.pt");
    let status = std::process::Command::new(fixtures::python())
        .args(["-c", "import sys, torch; torch.manual_seed(0); layers = {f'layer{i}.weight': torch.randn(1024, 4096) for i in range(40)}; torch.save({'embed.weight': torch.randn(32768, 1024), **layers}, sys.argv[1])"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 800_000_000, "{size} bytes");
    let embedding = 32768 * 1024 * 4 + (32 << 20) + 1024 * 1024 * 8;
    let peak_of = |args: &[&str]| {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_rmt-torch"))
            .args(args)
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (status, peak) = peak_resident_bytes(child);
        assert!(status.success(), "{args:?}");
        peak
    };
    let listed = peak_of(&["info", "-f", "json"]);
    let analyse = |threads| {
        peak_of(&[
            "analyze",
            "-q",
            "--device",
            "cpu",
            "-f",
            "json",
            "--threads",
            threads,
        ])
    };
    let (two, one) = (analyse("2"), analyse("1"));
    std::fs::remove_file(&path).unwrap();
    assert!(
        listed > 100 << 20 && listed < 600 << 20,
        "info peaked at {listed} bytes"
    );
    assert!(
        two <= one + (16 << 20) && one <= listed + embedding && two < size,
        "analyze peaked at {two} bytes on two threads, {one} on one: info {listed}, the \
         embedding's working set {embedding}, the file {size}"
    );
}
