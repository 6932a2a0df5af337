//! The training-loop plugin and `track`: observing never changes training, the monitor's
//! records equal `analyze` on the same weights, and `track` over the saved checkpoints equals
//! the monitor's record.
use std::path::Path;

use rmt_torch::random::SeededNormal;
use rmt_torch::workflows::monitor::SpectralMonitor;
use rmt_torch::{analyze, AnalyzeOptions, Model};
use serde_json::Value;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::fixtures::{self, run_ok};

const STEPS: usize = 30;
const EVERY: usize = 10;

/// A small MLP trained by SGD on seeded synthetic data. Weights and data come from the test's
/// own generator (libtorch's global one is shared by the tests running in parallel).
fn train(
    mut monitor: Option<&mut SpectralMonitor>,
    background: bool,
    checkpoints: Option<&Path>,
) -> Vec<(String, Tensor)> {
    let mut rng = SeededNormal::new(21);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::linear(&root / "fc1", 64, 48, Default::default()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(&root / "fc2", 48, 10, Default::default()));
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (_, variable) in &mut variables {
            let values: Vec<f32> = (0..variable.numel())
                .map(|_| (0.1 * rng.normal()) as f32)
                .collect();
            variable.copy_(&Tensor::from_slice(&values).reshape(variable.size()));
        }
    });
    let inputs: Vec<f32> = (0..256 * 64).map(|_| rng.normal() as f32).collect();
    let x = Tensor::from_slice(&inputs).reshape([256, 64]);
    let labels = x.narrow(1, 0, 10).argmax(1, false);
    let mut optimizer = nn::Sgd::default().build(&vs, 0.5).unwrap();
    for step in 1..=STEPS {
        let loss = net.forward(&x).cross_entropy_for_logits(&labels);
        optimizer.backward_step(&loss);
        if let Some(monitor) = monitor.as_deref_mut() {
            if background {
                monitor.observe_var_store_in_background(step, &vs).unwrap();
            } else {
                monitor.observe_var_store(step, &vs).unwrap();
            }
        }
        if let Some(dir) = checkpoints {
            if step % EVERY == 0 {
                vs.save(dir.join(format!("ckpt-{step}.safetensors")))
                    .unwrap();
            }
        }
    }
    let mut weights: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    weights
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn assert_close(a: &Value, b: &Value, what: &str) {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-9 * y.abs(), "{what}: {x} vs {y}"),
        _ => assert_eq!(a, b, "{what}"),
    }
}

#[test]
fn monitoring_changes_nothing_and_track_reproduces_it() {
    let dir = fixtures::root().join("target/test-monitor");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let plain = train(None, false, None);
    let log = dir.join("spectra.jsonl");
    let mut monitor = SpectralMonitor::new(AnalyzeOptions::default(), EVERY)
        .unwrap()
        .with_jsonl(&log)
        .unwrap();
    let observed = train(Some(&mut monitor), false, Some(&dir));
    let background_log = dir.join("background.jsonl");
    let mut background = SpectralMonitor::new(AnalyzeOptions::default(), EVERY)
        .unwrap()
        .with_jsonl(&background_log)
        .unwrap();
    let observed_in_background = train(Some(&mut background), true, None);
    assert_eq!(
        background.finish().unwrap().len(),
        2,
        "the last observation's layers"
    );
    for ((name, a), ((_, b), (_, c))) in plain
        .iter()
        .zip(observed.iter().zip(&observed_in_background))
    {
        assert_eq!(a.kind(), Kind::Float);
        assert!(
            a.equal(b),
            "{name}: the monitor changed the training trajectory"
        );
        assert!(
            a.equal(c),
            "{name}: the background monitor changed the training trajectory"
        );
    }
    assert!(monitor.mean_seconds_per_observation().unwrap() > 0.0);

    // The monitor's records: 2 layers at steps 10, 20, 30, equal to analyze on the checkpoints.
    let records = jsonl(&log);
    assert_eq!(records.len(), 2 * STEPS / EVERY);
    let background_records = jsonl(&background_log);
    assert_eq!(background_records.len(), records.len());
    for (ours, theirs) in background_records.iter().zip(&records) {
        for field in [
            "step",
            "name",
            "alpha",
            "lambda_max",
            "num_spikes_tw",
            "bulk_sigma2",
        ] {
            assert_close(&ours[field], &theirs[field], &format!("background {field}"));
        }
    }
    for record in &records {
        let step = record["step"].as_u64().unwrap();
        let model = Model::load(dir.join(format!("ckpt-{step}.safetensors"))).unwrap();
        let analysis =
            serde_json::to_value(analyze(&model, &AnalyzeOptions::default()).unwrap()).unwrap();
        let layer = analysis["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == record["name"])
            .unwrap();
        // Same float32 weights, same code: equal up to BLAS's alignment-dependent rounding.
        for field in [
            "alpha",
            "lambda_max",
            "stable_rank",
            "num_spikes_tw",
            "bulk_sigma2",
            "mmp_fraction",
        ] {
            assert_close(
                &layer[field],
                &record[field],
                &format!("step {step} {}: {field}", record["name"]),
            );
        }
    }

    // track over the checkpoints: the same records, in step order, and their figures.
    let figures = dir.join("figures");
    let tracked: Value = serde_json::from_str(&run_ok(&[
        "track",
        dir.to_str().unwrap(),
        "-f",
        "json",
        "-q",
        "--plots",
        figures.to_str().unwrap(),
        "--plot-format",
        "svg",
    ]))
    .unwrap();
    let tracked = tracked["records"].as_array().unwrap();
    assert_eq!(tracked.len(), records.len());
    for (ours, theirs) in tracked.iter().zip(&records) {
        for field in ["step", "name", "alpha", "lambda_max", "num_spikes_tw"] {
            assert_close(&ours[field], &theirs[field], field);
        }
    }
    // The figures: one per metric with a line per layer, and each layer's ESD snapshots.
    let svg = |name: &str| {
        std::fs::read_to_string(figures.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let alpha = svg("alpha.svg");
    assert!(
        alpha.contains("power-law exponent α over training") && alpha.contains("training step")
    );
    for record in &records[..2] {
        let name = record["name"].as_str().unwrap();
        assert!(alpha.contains(name), "alpha figure lacks layer {name}");
        let snapshots = svg(&format!("esd_{}.svg", name.replace('.', "_")));
        for step in (EVERY..=STEPS).step_by(EVERY) {
            assert!(
                snapshots.contains(&format!("step {step}")),
                "{name}: step {step}"
            );
        }
    }
    assert!(svg("num_spikes_tw.svg").contains("Tracy-Widom spikes"));
    // The monitor's JSONL through track, as CSV.
    let csv = run_ok(&[
        "track",
        "--jsonl",
        log.to_str().unwrap(),
        "-f",
        "csv",
        "--metrics",
        "alpha,lambda_max",
    ]);
    assert_eq!(
        csv.lines().next().unwrap(),
        "step,source,name,alpha,lambda_max"
    );
    assert_eq!(csv.lines().count(), 1 + records.len());
    // Integers print as integers in the table.
    let table = run_ok(&[
        "track",
        "--jsonl",
        log.to_str().unwrap(),
        "--metrics",
        "num_spikes_tw",
    ]);
    let row = table.lines().nth(2).unwrap();
    let cell = row.split_whitespace().last().unwrap();
    assert!(cell.parse::<u64>().is_ok(), "{row}");
    // A misspelt metric, and a JSONL line that is not a monitor record, are refused.
    let bad_line = log.with_extension("bad.jsonl");
    std::fs::write(&bad_line, "{\"step\": 1, \"name\": \"fc\"}\n[1, 2]\n").unwrap();
    let empty = log.with_extension("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    for (args, expected) in [
        (
            vec![
                "track",
                "--jsonl",
                log.to_str().unwrap(),
                "--metrics",
                "alpah",
            ],
            "--metrics: unknown field alpah",
        ),
        (
            vec!["track", "--jsonl", bad_line.to_str().unwrap()],
            "line 2: not a SpectralMonitor record",
        ),
        (
            vec!["track", "--jsonl", log.parent().unwrap().to_str().unwrap()],
            "not a regular file",
        ),
        (
            vec!["track", "--jsonl", empty.to_str().unwrap()],
            "no monitor records",
        ),
    ] {
        let output = fixtures::run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    // Loss Hessian records whose sharpness is text, huge or missing are shown as they are and
    // drawn where they are numbers: no panic.
    let odd = log.with_extension("hessian.jsonl");
    std::fs::write(
        &odd,
        "{\"step\": 0, \"name\": \"<loss Hessian>\", \"sharpness\": \"high\"}\n\
         {\"step\": 1, \"name\": \"<loss Hessian>\", \"sharpness\": 1e308}\n\
         {\"step\": 2, \"name\": \"<loss Hessian>\", \"sharpness\": null}\n",
    )
    .unwrap();
    let figures = log.with_extension("hessian-figures");
    let table = run_ok(&[
        "track",
        "--jsonl",
        odd.to_str().unwrap(),
        "--plots",
        figures.to_str().unwrap(),
        "-q",
    ]);
    assert!(
        table.lines().next().unwrap().contains("sharpness"),
        "{table}"
    );
    assert!(
        table.contains("high") && table.contains("1.000e308"),
        "{table}"
    );
}

#[test]
fn track_needs_a_step_for_every_checkpoint() {
    let dir = fixtures::root().join("target/test-track-steps");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixtures::file("ckpt_nested.pt"), dir.join("nested.pt")).unwrap();
    std::fs::copy(fixtures::file("mlp_scripted.pt"), dir.join("final.pt")).unwrap();
    let output = fixtures::run(&["track", dir.to_str().unwrap(), "-q"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("final.pt: no step found"));
    // The nested checkpoint's `epoch` entry is its step.
    std::fs::remove_file(dir.join("final.pt")).unwrap();
    let json: Value = serde_json::from_str(&run_ok(&[
        "track",
        dir.to_str().unwrap(),
        "-f",
        "json",
        "-q",
    ]))
    .unwrap();
    assert!(json["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["step"] == 7));
}

/// The monitor takes the same validated options as `analyze`, and refuses what analyze refuses.
#[test]
fn the_monitor_refuses_invalid_options_before_training() {
    let mut request = rmt_torch::AnalysisRequest::default();
    request.rmt.tw_level = Some(1.5);
    let refused = request.resolve().err().unwrap();
    assert_eq!(
        refused.to_string(),
        "invalid option --tw-level: must be in (0, 1), got 1.5"
    );
    let refused = SpectralMonitor::new(AnalyzeOptions::default(), 0)
        .err()
        .unwrap();
    assert_eq!(
        refused.to_string(),
        "invalid option --every: must be at least 1"
    );
}
