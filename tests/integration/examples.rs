//! The examples at small size, with the claims their papers make.
use serde_json::Value;

use crate::fixtures;

fn example(name: &str, args: &[&str]) -> Value {
    let binary = fixtures::root().join("target/release/examples").join(name);
    let output = std::process::Command::new(&binary)
        .args(args)
        .arg("--json")
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "{}: {err} (cargo test --release builds the examples)",
                binary.display()
            )
        });
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Thamm, Staats & Rosenow (2022): the rich regime (α = 0.5) grows spikes beyond the Tracy-Widom edge in the hidden
/// layer and moves its weights most; the lazy one (α = 5) stays Marchenko-Pastur.
#[test]
fn lazy_and_rich_regimes_are_told_apart_by_the_monitor() {
    let regimes = example("lazy_rich", &["--steps", "150"]);
    let regimes = regimes.as_array().unwrap();
    let final_spikes = |regime: &Value| {
        regime["hidden_layer"].as_array().unwrap().last().unwrap()["num_spikes_tw"]
            .as_u64()
            .unwrap()
    };
    let change = |regime: &Value| regime["relative_change"].as_f64().unwrap();
    let (rich, typical, lazy) = (&regimes[0], &regimes[1], &regimes[2]);
    assert_eq!(rich["alpha"], 0.5);
    assert!(final_spikes(rich) >= 3, "rich: {}", final_spikes(rich));
    assert!(
        final_spikes(rich) > final_spikes(typical) && final_spikes(typical) >= final_spikes(lazy)
    );
    assert_eq!(final_spikes(lazy), 0, "lazy stays Marchenko-Pastur");
    assert!(change(rich) > 1.5 * change(typical) && change(typical) > 2.0 * change(lazy));
    assert!(regimes
        .iter()
        .all(|r| r["accuracy"].as_f64().unwrap() > 0.9));
    // Every observation at step 0 is the same initial layer with no spikes.
    assert!(regimes
        .iter()
        .all(|r| r["hidden_layer"][0]["num_spikes_tw"] == 0));
}

/// Favoni, Aarts, Lucini & Park (2024): the split of a degenerate teacher pair follows the Wigner surmise, and eigenvalue
/// fluctuations depend on learning rate / batch size only (4× the ratio, 2× the spread).
#[test]
fn teacher_student_shows_level_repulsion_and_the_linear_scaling_rule() {
    let report = example("teacher_student", &["--samples", "1200"]);
    assert!(report["surmise_p"].as_f64().unwrap() > 0.01, "{report}");
    assert!(report["poisson_p"].as_f64().unwrap() < 1e-10, "{report}");
    let spreads: Vec<f64> = report["scaling"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[2].as_f64().unwrap())
        .collect();
    let equal_ratio = (spreads[0] + spreads[1] + spreads[2]) / 3.0;
    for spread in &spreads[..3] {
        assert!((spread / equal_ratio - 1.0).abs() < 0.15, "{spreads:?}");
    }
    let doubled = spreads[3] / equal_ratio;
    assert!(
        (1.6..2.4).contains(&doubled),
        "4× lr/B gave {doubled}× the spread"
    );
}

/// TempBalance against one rate on the digits CNN, at small size: both arms train, the report
/// says what the estimates cost, and a second run with the same seeds gives the same numbers.
#[test]
fn temp_balance_example_reports_both_arms_deterministically() {
    let args = ["--seeds", "2", "--epochs", "2"];
    let report = example("temp_balance", &args);
    for arm in ["uniform_mean", "balanced_mean"] {
        assert!(report[arm].as_f64().unwrap() > 0.5, "{arm}: {report}");
    }
    assert!(report["estimate_seconds_per_epoch"].as_f64().unwrap() > 0.0);
    let accuracies = |report: &Value| -> Vec<f64> {
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run["test_accuracy"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(
        accuracies(&report),
        accuracies(&example("temp_balance", &args))
    );
}
