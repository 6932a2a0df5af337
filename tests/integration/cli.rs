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
    assert_eq!(json["schema"], "rmt-torch/analysis/v2");
    assert_eq!(json["format"], "torch_script");
    let settings = json["settings"].as_object().unwrap();
    let names: Vec<&String> = settings.keys().collect();
    assert_eq!(
        names,
        rmt_torch::AnalysisRequest::names()
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(json["settings"]["convention"], "ww");
    assert_eq!(json["settings"]["eigenvalues"], true);
    assert_eq!(json["settings"]["min_evals"], 8);
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4);
    let keys = "name N M Q rf num_evals lambda_max norm log_norm spectral_norm log_spectral_norm \
                stable_rank entropy condition_number sigma2 mp_lambda_plus num_spikes alpha xmin \
                xmax D sigma num_pl_spikes fit_method alpha_weighted log_alpha_norm quality warning \
                eigenvalues";
    for key in keys.split_whitespace() {
        assert!(layers[1].get(key).is_some(), "missing {key}");
    }
    assert_eq!(layers[0]["name"], "conv1.weight");
    assert_eq!(layers[1]["name"], "conv2.weight");
    assert_eq!(layers[1]["eigenvalues"].as_array().unwrap().len(), 32 * 9);
    let summary = &json["summary"];
    let labelled: u64 = [
        "random_like",
        "well_trained",
        "over_trained",
        "under_trained",
        "fit_failed",
    ]
    .iter()
    .map(|key| summary[key].as_u64().unwrap())
    .sum();
    assert_eq!(labelled, 4);
    assert_eq!(summary["layers"], 4);
    let alphas: Vec<f64> = layers.iter().filter_map(|l| l["alpha"].as_f64()).collect();
    let mean = alphas.iter().sum::<f64>() / alphas.len() as f64;
    assert!((summary["alpha"].as_f64().unwrap() - mean).abs() < 1e-12);
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
        lines[0].starts_with(
            "layer_id,name,kind,block,role,dtype,N,M,Q,rf,num_evals,lambda_min,lambda_max"
        ),
        "{}",
        lines[0]
    );
    // Not a transformer: no block, no role (empty cells).
    assert!(lines[1].starts_with("0,fc1.weight,dense,,,float32,512,64,8.0,1,64,"));
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

/// `LAYER_FIELDS` is exactly what a layer record can hold: every opt-in result asked for.
#[test]
fn layer_fields_list_every_field_of_a_layer_record() {
    use rmt_torch::analysis::LAYER_FIELDS;
    use rmt_torch::{analyze, Model};
    let options = fixtures::options(serde_json::json!({
        "device": "cpu", "randomize": true, "seed": 1, "clip_fingers": true,
        "vectors": true, "semicircle": true, "figure_data": true,
    }));
    let model = Model::load(fixtures::shipped_model("digits_mlp_trained.pt")).unwrap();
    let analysis = analyze(&model, &options).unwrap();
    let json = serde_json::to_value(&analysis).unwrap();
    let mut seen: Vec<String> = Vec::new();
    for layer in json["layers"].as_array().unwrap() {
        for key in layer.as_object().unwrap().keys() {
            if !seen.contains(key) {
                seen.push(key.clone());
            }
        }
    }
    // A LoRA update read from its factors adds its `rank`.
    let factor = |name: &str, rows: i64, cols: i64| {
        let values = tch::Tensor::randn([rows, cols], (tch::Kind::Float, tch::Device::Cpu));
        Box::new(rmt_torch::model::NamedTensor::in_memory(name, values))
    };
    let update = rmt_torch::model::adapter::LowRank {
        a: factor("a", 4, 64),
        b: factor("b", 32, 4),
        scale: 2.0,
        layout: rmt_torch::model::adapter::Layout::Product,
    }
    .read_into_memory("lora.weight")
    .unwrap();
    let adapter = Model {
        path: "adapter".into(),
        format: rmt_torch::model::FileFormat::LoraAdapter,
        tensors: vec![update],
        other_entries: Vec::new(),
        directory: None,
    };
    // A fit of FARMS's windows says how many it pooled.
    let farms = fixtures::options(serde_json::json!({"device": "cpu", "estimator": "farms"}));
    let json = serde_json::to_value(analyze(&model, &farms).unwrap()).unwrap();
    for key in json["layers"][0].as_object().unwrap().keys() {
        if !seen.contains(key) {
            seen.push(key.clone());
        }
    }
    let plain = fixtures::options(serde_json::json!({"device": "cpu"}));
    let json = serde_json::to_value(analyze(&adapter, &plain).unwrap()).unwrap();
    assert_eq!(json["layers"][0]["rank"], 4);
    for key in json["layers"][0].as_object().unwrap().keys() {
        if !seen.contains(key) {
            seen.push(key.clone());
        }
    }
    let mut listed: Vec<String> = LAYER_FIELDS.iter().map(|f| f.to_string()).collect();
    seen.sort();
    listed.sort();
    assert_eq!(seen, listed);
}

/// The analysis JSON reads back into the same typed `Analysis` (what the zoo's cache and
/// `zoo merge` rely on), every opt-in result included, on a convolutional and a dense model.
#[test]
fn analyses_read_back_from_their_json_unchanged() {
    use rmt_torch::{analyze, Analysis, Model};
    let options = fixtures::options(serde_json::json!({
        "device": "cpu", "randomize": true, "clip_fingers": true, "vectors": true,
        "semicircle": true, "figure_data": true, "number_variance": [1, 2, 4],
    }));
    for name in ["digits_mlp_trained.pt", "digits_cnn_trained.pt"] {
        let model = Model::load(fixtures::shipped_model(name)).unwrap();
        let analysis = analyze(&model, &options).unwrap();
        let text = serde_json::to_string(&analysis).unwrap();
        let back: Analysis = serde_json::from_str(&text).unwrap();
        assert_eq!(back, analysis, "{name}");
        assert_eq!(serde_json::to_string(&back).unwrap(), text, "{name}");
    }
}

#[test]
fn doctor_reports_the_linked_libtorch() {
    let json: Value = serde_json::from_str(&run_ok(&["doctor", "-f", "json"])).unwrap();
    assert!(
        json["libtorch_version"]
            .as_str()
            .unwrap()
            .starts_with("2.11.0"),
        "{json}"
    );
    // The process loaded a libtorch: the linked one, or the one LD_LIBRARY_PATH names.
    let real = |dir: &str| std::fs::canonicalize(dir).ok();
    let loaded = real(json["libtorch_loaded_from"].as_str().unwrap());
    let search_path = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    assert!(
        loaded.is_some()
            && (loaded == real(json["libtorch_lib"].as_str().unwrap())
                || search_path.split(':').any(|dir| real(dir) == loaded)),
        "{json}"
    );
    // Python's torch on the same machine is the independent witness of CUDA.
    let python = std::process::Command::new(fixtures::python())
        .args(["-c", "import torch; print(torch.cuda.is_available())"])
        .output()
        .unwrap();
    let python_sees_cuda = String::from_utf8_lossy(&python.stdout).trim() == "True";
    assert_eq!(json["cuda_available"], python_sees_cuda, "{json}");
    let csv = run_ok(&["doctor", "-f", "csv"]);
    assert!(csv.starts_with("setting,value\n"), "{csv}");
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
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--seed".into(),
                "3".into(),
            ],
            "--seed: a seed is used only with randomize",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--plot-format".into(),
                "svg".into(),
            ],
            "--plots",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--tw-level".into(),
                "1.5".into(),
            ],
            "--tw-level: must be in (0, 1)",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--min-evals".into(),
                "0".into(),
            ],
            "--min-evals: must be at least 1",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "-o".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
            ],
            "refusing to replace it",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--conv".into(),
                "sliced".into(),
            ],
            "invalid value 'sliced'",
        ),
        (
            vec![
                "report".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--vectors".into(),
                "--no-vectors".into(),
            ],
            "cannot be used with",
        ),
        (
            vec![
                "analyze".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--eigenvalues".into(),
            ],
            "--eigenvalues adds each layer's ESD to the JSON: add -f json",
        ),
        (
            vec![
                "zoo".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--eigenvalues".into(),
            ],
            "--eigenvalues adds each layer's ESD to the JSON: add -f json",
        ),
        (
            vec![
                "track".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--figure-data".into(),
                "-f".into(),
                "csv".into(),
            ],
            "--figure-data adds what the figures draw to the JSON",
        ),
        (
            vec![
                "report".into(),
                fixtures::file("mlp_scripted.pt").display().to_string(),
                "--eigenvalues".into(),
            ],
            "report keeps every layer's eigenvalues for its figures",
        ),
        (
            vec![
                "jacobian".into(),
                fixtures::file("jac_mlp.pt").display().to_string(),
                "--input".into(),
                fixtures::file("jac_mlp_input.pt").display().to_string(),
                "--semicircle".into(),
            ],
            "jacobian tests the singular values of J",
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

/// Counts read as English: one layer, one tensor, one figure (not "1 layers").
#[test]
fn counts_of_one_are_singular() {
    use rmt_torch::report::{OutputFormat, Render};
    use rmt_torch::{analyze, Model};
    let weights = tch::Tensor::randn([40, 24], (tch::Kind::Double, tch::Device::Cpu));
    let bias = tch::Tensor::zeros([40], (tch::Kind::Double, tch::Device::Cpu));
    let model = Model::from_tensors("one", [("fc.weight", &weights), ("fc.bias", &bias)]);
    let options = fixtures::options(serde_json::json!({"device": "cpu"}));
    let table = analyze(&model, &options)
        .unwrap()
        .render(OutputFormat::Table)
        .unwrap();
    for wanted in ["1 layer on", "of 1 layer has", "1 tensor skipped"] {
        assert!(table.contains(wanted), "{wanted}: {table}");
    }
    let dir = fixtures::output_dir("singular");
    let path = dir.join("one.safetensors");
    let script = "import sys, torch\nfrom safetensors.torch import save_file\n\
                  save_file({'fc.weight': torch.randn(40, 24)}, sys.argv[1])\nprint('[]')";
    let _: Vec<u8> = fixtures::python_json(script, &[&path]);
    let info = run_ok(&["info", path.to_str().unwrap()]);
    assert!(info.contains("1 tensor, 1 weight matrix"), "{info}");
    let output = fixtures::run(&[
        "theory",
        "kernel",
        "--n",
        "32",
        "--plots",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wrote 1 figure to"), "{stderr}");
}

/// A p-value too small to print reads `<1e-4`, never a `0.0000` that reads as impossible.
#[test]
fn tiny_p_values_print_as_bounds() {
    let model = fixtures::shipped_model("digits_cnn_trained.pt");
    let table = run_ok(&["analyze", model.to_str().unwrap(), "-q"]);
    let header = table.lines().find(|l| l.starts_with("name ")).unwrap();
    let column = header
        .split_whitespace()
        .position(|h| h == "tw_p_value")
        .unwrap();
    let cells: Vec<&str> = table
        .lines()
        .filter(|l| l.contains(".weight"))
        .map(|l| l.split_whitespace().nth(column).unwrap())
        .collect();
    assert_eq!(cells.len(), 4, "{table}");
    assert!(cells.contains(&"<1e-4"), "{cells:?}");
    assert!(
        !cells.iter().any(|c| c.parse::<f64>() == Ok(0.0)),
        "{cells:?}"
    );
}

/// The table's headers are the JSON's field names, the default table fits a wide terminal,
/// `--wide` adds the rest, and statistics from too few values are flagged in both.
#[test]
fn table_headers_are_json_names_and_small_samples_are_flagged() {
    let model = fixtures::shipped_model("digits_cnn_trained.pt");
    let path = model.to_str().unwrap();
    let json: Value =
        serde_json::from_str(&run_ok(&["analyze", path, "-q", "-f", "json", "--vectors"])).unwrap();
    let layers = json["layers"].as_array().unwrap();
    let headers = |text: &str| -> Vec<String> {
        let line = text.lines().find(|l| l.starts_with("name ")).unwrap();
        line.split_whitespace().map(String::from).collect()
    };
    let compact = run_ok(&["analyze", path, "-q", "--vectors"]);
    let wide = run_ok(&["analyze", path, "-q", "--vectors", "--wide"]);
    let (compact_headers, wide_headers) = (headers(&compact), headers(&wide));
    assert!(wide_headers.len() > compact_headers.len() + 5);
    for header in &wide_headers {
        assert!(
            layers.iter().any(|l| l.get(header).is_some()),
            "the table's {header} is not a JSON field"
        );
    }
    let table_width = compact
        .lines()
        .filter(|l| l.starts_with("conv") || l.starts_with("fc"))
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(table_width <= 160, "{table_width} columns:\n{compact}");
    // conv1 has 9 eigenvalues and an 8-value tail: flagged in the JSON and the table.
    let flags: Vec<(String, u64)> = layers[0]["small_samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["statistic"].as_str().unwrap().to_string(),
                f["values"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(flags.contains(&("alpha".into(), 8)), "{flags:?}");
    assert!(flags.contains(&("tw_p_value".into(), 9)), "{flags:?}");
    assert!(
        layers[2].get("small_samples").is_none(),
        "fc1 has 256 values"
    );
    let conv1 = compact.lines().find(|l| l.starts_with("conv1")).unwrap();
    assert!(
        conv1.contains("alpha(8)") && conv1.contains("tw_p_value(9)"),
        "{conv1}"
    );
    assert!(compact.contains("fewer than 30 values"));
    assert!(wide.contains("num_spikes counts eigenvalues above the Marchenko-Pastur edge"));
    let refused = run(&["analyze", path, "-q", "--wide", "-f", "csv"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--wide widens the table"));
}

/// A file holding one bare tensor (a saved input batch) is data, not a model: `analyze` says so,
/// as `zoo` does, and analyses it only when it is named.
#[test]
fn a_bare_tensor_is_refused_unless_named() {
    let batch = fixtures::shipped_model("digits_batch.pt");
    let path = batch.to_str().unwrap();
    let refused = run(&["analyze", path, "-q"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("one bare tensor") && stderr.contains("--layers tensor"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let named = run_ok(&["analyze", path, "-q", "--layers", "tensor", "-f", "json"]);
    let json: Value = serde_json::from_str(&named).unwrap();
    assert_eq!(json["layers"][0]["name"], "tensor");
}
