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
