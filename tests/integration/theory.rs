//! `rmt-torch theory` against the reference values.
use serde_json::Value;

use crate::fixtures::{run, run_ok};

#[test]
fn theory_commands_print_the_reference_values() {
    let json: Value = serde_json::from_str(&run_ok(&[
        "theory",
        "hermite",
        "--activation",
        "relu",
        "-f",
        "json",
    ]))
    .unwrap();
    let a = &json[0]["coefficients"];
    assert!((a[0].as_f64().unwrap() - 0.3989422804014327).abs() < 1e-12);
    assert!((a[2].as_f64().unwrap() - 0.28209479177387814).abs() < 1e-12);
    let json: Value = serde_json::from_str(&run_ok(&[
        "theory", "ridge", "--gamma", "0.5,2", "--lambda", "0", "--lambda", "1", "-f", "json",
    ]))
    .unwrap();
    let risks: Vec<f64> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["risk"].as_f64().unwrap())
        .collect();
    assert_eq!(risks.len(), 4);
    assert!((risks[0] - 1.0).abs() < 1e-12 && (risks[1] - 1.5).abs() < 1e-12);
    assert!((risks[2] - 0.455214).abs() < 1e-6);
    let json: Value = serde_json::from_str(&run_ok(&[
        "theory",
        "ridge",
        "--gamma",
        "2",
        "--lambda",
        "0.1",
        "--simulate",
        "100",
        "--trials",
        "4",
        "-f",
        "json",
    ]))
    .unwrap();
    let row = &json[0];
    let (theory, simulated) = (
        row["risk"].as_f64().unwrap(),
        row["simulated"].as_f64().unwrap(),
    );
    assert!((simulated - theory).abs() < 0.15 * theory, "{row}");
    let json: Value = serde_json::from_str(&run_ok(&[
        "theory",
        "kernel",
        "--n",
        "32",
        "--n",
        "128",
        "--width-ratio",
        "64",
        "-f",
        "json",
    ]))
    .unwrap();
    let errors: Vec<f64> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["relative_error"].as_f64().unwrap())
        .collect();
    assert!(errors[1] < errors[0], "{errors:?}");
    let table = run_ok(&["theory", "hermite", "--order", "2"]);
    assert!(
        table.contains("gelu") && !table.contains("-0.000000000000"),
        "{table}"
    );
    for bad in [
        &["theory", "hermite", "--activation", "softsign"][..],
        &["theory", "hermite", "--order", "40"],
        &["theory", "ridge", "--gamma", "0"],
        &["theory", "ridge", "--lambda=-1"],
    ] {
        let output = run(bad);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn simulations_run_from_the_command_line_with_their_figures() {
    let dir = crate::fixtures::root().join("target/test-output/theory");
    let _ = std::fs::remove_dir_all(&dir);
    let plots = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let json = |args: &[&str]| -> Value { serde_json::from_str(&run_ok(args)).unwrap() };

    let dir_dyson = plots("dyson");
    let pair = json(&[
        "theory",
        "dyson",
        "--case",
        "pair",
        "--beta",
        "2",
        "-f",
        "json",
        "--plots",
        &dir_dyson,
        "--plot-format",
        "svg",
    ]);
    assert_eq!(pair["expected_surmise"], "gue");
    assert!(
        pair["spacing"]["gue"]["p_value"].as_f64().unwrap() > 0.01,
        "{pair}"
    );
    assert!(
        pair["spacing"]["goe"]["p_value"].as_f64().unwrap() < 1e-4,
        "{pair}"
    );
    let spacing = std::fs::read_to_string(dir.join("dyson/dyson_spacing.svg")).unwrap();
    assert!(spacing.contains("GUE surmise") && spacing.contains("spacing s"));

    let depth = json(&[
        "theory",
        "depth",
        "--activation",
        "relu",
        "--n",
        "64",
        "--p",
        "64",
        "--width",
        "1024",
        "--depths",
        "1,3",
        "-f",
        "json",
    ]);
    for point in depth["points"].as_array().unwrap() {
        let (measured, predicted) = (
            point["distance"].as_f64().unwrap(),
            point["predicted"].as_f64().unwrap(),
        );
        assert!((measured / predicted - 1.0).abs() < 0.15, "{point}");
    }

    let pre = json(&[
        "theory",
        "preactivation",
        "--layers",
        "3",
        "--networks",
        "20",
        "-f",
        "json",
    ]);
    assert_eq!(pre["recursion"].as_array().unwrap().len(), 3);
    assert_eq!(pre["random_networks"].as_array().unwrap().len(), 3);

    let dir_rf = plots("rf");
    let features = json(&[
        "theory",
        "random-features",
        "--n",
        "64",
        "--p",
        "32",
        "--n-test",
        "128",
        "--features",
        "16,32,64,128,256",
        "--simulate",
        "4",
        "-f",
        "json",
        "--plots",
        &dir_rf,
        "--plot-format",
        "svg",
    ]);
    let peak = features
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            a["test_theory"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["test_theory"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(peak["features"], 64, "{features}");
    assert!(std::fs::read_to_string(dir.join("rf/random_features.svg"))
        .unwrap()
        .contains("N = n"));

    let dir_ridge = plots("ridge");
    run_ok(&[
        "theory",
        "ridge",
        "--gamma",
        "0.5,1,2",
        "--plots",
        &dir_ridge,
        "--plot-format",
        "svg",
    ]);
    assert!(std::fs::read_to_string(dir.join("ridge/ridge.svg"))
        .unwrap()
        .contains("double descent"));

    for bad in [
        &["theory", "dyson", "--case", "triple"][..],
        &["theory", "dyson", "--beta", "0"],
        &["theory", "random-features", "--activation", "tanh"],
        &["theory", "random-features", "--ridge", "0"],
        &["theory", "depth", "--depths", "0"],
        &["theory", "preactivation", "--correlation", "2"],
    ] {
        let output = run(bad);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
