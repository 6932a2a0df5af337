//! Jacobians against torch.func.jacrev and central finite differences, their singular values
//! against numpy's SVD, and the refusals.
use rmt_torch::model::load_tensor;
use rmt_torch::workflows::jacobian::{jacobians, Differentiable, PreparedBatch};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

use crate::fixtures::{self, floats, paired, run, run_ok};

fn model(name: &str) -> Differentiable {
    Differentiable::load(&fixtures::file(name), Device::Cpu, true, None).unwrap()
}

fn input(name: &str) -> Tensor {
    load_tensor(fixtures::file(name), None).unwrap().1
}

fn max_relative_difference(a: &Tensor, b: &Tensor) -> f64 {
    let scale = f64::try_from(b.abs().max()).unwrap();
    f64::try_from((a - b).abs().max()).unwrap() / scale
}

#[test]
fn jacobians_equal_jacrev_for_every_chunk_size() {
    for name in ["mlp", "cnn"] {
        let model = model(&format!("jac_{name}.pt"));
        let batch = input(&format!("jac_{name}_input.pt"));
        let reference = input(&format!("jac_{name}_jacrev.npy"));
        for chunk in [1, 3, 7, 1000] {
            let prepared = PreparedBatch::new(&model, &batch).unwrap();
            let ours = jacobians(&model, &prepared, Some(chunk), |_, _| {}).unwrap();
            assert_eq!(ours.size(), reference.size(), "{name}");
            let difference = max_relative_difference(&ours, &reference);
            assert!(difference < 1e-12, "{name} chunk {chunk}: {difference}");
        }
    }
}

#[test]
fn jacobians_equal_central_finite_differences() {
    for name in ["mlp", "cnn"] {
        let model = model(&format!("jac_{name}.pt"));
        let batch = input(&format!("jac_{name}_input.pt"));
        let prepared = PreparedBatch::new(&model, &batch).unwrap();
        let ours = jacobians(&model, &prepared, None, |_, _| {}).unwrap();
        let samples = batch.size()[0];
        let flat = batch.reshape([samples, -1]);
        let inputs = flat.size()[1];
        let h = 1e-6;
        let mut numeric = Vec::new();
        for i in 0..inputs {
            let step = Tensor::zeros([1, inputs], (Kind::Double, Device::Cpu));
            let _ = step.narrow(1, i, 1).fill_(h);
            let shifted = |sign: f64| (&flat + &step * sign).reshape(batch.size());
            let plus = model.forward(&shifted(1.0)).unwrap();
            let minus = model.forward(&shifted(-1.0)).unwrap();
            numeric.push((plus - minus) / (2.0 * h));
        }
        // numeric[i] is column i of every sample's J: [B, outputs] → [B, outputs, inputs].
        let numeric = Tensor::stack(&numeric, 2);
        let difference = max_relative_difference(&ours, &numeric);
        assert!(difference < 1e-6, "{name}: {difference}");
    }
}

#[test]
fn singular_values_match_numpy_and_every_input_format_agrees() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures::file("jac_singular_values.json")).unwrap(),
    )
    .unwrap();
    let model = fixtures::file("jac_mlp.pt");
    let model = model.to_str().unwrap();
    let mut reports = Vec::new();
    for (input, extra) in [
        ("jac_mlp_input.pt", None),
        ("jac_mlp_input.npy", None),
        ("jac_mlp_fortran.npy", None),
        ("jac_mlp_input.safetensors", Some("x")),
    ] {
        let path = fixtures::file(input);
        let mut args = vec![
            "jacobian",
            model,
            "--input",
            path.to_str().unwrap(),
            "--f64",
            "-f",
            "json",
        ];
        if let Some(key) = extra {
            args.extend(["--input-key", key]);
        }
        let json: Value = serde_json::from_str(&run_ok(&args)).unwrap();
        let samples = json["samples"].as_array().unwrap().clone();
        assert_eq!(samples.len(), 4, "{input}");
        for (sample, want) in paired(&samples, reference["mlp"].as_array().unwrap()) {
            let ours = floats(&sample["singular_values"]);
            let want = floats(want);
            assert_eq!(ours.len(), want.len());
            for (a, b) in ours.iter().zip(&want) {
                assert!((a - b).abs() < 1e-10 * want[0], "{input}: {a} vs numpy {b}");
            }
            // The statistics from numpy's singular values.
            let count = want.len() as f64;
            let mean: f64 = want.iter().map(|s| s * s).sum::<f64>() / count;
            let variance = want.iter().map(|s| (s * s - mean).powi(2)).sum::<f64>() / count;
            let isometric = want.iter().filter(|s| (*s - 1.0).abs() <= 0.1).count() as f64 / count;
            let condition = want[0] / want[want.len() - 1];
            for (field, expected) in [
                ("mean_sigma2", mean),
                ("var_sigma2", variance),
                ("isometry_fraction", isometric),
                ("condition_number", condition),
            ] {
                let got = sample[field].as_f64().unwrap();
                assert!(
                    (got - expected).abs() <= 1e-9 * expected.abs().max(1e-12),
                    "{input} {field}: {got} vs {expected}"
                );
            }
        }
        reports.push(samples);
    }
    for other in &reports[1..] {
        for (a, b) in paired(&reports[0], other) {
            assert_eq!(a["singular_values"], b["singular_values"]);
        }
    }
    // The batch-mean JᵀJ, and CSV.
    let path = fixtures::file("jac_mlp_input.pt");
    let args = [
        "jacobian",
        model,
        "--input",
        path.to_str().unwrap(),
        "--f64",
        "--mean-gram",
        "-f",
        "json",
    ];
    let json: Value = serde_json::from_str(&run_ok(&args)).unwrap();
    let ours = floats(&json["mean_gram_eigenvalues"]);
    let want = floats(&reference["mlp_mean_gram"]);
    assert_eq!(ours.len(), want.len());
    for (a, b) in ours.iter().zip(&want) {
        assert!(
            (a - b).abs() < 1e-10 * want[0],
            "mean JᵀJ: {a} vs numpy {b}"
        );
    }
    let csv = run_ok(&[
        "jacobian",
        model,
        "--input",
        path.to_str().unwrap(),
        "-f",
        "csv",
    ]);
    assert!(
        csv.lines().next().unwrap().contains("isometry_fraction") && csv.lines().count() == 5,
        "{csv}"
    );
    // float32 model, table output and the sample limit.
    let table = run_ok(&[
        "jacobian",
        fixtures::file("jac_mlp_float32.pt").to_str().unwrap(),
        "--input",
        fixtures::file("jac_mlp_input.npy").to_str().unwrap(),
        "--samples",
        "2",
    ]);
    assert!(
        table.contains("float32") && table.contains("mean over the first 2 of 4 samples"),
        "{table}"
    );
}

#[test]
fn tuple_outputs_need_an_index() {
    let model = fixtures::file("jac_tuple.pt");
    let input = fixtures::file("jac_mlp_input.pt");
    let base = [
        "jacobian",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "-f",
        "json",
    ];
    let output = run(&base);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--output-index"));
    let mut singles = Vec::new();
    for (index, outputs) in [("0", 5), ("1", 12)] {
        let mut args = base.to_vec();
        args.extend(["--output-index", index]);
        let json: Value = serde_json::from_str(&run_ok(&args)).unwrap();
        assert_eq!(json["outputs"], outputs);
        singles.push(json);
    }
    // Every output at once: the same analyses, in order.
    let mut args = base.to_vec();
    args.push("--each-output");
    let each: Value = serde_json::from_str(&run_ok(&args)).unwrap();
    let each = each.as_array().unwrap();
    assert_eq!(each.len(), 2);
    for (one, single) in paired(each, &singles) {
        assert_eq!(
            one["samples"][0]["singular_values"],
            single["samples"][0]["singular_values"]
        );
    }
    let mut args = base[..4].to_vec();
    args.extend(["--each-output", "-f", "csv"]);
    let csv = run_ok(&args);
    assert!(csv.starts_with("output,sample,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 2 * 4);
}

#[test]
fn bad_models_and_inputs_are_refused_in_one_line() {
    let file = |name: &str| fixtures::file(name).to_str().unwrap().to_string();
    for (model, input, extra, expect) in [
        (
            "jac_batch_dependent.pt",
            "jac_mlp_input.pt",
            None,
            "depends on the other samples",
        ),
        ("jac_argmax.pt", "jac_mlp_input.pt", None, "differentiabl"),
        ("jac_mlp.pt", "jac_int_input.pt", None, "floating-point"),
        (
            "jac_mlp.pt",
            "jac_wrong_input.pt",
            None,
            "rejected an input of shape",
        ),
        (
            "jac_mlp.pt",
            "jac_mlp_input.safetensors",
            None,
            "--input-key",
        ),
        (
            "jac_mlp.pt",
            "jac_mlp_input.safetensors",
            Some("nope"),
            "no tensor 'nope'",
        ),
        ("jac_mlp.pt", "jac_mlp.pt", None, "not a tensor file"),
        (
            "jac_mlp_input.pt",
            "jac_mlp_input.pt",
            None,
            "not a TorchScript model",
        ),
        (
            "ckpt_cnn_float32.safetensors",
            "jac_mlp_input.pt",
            None,
            "not a TorchScript model but a safetensors",
        ),
        (
            "jac_tuple.pt",
            "jac_mlp_input.pt",
            Some("--output-index=5"),
            "out of range",
        ),
    ] {
        let (model, input) = (file(model), file(input));
        let mut args = vec!["jacobian", model.as_str(), "--input", input.as_str()];
        match extra {
            Some(flag) if flag.starts_with("--") => args.push(flag),
            Some(key) => args.extend(["--input-key", key]),
            None => {}
        }
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn jacobians_on_cuda_equal_the_cpu_ones() {
    if !fixtures::capability(
        "cuda",
        tch::Cuda::is_available(),
        "jacobians_on_cuda_equal_the_cpu_ones",
    ) {
        return;
    }
    let batch = input("jac_cnn_input.pt");
    let jacobian_on = |device: Device| {
        let model =
            Differentiable::load(&fixtures::file("jac_cnn.pt"), device, true, None).unwrap();
        let prepared = PreparedBatch::new(&model, &batch).unwrap();
        jacobians(&model, &prepared, None, |_, _| {})
            .unwrap()
            .to_device(Device::Cpu)
    };
    let (cpu, cuda) = (jacobian_on(Device::Cpu), jacobian_on(Device::Cuda(0)));
    assert!(max_relative_difference(&cuda, &cpu) < 1e-10);
}

/// The guide's jacobian example: the shipped CNN on its shipped batch, summary first; the raw integer
/// pixels are refused with the conversion to make.
#[test]
fn the_shipped_models_run_on_their_shipped_batches() {
    for (model, batch) in [
        ("digits_cnn_trained.pt", "digits_batch.pt"),
        ("digits_mlp_trained.pt", "digits_mlp_batch.pt"),
    ] {
        let model = fixtures::shipped_model(model);
        let batch = fixtures::shipped_model(batch);
        let table = run_ok(&[
            "jacobian",
            model.to_str().unwrap(),
            "--input",
            batch.to_str().unwrap(),
        ]);
        let second = table.lines().nth(1).unwrap();
        assert!(second.starts_with("mean over 16 samples"), "{table}");
    }
    let model = fixtures::shipped_model("digits_cnn_trained.pt");
    let raw = fixtures::shipped_model("digits_images.npy");
    let output = run(&[
        "jacobian",
        model.to_str().unwrap(),
        "--input",
        raw.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("x.float() / 255"), "{stderr}");
    // The MLP's flat batch given to the CNN: the model's own error, whole, and the shape its
    // first weight takes.
    let flat = fixtures::shipped_model("digits_mlp_batch.pt");
    let output = run(&[
        "jacobian",
        model.to_str().unwrap(),
        "--input",
        flat.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for part in [
        "rejected an input of shape [16, 64]",
        "RuntimeError: Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [16, 64]",
        "conv1.weight [32, 1, 3, 3], takes inputs shaped [batch, 1, height, width]",
    ] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
}

/// A batch larger than the default sample count is cut to its first 32 samples, and says so;
/// `--samples all` takes every one.
#[test]
fn the_default_sample_count_is_small_and_stated() {
    let batch = fixtures::root().join("target/jacobian-40-samples.npy");
    Tensor::randn([40, 64], (tch::Kind::Float, Device::Cpu))
        .write_npy(&batch)
        .unwrap();
    let model = fixtures::shipped_model("digits_mlp_trained.pt");
    let (model, batch) = (model.to_str().unwrap(), batch.to_str().unwrap());
    let table = run_ok(&["jacobian", model, "--input", batch]);
    assert!(
        table.contains("mean over the first 32 of 40 samples (--samples all for every one)"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&run_ok(&[
        "jacobian",
        model,
        "--input",
        batch,
        "--samples",
        "all",
        "-f",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["samples"].as_array().unwrap().len(), 40);
    assert_eq!(json["samples_in_file"], 40);
}

/// `rmt-torch jacobian` of a fixture model on `jac_mlp_input.pt`, as JSON.
pub fn lanczos_json(model: &str, extra: &[&str]) -> Value {
    serde_json::from_str(&jacobian_output(model, "json", extra)).unwrap()
}

/// What `rmt-torch jacobian` writes in `format` for a fixture model on `jac_mlp_input.pt`.
fn jacobian_output(model: &str, format: &str, extra: &[&str]) -> String {
    let model = fixtures::file(model);
    let input = fixtures::file("jac_mlp_input.pt");
    let mut args = vec![
        "jacobian",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "-q",
        "-f",
        format,
    ];
    args.extend_from_slice(extra);
    run_ok(&args)
}

#[test]
fn lanczos_top_singular_values_equal_numpy_on_either_side() {
    // JJᵀ (5 outputs < 6 inputs) against numpy's SVD of torch.func's J.
    let references: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures::file("jac_singular_values.json")).unwrap(),
    )
    .unwrap();
    let ours = lanczos_json("jac_mlp.pt", &["--lanczos", "3"]);
    assert_eq!(ours["operator"], "JJᵀ");
    for (sample, expected) in paired(
        ours["samples"].as_array().unwrap(),
        references["mlp"].as_array().unwrap(),
    ) {
        let (found, expected) = (floats(&sample["top_singular_values"]), floats(expected));
        assert_eq!(sample["converged"], true);
        assert_eq!(found.len(), 3);
        for (a, b) in found.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-10 * expected[0], "{a} vs numpy {b}");
        }
    }
    // JᵀJ (12 outputs > 6 inputs) against the exact path on the same model.
    let ours = lanczos_json("jac_tuple.pt", &["--output-index", "1", "--lanczos", "4"]);
    assert_eq!(ours["operator"], "JᵀJ");
    let exact = lanczos_json("jac_tuple.pt", &["--output-index", "1"]);
    for (sample, exact) in paired(
        ours["samples"].as_array().unwrap(),
        exact["samples"].as_array().unwrap(),
    ) {
        let (found, expected) = (
            floats(&sample["top_singular_values"]),
            floats(&exact["singular_values"]),
        );
        assert_eq!(found.len(), 4);
        for (a, b) in found.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-10 * expected[0], "{a} vs exact {b}");
        }
    }
}

/// With a density: full-length quadrature runs on JJᵀ (order 5) have numpy's σ² as nodes,
/// and each sample's outliers are exactly numpy's σ² above its reported bulk edge.
#[test]
fn lanczos_density_nodes_and_outliers_are_numpys_singular_values() {
    let references: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures::file("jac_singular_values.json")).unwrap(),
    )
    .unwrap();
    let runs = 3;
    let ours = lanczos_json(
        "jac_mlp.pt",
        &[
            "--lanczos",
            "5",
            "--lanczos-density",
            &runs.to_string(),
            "--lanczos-density-steps",
            "5",
        ],
    );
    let samples = ours["samples"].as_array().unwrap();
    let expected: Vec<Vec<f64>> = references["mlp"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let density = &ours["density"];
    let nodes = density["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), runs * samples.len());
    for (index, (sample, sigma)) in paired(samples, &expected).enumerate() {
        let squares: Vec<f64> = sigma.iter().map(|s| s * s).collect();
        for run in &nodes[index * runs..(index + 1) * runs] {
            for node in floats(run) {
                let nearest = squares
                    .iter()
                    .map(|s| (s - node).abs())
                    .fold(f64::INFINITY, f64::min);
                assert!(nearest < 1e-9 * squares[0], "sample {index}: node {node}");
            }
        }
        let bulk = &sample["bulk"];
        let edge = bulk["bulk_edge"].as_f64().unwrap();
        let above: Vec<f64> = squares.iter().copied().filter(|&s| s > edge).collect();
        let outliers = floats(&bulk["outliers"]);
        assert_eq!(outliers.len(), above.len(), "sample {index}: {bulk}");
        for (ours, exact) in outliers.iter().zip(&above) {
            assert!((ours - exact).abs() < 1e-9 * squares[0]);
        }
    }
}

#[test]
fn lanczos_refuses_what_it_cannot_report() {
    let model = fixtures::file("jac_mlp.pt");
    let input = fixtures::file("jac_mlp_input.pt");
    for (extra, expected) in [
        (vec!["--lanczos", "3", "--mean-gram"], "cannot be used with"),
        (vec!["--lanczos", "0"], "singular values need between 1"),
        (vec!["--lanczos-tolerance", "1e-3"], "--lanczos"),
        (vec!["--lanczos-density", "2"], "--lanczos"),
        (
            vec![
                "--lanczos",
                "2",
                "--lanczos-density",
                "2",
                "--lanczos-density-steps",
                "0",
            ],
            "--lanczos-density-steps: must be at least 1",
        ),
    ] {
        let mut args = vec![
            "jacobian",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "-q",
        ];
        args.extend(extra.iter());
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// `--lanczos` with `-f csv` writes one row per sample: its products, convergence and top
/// singular values, the JSON's.
#[test]
fn lanczos_csv_has_one_row_per_sample() {
    let json = lanczos_json("jac_mlp.pt", &["--lanczos", "3"]);
    let csv = jacobian_output("jac_mlp.pt", "csv", &["--lanczos", "3"]);
    let (header, rows) = fixtures::csv_table(&csv);
    assert_eq!(
        header,
        [
            "sample",
            "products",
            "converged",
            "sigma_1",
            "sigma_2",
            "sigma_3"
        ]
    );
    let samples = json["samples"].as_array().unwrap();
    assert_eq!(rows.len(), samples.len());
    for (row, sample) in rows.iter().zip(samples) {
        assert_eq!(row["sample"], sample["sample"].to_string());
        let top = floats(&sample["top_singular_values"]);
        assert_eq!(top.len(), 3);
        for (rank, value) in top.iter().enumerate() {
            let found: f64 = row[&format!("sigma_{}", rank + 1)].parse().unwrap();
            assert!(
                (found - value).abs() <= 1e-12 * value.abs(),
                "{found} vs {value}"
            );
        }
    }
}

/// The table says in a sentence what χ = mean σ² means for the map, on the side of 1 the JSON
/// puts it (Pennington, Schoenholz & Ganguli 2017).
#[test]
fn the_table_reads_chi() {
    let json = lanczos_json("jac_mlp.pt", &[]);
    let chi = json["summary"]["mean_sigma2"].as_f64().unwrap();
    let table = jacobian_output("jac_mlp.pt", "table", &[]);
    let reading = table
        .lines()
        .find(|line| line.starts_with("reading: "))
        .unwrap_or_else(|| panic!("no reading: {table}"));
    let expected = if (chi - 1.0).abs() <= 0.1 {
        "≈ 1"
    } else if chi > 1.0 {
        "stretches inputs"
    } else {
        "shrinks inputs"
    };
    assert!(reading.contains(expected), "χ = {chi}: {reading}");
    assert!(reading.contains("Pennington, Schoenholz & Ganguli 2017"));
}

/// Tracy-Widom on a Jacobian with 10 outputs is flagged, in the JSON and the table, as read
/// from 10 values.
#[test]
fn tests_on_few_singular_values_are_flagged() {
    let model = fixtures::shipped_model("digits_mlp_trained.pt");
    let batch = fixtures::shipped_model("digits_mlp_batch.pt");
    let args = [
        "jacobian",
        model.to_str().unwrap(),
        "--input",
        batch.to_str().unwrap(),
        "--samples",
        "2",
        "-q",
    ];
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&[&args[..], &["-f", "json"]].concat())).unwrap();
    let flags = &json["samples"][0]["small_samples"];
    assert!(
        flags
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["statistic"] == "tw_p_value" && f["values"] == 10),
        "{flags}"
    );
    let table = run_ok(&args);
    assert!(table.contains("tw_p_value(10)"), "{table}");
}
