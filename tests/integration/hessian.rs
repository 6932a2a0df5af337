//! Loss Hessians by Lanczos against the exact Hessians torch.autograd.functional.hessian
//! forms (scripts/make_fixtures.py): top eigenvalues, repeated ones included, Hutchinson's
//! trace within its standard error, stochastic Lanczos quadrature, mini-batches, refusals.
use serde_json::Value;

use crate::fixtures::{self, floats, run, run_ok};

/// The exact reference for `loss/block` (block `all` or `last`, the parameters named `2.…`).
fn exact(key: &str) -> Value {
    let text = std::fs::read_to_string(fixtures::file("hess_reference.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()[key].clone()
}

/// `rmt-torch hessian` on the fixture model in float64 with `extra` arguments, as JSON.
pub fn hessian(loss: &str, extra: &[&str]) -> Value {
    serde_json::from_str(&hessian_output(loss, "json", extra)).unwrap()
}

/// What `rmt-torch hessian` writes in `format` on the fixture model in float64.
fn hessian_output(loss: &str, format: &str, extra: &[&str]) -> String {
    let model = fixtures::file("hess_mlp.pt");
    let input = fixtures::file("hess_x.npy");
    let target = fixtures::file(if loss == "mse" {
        "hess_targets.npy"
    } else {
        "hess_labels.npy"
    });
    let mut args = vec![
        "hessian",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--loss",
        loss,
        "--f64",
        "-q",
        "-f",
        format,
    ];
    args.extend_from_slice(extra);
    run_ok(&args)
}

/// The `k` largest exact eigenvalues, descending.
fn exact_top(key: &str, k: usize) -> Vec<f64> {
    let mut values = floats(&exact(key)["eigenvalues"]);
    values.reverse();
    values.truncate(k);
    values
}

#[test]
fn top_eigenvalues_equal_the_exact_hessians() {
    // mse/last is (2/(B·C)) Σ x̃x̃ᵀ ⊗ I_C: every eigenvalue three times, which one Lanczos run
    // sees once; the deflated restarts must find every copy.
    for (loss, block, layers) in [
        ("cross-entropy", "all", None),
        ("mse", "all", None),
        ("cross-entropy", "last", Some(r"^2\.")),
        ("mse", "last", Some(r"^2\.")),
    ] {
        let key = format!("{loss}/{block}");
        let mut extra = vec!["--top-k", "5", "--tolerance", "1e-8"];
        if let Some(pattern) = layers {
            extra.extend(["--layers", pattern]);
        }
        let ours = hessian(loss, &extra);
        assert_eq!(ours["converged"], true, "{key}");
        let expected = exact_top(&key, 5);
        let found = floats(&ours["top_eigenvalues"]);
        assert_eq!(found.len(), 5, "{key}");
        for (i, (a, b)) in found.iter().zip(&expected).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs(),
                "{key} #{i}: {a} vs exact {b}"
            );
        }
        let dimension = floats(&exact(&key)["eigenvalues"]).len() as i64;
        assert_eq!(ours["dimension"].as_i64(), Some(dimension), "{key}");
        let loss_value = exact(&key)["loss"].as_f64().unwrap();
        assert!((ours["loss_value"].as_f64().unwrap() - loss_value).abs() < 1e-12 * loss_value);
    }
}

#[test]
fn hutchinson_trace_lies_within_its_standard_error_of_the_exact_trace() {
    for loss in ["cross-entropy", "mse"] {
        let ours = hessian(loss, &["--top-k", "0", "--trace", "300"]);
        let (trace, stderr) = (
            ours["trace"].as_f64().unwrap(),
            ours["trace_stderr"].as_f64().unwrap(),
        );
        let exact_trace = exact(&format!("{loss}/all"))["trace"].as_f64().unwrap();
        assert!(
            stderr > 0.0 && stderr < 0.2 * exact_trace.abs(),
            "{loss}: ± {stderr}"
        );
        assert!(
            (trace - exact_trace).abs() <= 4.0 * stderr,
            "{loss}: {trace} ± {stderr} vs exact {exact_trace}"
        );
        assert_eq!(ours["products"].as_u64(), Some(300));
    }
}

#[test]
fn quadrature_of_full_length_runs_is_exact_and_its_density_is_normalised() {
    let key = "cross-entropy/all";
    let eigenvalues = floats(&exact(key)["eigenvalues"]);
    let scale = eigenvalues.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let runs = 20;
    let ours = hessian(
        "cross-entropy",
        &["--top-k", "0", "--density", "20", "--density-steps", "200"],
    );
    let density = &ours["density"];
    let mut first_moments = Vec::new();
    for (nodes, weights) in density_runs(density) {
        assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-10);
        // A run over the whole space is Gauss quadrature on the exact spectrum: each node of
        // visible weight is an eigenvalue.
        for (node, weight) in nodes.iter().zip(&weights) {
            if *weight > 1e-8 {
                let nearest = eigenvalues
                    .iter()
                    .map(|e| (e - node).abs())
                    .fold(f64::INFINITY, f64::min);
                assert!(
                    nearest < 1e-8 * scale,
                    "node {node} is no eigenvalue ({nearest})"
                );
            }
        }
        first_moments.push(nodes.iter().zip(&weights).map(|(n, w)| n * w).sum::<f64>());
    }
    assert_eq!(first_moments.len(), runs);
    // Each run's first moment is vᵀHv/‖v‖², whose mean over Rademacher v is tr H / P.
    let mean = first_moments.iter().sum::<f64>() / runs as f64;
    let spread = (first_moments
        .iter()
        .map(|m| (m - mean).powi(2))
        .sum::<f64>()
        / (runs - 1) as f64
        / runs as f64)
        .sqrt();
    let expected = eigenvalues.iter().sum::<f64>() / eigenvalues.len() as f64;
    assert!(
        (mean - expected).abs() <= 4.0 * spread,
        "{mean} ± {spread} vs {expected}"
    );
    let (x, y) = (floats(&density["x"]), floats(&density["y"]));
    let integral: f64 = x
        .windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum();
    assert!((integral - 1.0).abs() < 1e-3, "∫ρ = {integral}");
}

/// With every eigenvalue computed (top-k = the order) and full-length quadrature runs, the
/// outliers are exactly the exact eigenvalues above the reported bulk edge, and the bulk's
/// centre is the mean of the others within the quadrature's standard error.
#[test]
fn the_bulk_reading_counts_the_exact_eigenvalues_above_its_edge() {
    let key = "cross-entropy/all";
    let mut eigenvalues = floats(&exact(key)["eigenvalues"]);
    eigenvalues.sort_by(|a, b| b.total_cmp(a));
    let order = eigenvalues.len();
    let runs = 30;
    let ours = hessian(
        "cross-entropy",
        &[
            "--top-k",
            &order.to_string(),
            "--density",
            &runs.to_string(),
            "--density-steps",
            &order.to_string(),
        ],
    );
    let bulk = &ours["bulk"];
    let edge = bulk["bulk_edge"].as_f64().unwrap();
    let outliers = floats(&bulk["outliers"]);
    let above: Vec<f64> = eigenvalues.iter().copied().filter(|&v| v > edge).collect();
    assert_eq!(outliers.len(), above.len(), "{bulk}");
    for (ours, exact) in outliers.iter().zip(&above) {
        assert!((ours - exact).abs() < 1e-9, "{ours} vs {exact}");
    }
    assert!(!above.is_empty() && above.len() < order);
    assert_eq!(bulk["more_outliers_possible"], false);
    let rest = &eigenvalues[above.len()..];
    let bulk_mean = rest.iter().sum::<f64>() / rest.len() as f64;
    // The centre is (N·m̂₁ − Σ outliers)/(N − outliers); m̂₁ is the runs' mean of vᵀHv/‖v‖².
    let first_moments: Vec<f64> = density_runs(&ours["density"])
        .map(|(nodes, weights)| nodes.iter().zip(&weights).map(|(n, w)| n * w).sum())
        .collect();
    let mean = first_moments.iter().sum::<f64>() / runs as f64;
    let stderr = (first_moments
        .iter()
        .map(|m| (m - mean).powi(2))
        .sum::<f64>()
        / ((runs - 1) * runs) as f64)
        .sqrt();
    let centre_stderr = stderr * order as f64 / rest.len() as f64;
    let semicircle = &bulk["semicircle"];
    assert!(
        (semicircle["center"].as_f64().unwrap() - bulk_mean).abs() <= 4.0 * centre_stderr,
        "{semicircle} vs {bulk_mean} ± {centre_stderr}"
    );
    let negative = eigenvalues.iter().filter(|&&v| v < 0.0).count() as f64 / order as f64;
    assert!((bulk["negative_mass"].as_f64().unwrap() - negative).abs() < 0.15);
}

/// Each run's nodes and weights of a density in the JSON.
fn density_runs(density: &Value) -> impl Iterator<Item = (Vec<f64>, Vec<f64>)> + '_ {
    density["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(density["weights"].as_array().unwrap())
        .map(|(nodes, weights)| (floats(nodes), floats(weights)))
}

#[test]
fn mini_batches_and_reruns_give_the_same_hessian() {
    let whole = hessian(
        "mse",
        &["--top-k", "3", "--tolerance", "1e-10", "--trace", "5"],
    );
    let streamed = hessian(
        "mse",
        &[
            "--top-k",
            "3",
            "--tolerance",
            "1e-10",
            "--trace",
            "5",
            "--batch-size",
            "7",
        ],
    );
    assert_eq!(streamed["batch_size"].as_u64(), Some(7));
    for (a, b) in floats(&whole["top_eigenvalues"])
        .iter()
        .zip(floats(&streamed["top_eigenvalues"]))
    {
        assert!((a - b).abs() < 1e-9 * a.abs(), "{a} vs {b}");
    }
    let (a, b) = (
        whole["trace"].as_f64().unwrap(),
        streamed["trace"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-10 * a.abs(), "seeded traces {a} vs {b}");
    let again = hessian(
        "mse",
        &["--top-k", "3", "--tolerance", "1e-10", "--trace", "5"],
    );
    assert_eq!(whole["top_eigenvalues"], again["top_eigenvalues"]);
    assert_eq!(whole["trace"], again["trace"]);
}

#[test]
fn the_top_eigenvector_is_the_exact_one() {
    let ours = hessian(
        "cross-entropy",
        &["--top-k", "2", "--eigenvectors", "--tolerance", "1e-10"],
    );
    let exact_vector = floats(&exact("cross-entropy/all")["top_vector"]);
    let top = floats(&ours["top"][0]["eigenvector"]);
    assert_eq!(top.len(), exact_vector.len());
    let norm = top.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-10, "‖y‖ = {norm}");
    let overlap: f64 = top.iter().zip(&exact_vector).map(|(a, b)| a * b).sum();
    assert!(
        overlap.abs() > 1.0 - 1e-8,
        "|yᵀy_exact| = {}",
        overlap.abs()
    );
}

#[test]
fn bad_targets_and_options_are_one_line_errors() {
    let model = fixtures::file("hess_mlp.pt");
    let input = fixtures::file("hess_x.npy");
    let labels = fixtures::file("hess_labels.npy");
    let floats_file = fixtures::file("hess_targets.npy");
    let short = fixtures::file("jac_int_input.pt");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    for (target, extra, expected) in [
        (&floats_file, vec![], "class indices"),
        (&short, vec![], "expected 40 of them"),
        (
            &labels,
            vec!["--loss", "mse"],
            "floating-point targets with 3 values",
        ),
        (&labels, vec!["--layers", "nothing"], "no parameter matches"),
        (
            &labels,
            vec!["--top-k", "7", "--max-iterations", "5"],
            "--top-k: 7 eigenvalues need",
        ),
        (
            &labels,
            vec!["--tolerance", "2"],
            "--tolerance: must lie in (0, 1)",
        ),
    ] {
        let mut args = vec![
            "hessian".to_string(),
            path(&model),
            "--input".into(),
            path(&input),
            "--target".into(),
            path(target),
            "-q".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&refs);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn agrees_with_pyhessian_in_fewer_products() {
    let script = fixtures::root().join("scripts/pyhessian_reference.py");
    let (model, input, labels) = (
        fixtures::file("hess_mlp.pt"),
        fixtures::file("hess_x.npy"),
        fixtures::file("hess_labels.npy"),
    );
    let mut args = vec![
        script.as_os_str(),
        model.as_os_str(),
        input.as_os_str(),
        labels.as_os_str(),
    ];
    args.extend(
        ["--top-k", "2", "--tolerance", "1e-6", "--trace", "300"]
            .iter()
            .map(std::ffi::OsStr::new),
    );
    let theirs: Value = fixtures::python_args_json(&args);
    let ours = hessian("cross-entropy", &["--top-k", "2", "--trace", "300"]);
    // Power iteration stopped at a relative change of 1e-6 is about that exact.
    for (a, b) in floats(&ours["top_eigenvalues"])
        .iter()
        .zip(floats(&theirs["top_eigenvalues"]))
    {
        assert!((a - b).abs() < 1e-4 * a.abs(), "{a} vs PyHessian {b}");
    }
    let top_products = ours["products"].as_u64().unwrap() - 300;
    assert!(
        top_products < theirs["top_products"].as_u64().unwrap(),
        "{top_products} products against PyHessian's {}",
        theirs["top_products"]
    );
    let (trace, stderr) = (
        ours["trace"].as_f64().unwrap(),
        ours["trace_stderr"].as_f64().unwrap(),
    );
    let (their_trace, their_stderr) = (
        theirs["trace"].as_f64().unwrap(),
        theirs["trace_stderr"].as_f64().unwrap(),
    );
    let band = 4.0 * (stderr.powi(2) + their_stderr.powi(2)).sqrt();
    assert!(
        (trace - their_trace).abs() <= band,
        "{trace} ± {stderr} vs PyHessian {their_trace} ± {their_stderr}"
    );
}

#[test]
fn plots_draw_the_density_with_the_top_eigenvalues() {
    let directory = fixtures::output_dir("hessian_plots");
    let ours = hessian(
        "cross-entropy",
        &[
            "--density",
            "2",
            "--top-k",
            "3",
            "--plots",
            directory.to_str().unwrap(),
            "--plot-format",
            "svg",
        ],
    );
    assert!(ours["density"].is_object());
    let svg = std::fs::read_to_string(directory.join("hessian_density.svg")).unwrap();
    for text in [
        "hess_mlp.pt: loss Hessian spectral density",
        "SLQ density (2 runs)",
        "top 3 eigenvalues (Lanczos)",
        "fitted semicircle (continuous part)",
        " above)",
    ] {
        assert!(svg.contains(text), "{text} missing");
    }
    let model = fixtures::file("hess_mlp.pt");
    let input = fixtures::file("hess_x.npy");
    let labels = fixtures::file("hess_labels.npy");
    let output = run(&[
        "hessian",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--target",
        labels.to_str().unwrap(),
        "--plots",
        directory.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("add --density"));
}

/// `-f csv` writes one row per top eigenvalue, the JSON's values.
#[test]
fn the_csv_has_one_row_per_top_eigenvalue() {
    let json = hessian("mse", &["--top-k", "3"]);
    let csv = hessian_output("mse", "csv", &["--top-k", "3"]);
    let (header, rows) = fixtures::csv_table(&csv);
    assert_eq!(header, ["rank", "eigenvalue", "residual"]);
    let expected = floats(&json["top_eigenvalues"]);
    assert_eq!(rows.len(), expected.len());
    for (rank, (row, value)) in rows.iter().zip(&expected).enumerate() {
        assert_eq!(row["rank"], (rank + 1).to_string());
        let found: f64 = row["eigenvalue"].parse().unwrap();
        assert!(
            (found - value).abs() <= 1e-12 * value.abs(),
            "{found} vs {value}"
        );
    }
}

/// The table ends its numbers with a reading: the stable learning-rate bound 2/λmax the
/// sharpness sets (Cohen et al. 2021), computed from the JSON's top eigenvalue.
#[test]
fn the_table_reads_the_sharpness_as_a_learning_rate_bound() {
    let json = hessian("mse", &["--top-k", "2"]);
    let sharpness = floats(&json["top_eigenvalues"])[0];
    assert!(sharpness > 0.0);
    let table = hessian_output("mse", "table", &["--top-k", "2"]);
    let bound = rmt_torch::report::format_number(2.0 / sharpness);
    assert!(
        table.contains(&format!("below 2/λmax = {bound}")) && table.contains("Cohen et al. 2021"),
        "{table}"
    );
}

/// The shipped MLP's cross-entropy Hessian over 16 samples has rank far below its 301 066
/// parameters (the Gauss-Newton part's is at most 16 × 9): its bulk sits at 0, and the report
/// says so, counting every positive top eigenvalue as an outlier, rather than fitting a
/// Marchenko-Pastur "bulk" to the top eigenvalues themselves.
#[test]
fn a_low_rank_hessian_is_read_as_a_bulk_at_zero() {
    let model = fixtures::shipped_model("digits_mlp_trained.pt");
    let batch = fixtures::shipped_model("digits_mlp_batch.pt");
    let labels = fixtures::shipped_model("digits_batch_labels.pt");
    let args = [
        "hessian",
        model.to_str().unwrap(),
        "--input",
        batch.to_str().unwrap(),
        "--target",
        labels.to_str().unwrap(),
        "--density",
        "4",
        "-q",
    ];
    let json: Value =
        serde_json::from_str(&run_ok(&[&args[..], &["-f", "json"]].concat())).unwrap();
    let bulk = &json["bulk"];
    assert_eq!(bulk["shape"], "at-zero", "{bulk}");
    assert_eq!(bulk["bulk_edge"], 0.0);
    let top: Vec<f64> = floats(&json["top_eigenvalues"])
        .into_iter()
        .filter(|&v| v > 0.0)
        .collect();
    assert_eq!(floats(&bulk["outliers"]), top);
    assert!(bulk["marchenko_pastur"]["atom"].as_f64().unwrap() > 0.999);
    let table = run_ok(&args);
    assert!(table.contains("bulk: it sits at 0"), "{table}");
    assert!(!table.contains("(better)"));
}
