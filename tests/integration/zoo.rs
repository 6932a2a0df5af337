//! `rmt-torch zoo` on a generated zoo: ranking, policy exit codes, shards and their merge, cache.
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fixtures::{self, run, run_ok};

/// A zoo of 12 model files in mixed formats (TorchScript, torch.save, safetensors; one in a
/// subdirectory, one corrupt), a saved input batch (a bare 4-D tensor, no model) and a text
/// file. Built fresh under `target/`.
fn make_zoo(name: &str, corrupt: bool) -> PathBuf {
    let dir = fixtures::root().join("target").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    for model in [
        "digits_mlp_init.pt",
        "digits_mlp_trained.pt",
        "digits_cnn_init.pt",
        "digits_cnn_trained.pt",
    ] {
        std::fs::copy(fixtures::shipped_model(model), dir.join(model)).unwrap();
    }
    for (file, target) in [
        ("mlp_scripted.pt", "random_mlp.pt"),
        ("ckpt_mlp_float32_zip.pt", "ckpt_mlp.pt"),
        ("ckpt_cnn_float16_legacy.pt", "legacy_cnn.pt"),
        ("ckpt_cnn_float32.safetensors", "cnn.safetensors"),
        ("ckpt_nested.pt", "nested_checkpoint.pt"),
        ("ckpt_lstm_float64.safetensors", "lstm.safetensors"),
        (
            "ckpt_transformer_float32.safetensors",
            "nested/transformer.safetensors",
        ),
        ("jac_cnn_input.pt", "inputs_batch.pt"),
    ] {
        std::fs::copy(fixtures::file(file), dir.join(target)).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not a model").unwrap();
    if corrupt {
        std::fs::write(
            dir.join("broken.pt"),
            b"PK\x03\x04 this is not a zip archive",
        )
        .unwrap();
    }
    dir
}

fn zoo(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["zoo", "-f", "json", "-q"];
    all.extend_from_slice(args);
    let output = run(&all);
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "{args:?}: {err}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), json)
}

fn paths(report: &Value) -> Vec<String> {
    report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap().to_string())
        .collect()
}

fn summary(report: &Value, field: &str) -> Vec<Option<f64>> {
    report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["summary"][field].as_f64())
        .collect()
}

#[test]
fn zoo_ranks_reports_errors_and_applies_the_policy() {
    let dir = make_zoo("test-zoo-policy", true);
    let dir_text = dir.to_str().unwrap();
    let (code, report) = zoo(&[dir_text, "--cache", "none"]);
    assert_eq!(code, Some(2), "a corrupt file is exit 2");
    assert_eq!(report["models"].as_array().unwrap().len(), 13);
    assert_eq!(report["errors"], 1);
    // The batch is listed as no model, not read as a conv layer nor counted as an error.
    assert_eq!(report["not_models"], 1);
    let batch = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str().unwrap().ends_with("inputs_batch.pt"))
        .unwrap();
    assert_eq!(batch["verdict"], "not_a_model", "{batch}");
    assert!(batch["summary"].is_null());
    assert!(report["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["path"].as_str().unwrap().ends_with("broken.pt") && m["verdict"] == "error"));
    let alphas: Vec<f64> = summary(&report, "alpha").into_iter().flatten().collect();
    assert!(
        alphas.windows(2).all(|p| p[0] <= p[1]),
        "not ranked by alpha: {alphas:?}"
    );
    // The trained models carry the most spikes beyond the Tracy-Widom edge.
    let (_, by_spikes) = zoo(&[
        dir_text,
        "--cache",
        "none",
        "--rank-by",
        "num_spikes_tw",
        "--descending",
        "--jobs",
        "2",
    ]);
    assert!(
        paths(&by_spikes)[0].contains("trained"),
        "{:?}",
        paths(&by_spikes)
    );

    std::fs::remove_file(dir.join("broken.pt")).unwrap();
    let (code, report) = zoo(&[dir_text, "--cache", "none", "--fail-if", "over_trained>0"]);
    assert_eq!(code, Some(1), "an over-trained layer violates the policy");
    assert!(report["violated"].as_u64().unwrap() >= 1);
    let violators: Vec<&Value> = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["verdict"] == "violated")
        .collect();
    assert!(violators
        .iter()
        .all(|m| m["summary"]["over_trained"].as_u64().unwrap() > 0));
    let policy = dir.join("policy.txt");
    std::fs::write(&policy, "# lenient\nalpha > 1000\n").unwrap();
    let (code, report) = zoo(&[
        dir_text,
        "--cache",
        "none",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(report["healthy"], 11);
    for bad in [
        &["--fail-if", "alpha_mean>6"][..],
        &["--fail-if", "alpha>nan"],
        &["--fail-if", "alpha=>6"],
        &["--rank-by", "nonsense"],
        &["--shard", "3/3"],
        &["--tw-level", "0"],
        &["--seed", "1"],
    ] {
        let mut args = vec!["zoo", dir_text, "--cache", "none"];
        args.extend_from_slice(bad);
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr)
                .trim_end()
                .lines()
                .count(),
            1
        );
    }
}

#[test]
fn shards_cover_every_model_once_and_merge_to_the_whole() {
    let dir = make_zoo("test-zoo-shards", false);
    let dir_text = dir.to_str().unwrap();
    let (whole_code, whole) = zoo(&[dir_text, "--cache", "none", "--fail-if", "over_trained>0"]);
    let mut shard_files = Vec::new();
    let mut seen = Vec::new();
    for i in 0..3 {
        let (_, shard) = zoo(&[
            dir_text,
            "--cache",
            "none",
            "--fail-if",
            "over_trained>0",
            "--shard",
            &format!("{i}/3"),
        ]);
        seen.extend(paths(&shard));
        let file = dir.join(format!("shard-{i}.json"));
        std::fs::write(&file, serde_json::to_string(&shard).unwrap()).unwrap();
        shard_files.push(file);
    }
    seen.sort();
    let mut all = paths(&whole);
    all.sort();
    assert_eq!(seen, all, "the shards cover every model exactly once");
    let mut args = vec!["zoo", "merge"];
    args.extend(shard_files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["-f", "json"]);
    let output = run(&args);
    let merged: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), whole_code);
    assert_eq!(paths(&merged), paths(&whole));
    for field in ["alpha", "num_spikes_tw", "over_trained"] {
        assert_eq!(summary(&merged, field), summary(&whole, field), "{field}");
    }
    // A shard given twice, or a missing shard, is refused: a partial merge would pass CI on
    // the models it happens to hold.
    let (first, second) = (
        shard_files[0].to_str().unwrap(),
        shard_files[1].to_str().unwrap(),
    );
    let old = shard_files[0].with_extension("v2.json");
    let text = std::fs::read_to_string(&shard_files[0]).unwrap();
    std::fs::write(&old, text.replace("rmt-torch/zoo/v4", "rmt-torch/zoo/v3")).unwrap();
    let directory = shard_files[0].parent().unwrap().to_str().unwrap();
    for (reports, expected) in [
        (vec![first, first, second], "given twice"),
        (vec![first, second], "2/3 missing"),
        (
            vec![old.to_str().unwrap(), second],
            "a rmt-torch/zoo/v3 report; this version merges",
        ),
        (vec![directory, second], "not a regular file"),
    ] {
        let mut args = vec!["zoo", "merge"];
        args.extend(reports);
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn a_zoo_without_models_fails_and_summaries_equal_analyze() {
    let empty = fixtures::dir().join("test-zoo-empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "no models here").unwrap();
    let output = run(&["zoo", empty.to_str().unwrap(), "--cache", "none"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no model files"), "{stderr}");
    // One summary type: the zoo's entry is analyze's summary, field for field, with the same
    // options (here a non-default convention and key-free checkpoint).
    let model = fixtures::shipped_model("digits_cnn_trained.pt");
    let model_text = model.to_str().unwrap();
    let options = ["--convention", "rmt", "--conv", "reshape"];
    let mut args = vec!["zoo", model_text, "--cache", "none"];
    args.extend(options);
    let (_, report) = zoo(&args[1..]);
    let mut args = vec!["analyze", model_text, "-f", "json"];
    args.extend(options);
    let analysis: Value = serde_json::from_str(&fixtures::run_ok(&args)).unwrap();
    // The zoo shares libtorch's threads between models, so sums may differ in the last bit.
    let (zoo_summary, summary) = (&report["models"][0]["summary"], &analysis["summary"]);
    for (field, value) in summary.as_object().unwrap() {
        match (value.as_f64(), zoo_summary[field].as_f64()) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-12 * a.abs(), "{field}: {a} {b}"),
            _ => assert_eq!(value, &zoo_summary[field], "{field}"),
        }
    }
}

#[test]
fn the_cache_skips_unchanged_files() {
    let dir = make_zoo("test-zoo-cache", false);
    let cache = dir.join("cache");
    let (dir_text, cache_text) = (dir.to_str().unwrap(), cache.to_str().unwrap());
    // Analyses are cached; the batch, which is no model, is looked at again each time.
    let analysed = |report: &Value| -> Vec<Value> {
        report["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["verdict"] != "not_a_model")
            .cloned()
            .collect()
    };
    let cached = |report: &Value| -> Vec<bool> {
        analysed(report)
            .iter()
            .map(|m| m["cached"].as_bool().unwrap())
            .collect()
    };
    let (_, first) = zoo(&[dir_text, "--cache", cache_text]);
    assert!(cached(&first).iter().all(|c| !c));
    let layers_csv = dir.join("layers.csv");
    let (_, second) = zoo(&[
        dir_text,
        "--cache",
        cache_text,
        "--layers-csv",
        layers_csv.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(&layers_csv).unwrap();
    let total_layers: u64 = analysed(&second)
        .iter()
        .map(|m| m["summary"]["layers"].as_u64().unwrap())
        .sum();
    assert!(
        csv.starts_with("model,layer_id,name"),
        "{}",
        csv.lines().next().unwrap()
    );
    assert_eq!(csv.lines().count() as u64, total_layers + 1);
    assert!(cached(&second).iter().all(|c| *c));
    assert_eq!(summary(&first, "alpha"), summary(&second, "alpha"));
    std::fs::copy(fixtures::file("mlp_traced.pt"), dir.join("added.pt")).unwrap();
    let (_, third) = zoo(&[dir_text, "--cache", cache_text]);
    let fresh: Vec<String> = analysed(&third)
        .iter()
        .filter(|m| !m["cached"].as_bool().unwrap())
        .map(|m| m["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fresh.len(), 1);
    assert!(Path::new(&fresh[0]).ends_with("added.pt"));
    // Without --quiet the run says where its cache is and how much it took from it.
    let output = run(&["zoo", dir_text, "--cache", cache_text]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let models = analysed(&third).len();
    assert!(
        stderr.contains(&format!("results cached in {cache_text} ({models} models read from it; --cache none turns it off)")),
        "{stderr}"
    );
}

/// The Slurm array recipes of docs/clusters.md on a real single-node Slurm (slurmctld, slurmd and munge
/// started by `scripts/slurm-check`): the merged shards equal one `zoo` run, a failed array
/// task makes the merge fail, and one model analysed over an array (`scripts/slurm-analyze`)
/// merges into the single `analyze` run. Skipped (and counted) where Slurm cannot be started.
#[test]
fn slurm_array_shards_merge_into_the_single_run() {
    let zoo = make_zoo("zoo-slurm", false);
    let output = std::process::Command::new(fixtures::root().join("scripts/slurm-check"))
        .arg(env!("CARGO_BIN_EXE_rmt-torch"))
        .arg(&zoo)
        .arg(fixtures::shipped_model("digits_cnn_trained.pt"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(77) {
        eprint!("{stderr}");
        fixtures::capability(
            "slurm",
            false,
            "slurm_array_shards_merge_into_the_single_run",
        );
        return;
    }
    assert!(
        output.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("match the single run"), "{stdout}");
    assert!(stdout.contains("failed task refused"), "{stdout}");
    assert!(
        stdout.contains("merge into the single analyze run"),
        "{stdout}"
    );
}

/// Per-layer rules (`any`, `count`, `max_`/`min_`, `layers=REGEX:`) judge a model by its layers,
/// as the layer records say, with exit code 1 when violated; without rules nothing is judged.
#[test]
fn per_layer_rules_judge_the_layers() {
    let dir = fixtures::root().join("target").join("test-zoo-layer-rules");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixtures::shipped_model("digits_cnn_trained.pt"),
        dir.join("cnn.pt"),
    )
    .unwrap();
    let (dir_text, cache) = (dir.to_str().unwrap(), dir.join("cache"));
    let cache = cache.to_str().unwrap();
    let (code, report) = zoo(&[dir_text, "--cache", cache]);
    assert_eq!(code, Some(0));
    assert_eq!(report["models"][0]["verdict"], "no_policy");
    assert_eq!(report["healthy"], 0);
    let table = run_ok(&["zoo", dir_text, "--cache", cache, "-q"]);
    assert!(table.contains("no policy"), "{table}");
    let layers = report["models"][0]["analysis"]["layers"]
        .as_array()
        .unwrap();
    let alpha = |pattern: &str| -> Vec<f64> {
        layers
            .iter()
            .filter(|l| l["name"].as_str().unwrap().starts_with(pattern))
            .filter_map(|l| l["alpha"].as_f64())
            .collect()
    };
    let all = alpha("");
    let max = all.iter().copied().fold(f64::MIN, f64::max);
    let min = all.iter().copied().fold(f64::MAX, f64::min);
    let count_above = |x: f64| all.iter().filter(|&&a| a > x).count();
    let over_in_fc = layers
        .iter()
        .filter(|l| l["name"].as_str().unwrap().starts_with("fc"))
        .filter(|l| l["quality"] == "over-trained")
        .count();
    let cases: Vec<(String, bool)> = vec![
        (format!("any(alpha>{})", max - 0.01), true),
        (format!("any(alpha>{})", max + 0.01), false),
        (format!("count(alpha>2)>={}", count_above(2.0)), true),
        (format!("count(alpha>2)>={}", count_above(2.0) + 1), false),
        (format!("max_alpha>{}", max - 0.01), true),
        (format!("min_alpha<{}", min - 0.01), false),
        (format!("min_alpha<{}", min + 0.01), true),
        (
            format!(
                "layers=^fc:max_alpha>{}",
                alpha("fc").iter().copied().fold(f64::MIN, f64::max) + 0.01
            ),
            false,
        ),
        (
            format!(
                "layers=^conv:max_alpha>{}",
                alpha("conv").iter().copied().fold(f64::MIN, f64::max) - 0.01
            ),
            true,
        ),
        ("layers=^fc:over_trained>=1".into(), over_in_fc >= 1),
        ("layers=nothing-matches:any(alpha>0)".into(), false),
    ];
    assert!(cases.iter().any(|(_, v)| *v) && cases.iter().any(|(_, v)| !*v));
    for (rule, violated) in cases {
        let (code, report) = zoo(&[dir_text, "--cache", cache, "--fail-if", &rule]);
        let entry = &report["models"][0];
        assert_eq!(
            entry["verdict"],
            if violated { "violated" } else { "healthy" },
            "{rule}: {entry}"
        );
        assert_eq!(code, Some(if violated { 1 } else { 0 }), "{rule}");
        if violated {
            assert_eq!(entry["violations"][0], rule.as_str());
        }
    }
    let refused = run(&["zoo", dir_text, "--fail-if", "max_quality>1"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a numeric layer field"));
}

/// A zoo's history: after one file is replaced and one added, `--since last` lists exactly
/// those two (changed, new), with the replaced model's drift equal to the difference of the
/// two runs' summaries; `delta_` rules on that drift exit 1, and `--since FILE` reads a
/// report written by `-f json -o` the same way.
#[test]
fn a_second_run_reports_what_changed_since_the_first() {
    let dir = fixtures::root().join("target/test-zoo-history");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("models")).unwrap();
    for model in ["digits_mlp_init.pt", "digits_cnn_init.pt"] {
        std::fs::copy(
            fixtures::shipped_model(model),
            dir.join("models").join(model),
        )
        .unwrap();
    }
    let (models, cache) = (dir.join("models"), dir.join("cache"));
    let (models_text, cache_text) = (models.to_str().unwrap(), cache.to_str().unwrap());
    let first_file = dir.join("first.json");
    let output = run(&[
        "zoo",
        models_text,
        "--cache",
        cache_text,
        "--since",
        "last",
        "-f",
        "json",
        "-q",
        "-o",
        first_file.to_str().unwrap(),
    ]);
    let code = output.status.code();
    let first: Value =
        serde_json::from_str(&std::fs::read_to_string(&first_file).unwrap()).unwrap();
    assert_eq!(code, Some(0));
    assert_eq!(
        first["history"]["new"], 2,
        "no previous run: every model new"
    );
    // The CNN is retrained (another file under the same name); a model is added.
    std::fs::copy(
        fixtures::shipped_model("digits_cnn_trained.pt"),
        models.join("digits_cnn_init.pt"),
    )
    .unwrap();
    std::fs::copy(
        fixtures::shipped_model("digits_mlp_trained.pt"),
        models.join("added.pt"),
    )
    .unwrap();
    let (code, second) = zoo(&[
        models_text,
        "--cache",
        cache_text,
        "--since",
        "last",
        "--fail-if",
        "delta_alpha<-1",
    ]);
    let history = &second["history"];
    assert_eq!(
        (
            &history["new"],
            &history["removed"],
            &history["changed"],
            &history["unchanged"]
        ),
        (
            &Value::from(1),
            &Value::from(0),
            &Value::from(1),
            &Value::from(1)
        )
    );
    let listed: Vec<(&str, &str)> = history["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let path = m["path"].as_str().unwrap();
            (
                path.rsplit('/').next().unwrap(),
                m["change"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("added.pt", "new"), ("digits_cnn_init.pt", "changed")]
    );
    let alpha_of = |report: &Value, name: &str| {
        report["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["path"].as_str().unwrap().ends_with(name))
            .unwrap()["summary"]["alpha"]
            .as_f64()
            .unwrap()
    };
    let drift = history["models"][1]["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == "alpha")
        .unwrap();
    let expected = alpha_of(&second, "digits_cnn_init.pt") - alpha_of(&first, "digits_cnn_init.pt");
    assert!((drift["delta"].as_f64().unwrap() - expected).abs() < 1e-12);
    assert!(expected < -1.0, "training lowers α: {expected}");
    assert_eq!(code, Some(1), "delta_alpha<-1 is violated");
    let violated: Vec<&str> = second["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["verdict"] == "violated")
        .map(|m| m["path"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        violated,
        ["digits_cnn_init.pt"],
        "new models drift from nothing"
    );
    // The same from the first run's report, named.
    let (code, named) = zoo(&[
        models_text,
        "--cache",
        "none",
        "--since",
        first_file.to_str().unwrap(),
        "--fail-if",
        "delta_alpha<-1",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(named["history"]["models"], history["models"]);
    // A third run sees nothing new.
    let (code, third) = zoo(&[models_text, "--cache", cache_text, "--since", "last"]);
    assert_eq!(code, Some(0));
    assert_eq!(third["history"]["unchanged"], 3);
    assert_eq!(third["history"]["models"], Value::Array(Vec::new()));
    let refused = run(&["zoo", models_text, "--cache", "none", "--since", "last"]);
    assert_eq!(refused.status.code(), Some(2));
}
