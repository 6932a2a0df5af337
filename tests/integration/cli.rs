//! The command line: outputs machines can parse, and one-line errors for bad input.
use serde_json::Value;

use crate::fixtures::{self, run, run_ok};

#[test]
fn analyze_json_is_the_documented_schema() {
    let model = fixtures::shipped_model("digits_cnn_trained.pt");
    let out = run_ok(&[
        "analyze",
        model.to_str().unwrap(),
        "--format",
        "json",
        "--eigenvalues",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["schema"], "rmt-torch/analysis/v1");
    assert_eq!(json["format"], "torch_script");
    assert_eq!(json["convention"], "ww");
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4);
    let keys = "name N M Q rf num_evals lambda_max norm log_norm spectral_norm log_spectral_norm \
                stable_rank entropy condition_number sigma2 mp_lambda_plus num_spikes alpha xmin \
                xmax D sigma num_pl_spikes fit_method alpha_weighted log_alpha_norm warning eigenvalues";
    for key in keys.split_whitespace() {
        assert!(layers[1].get(key).is_some(), "missing {key}");
    }
    assert_eq!(layers[0]["name"], "conv1.weight");
    assert_eq!(layers[1]["name"], "conv2.weight");
    assert_eq!(layers[1]["eigenvalues"].as_array().unwrap().len(), 32 * 9);
    let summary = &json["summary"];
    let labelled: u64 = [
        "well_trained",
        "over_trained",
        "under_trained",
        "fit_failed",
    ]
    .iter()
    .map(|key| summary[key].as_u64().unwrap())
    .sum();
    assert_eq!(labelled, 4);
    assert!(summary["alpha"].as_f64().unwrap() > 1.0);
}

#[test]
fn csv_has_one_row_per_layer_under_json_names() {
    let model = fixtures::shipped_model("digits_mlp_trained.pt");
    let out = run_ok(&[
        "analyze",
        model.to_str().unwrap(),
        "-f",
        "csv",
        "--layers",
        "fc[12]",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("layer_id,name,kind,dtype,N,M,Q,rf,num_evals,lambda_min,lambda_max"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("0,fc1.weight,dense,float32,512,64,8.0,1,64,"));
}

#[test]
fn table_output_writes_to_a_file() {
    let model = fixtures::shipped_model("digits_mlp_init.pt");
    let path = fixtures::dir().join("mlp_table.txt");
    run_ok(&[
        "analyze",
        model.to_str().unwrap(),
        "--convention",
        "rmt",
        "-o",
        path.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains("fc2.weight") && text.contains("ESD convention rmt"),
        "{text}"
    );
}

#[test]
fn info_lists_tensors_and_verdicts() {
    let out = run_ok(&[
        "info",
        fixtures::file("mixed_scripted.pt").to_str().unwrap(),
        "-f",
        "json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    let tensors = json["tensors"].as_array().unwrap();
    let verdict = |name: &str| {
        tensors
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))["analysed"]
            .as_bool()
            .unwrap()
    };
    assert!(verdict("lstm.weight_hh_l0") && verdict("embed.weight") && verdict("conv1d.weight"));
    assert!(!verdict("lstm.bias_ih_l0") && !verdict("norm.weight"));
}

#[test]
fn doctor_reports_the_linked_libtorch() {
    let json: Value = serde_json::from_str(&run_ok(&["doctor", "--json"])).unwrap();
    assert!(
        json["libtorch_version"]
            .as_str()
            .unwrap()
            .starts_with("2.11.0"),
        "{json}"
    );
    assert_eq!(json["cuda_available"], tch::Cuda::is_available());
}

/// Each bad input: exit code 2, one line on stderr that says what is wrong, no panic.
#[test]
fn bad_input_gets_a_one_line_error() {
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["analyze".into(), "/nonexistent/model.pt".into()],
            "cannot read",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("empty.pt").display().to_string(),
            ],
            "empty",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("random.bin").display().to_string(),
            ],
            "not a model file",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("truncated.pt").display().to_string(),
            ],
            "truncated",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("truncated.safetensors")
                    .display()
                    .to_string(),
            ],
            "truncated",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("nan_weights.safetensors")
                    .display()
                    .to_string(),
            ],
            "2 non-finite values",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("no_weights.safetensors")
                    .display()
                    .to_string(),
            ],
            "no weight matrices",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--layers".into(),
                "nomatch".into(),
            ],
            "does not match --layers",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--layers".into(),
                "(".into(),
            ],
            "not a valid regular expression",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--device".into(),
                "cuda:63".into(),
            ],
            "not available",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--device".into(),
                "tpu".into(),
            ],
            "expected auto, cpu, cuda or cuda:N",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}
