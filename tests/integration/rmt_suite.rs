//! The universal RMT suite on simulated ensembles with fixed seeds, and on the shipped models.
use rmt_torch::random::SeededNormal;
use rmt_torch::spectrum::{spectrum, symmetric_part_eigenvalues, Precision};
use rmt_torch::stats::rmt::number_variance::number_variance;
use rmt_torch::stats::rmt::porter_thomas::porter_thomas;
use rmt_torch::stats::rmt::spacing::{mean_spacing_ratio, spacing_statistics, unit_mean_spacings};
use rmt_torch::stats::rmt::unfolding::Unfolding;
use rmt_torch::stats::rmt::wigner::SpacingLaw;
use rmt_torch::stats::suite::{rmt_report, LayerSpectrum, RmtReport};
use rmt_torch::{analyze, Model, RmtOptions};
use serde_json::Value;
use tch::{Device, Tensor};

use crate::fixtures::{run, run_ok, shipped_model};

fn tensor(values: &[f64], n: usize, m: usize) -> Tensor {
    Tensor::from_slice(values).reshape([1, n as i64, m as i64])
}

use rmt_torch::model::layers::{LayerKind, MatrixShape};
use rmt_torch::stats::esd::EsdScale;
use rmt_torch::{ConvMode, EsdConvention};

/// The suite on one N × M matrix in the RMT convention.
fn suite(w: &Tensor, options: &RmtOptions) -> RmtReport {
    let size = w.size();
    let (n, m) = (size[1] as usize, size[2] as usize);
    let s = spectrum("w", w, Device::Cpu, Precision::F64).unwrap();
    let symmetric = symmetric_part_eigenvalues("w", w, Device::Cpu).unwrap();
    rmt_report(
        LayerSpectrum {
            pooled: &s.squared_singular_values,
            by_matrix: &s.by_matrix,
            n,
            m,
            entry_variance: s.entry_variance,
            scale: EsdScale::new(
                EsdConvention::Rmt,
                LayerKind::Dense,
                ConvMode::Slices,
                MatrixShape { n, m, slices: 1 },
            ),
        },
        options,
        None,
        symmetric.as_deref(),
    )
}

#[test]
fn gaussian_matrices_pass_the_bulk_test_and_have_tw_spikes_at_the_stated_rate() {
    let mut rng = SeededNormal::new(3);
    let m = 100;
    let mut with_spikes = 0;
    let mut not_noise = 0;
    let mut total = 0;
    for q in [1, 2, 4, 8] {
        for _ in 0..50 {
            let w = tensor(&rng.normals(q * m * m), q * m, m);
            let report = suite(&w, &RmtOptions::default());
            // Only a layer the suite tells from noise can get an α label (well-trained, …).
            not_noise += usize::from(report.is_noise(0.05) == Some(false));
            let bulk = report.bulk.expect("bulk fit");
            assert!(bulk.bulk_ks_p.unwrap() > 0.05, "Q={q}: {bulk:?}");
            assert!((bulk.bulk_sigma2 - 1.0).abs() < 0.05, "Q={q}: {bulk:?}");
            assert!(report.modified.unwrap().mmp_fraction > 0.9, "Q={q}");
            with_spikes += usize::from(bulk.num_spikes_tw > 0);
            total += 1;
        }
    }
    // 5 % expected: 10 of 200, binomial sd ≈ 3.
    assert!(
        (2..=20).contains(&with_spikes),
        "{with_spikes} of {total} noise matrices had TW spikes at level 0.05"
    );
    assert!(
        not_noise <= 20,
        "{not_noise} of {total} noise matrices could be labelled as trained"
    );
}

#[test]
fn a_planted_spike_is_found_above_the_bbp_threshold_and_not_below() {
    let (n, m) = (800, 400);
    let gamma = m as f64 / n as f64;
    let threshold = gamma.powf(0.25);
    let mut rng = SeededNormal::new(11);
    let mut found_below = 0;
    for _ in 0..10 {
        let noise: Vec<f64> = rng
            .normals(n * m)
            .iter()
            .map(|x| x / (n as f64).sqrt())
            .collect();
        let unit = |rng: &mut SeededNormal, len: usize| {
            let v: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f64>>()
        };
        let (u, v) = (unit(&mut rng, n), unit(&mut rng, m));
        let planted = |strength: f64| {
            let values: Vec<f64> = (0..n * m)
                .map(|k| noise[k] + strength * u[k / m] * v[k % m])
                .collect();
            suite(&tensor(&values, n, m), &RmtOptions::default())
                .bulk
                .unwrap()
        };
        let above = planted(1.6 * threshold);
        assert!(
            above.num_spikes_tw >= 1 && above.tw_p_value < 1e-6,
            "{above:?}"
        );
        found_below += usize::from(planted(0.5 * threshold).num_spikes_tw > 0);
    }
    assert!(
        found_below <= 2,
        "{found_below} of 10 sub-threshold spikes were reported"
    );
}

#[test]
fn goe_levels_follow_the_surmise_and_poisson_levels_do_not() {
    let n = 1000;
    let mut rng = SeededNormal::new(5);
    let g = Tensor::from_slice(&rng.normals(n * n)).reshape([n as i64, n as i64]);
    let goe = (&g + g.transpose(0, 1)) / (2.0 * n as f64).sqrt();
    let levels = Vec::<f64>::try_from(goe.linalg_eigvalsh("L")).unwrap();
    let unfolded = Unfolding::default().unfold(&levels).unwrap();
    let statistics = spacing_statistics(&unit_mean_spacings(&unfolded)).unwrap();
    assert!(statistics.goe.p_value > 0.05, "{statistics:?}");
    assert!(statistics.poisson.p_value < 1e-10, "{statistics:?}");
    let ratio = mean_spacing_ratio(&levels).unwrap();
    assert!(
        (ratio - SpacingLaw::Goe.mean_spacing_ratio()).abs() < 0.015,
        "⟨r⟩ = {ratio}"
    );
    for length in [1.0, 2.0, 5.0] {
        let sigma = number_variance(&unfolded, length).unwrap();
        assert!((sigma.value / sigma.goe - 1.0).abs() < 0.2, "{sigma:?}");
    }

    let mut poisson: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
    poisson.sort_by(f64::total_cmp);
    let unfolded = Unfolding::Polynomial { degree: 3 }
        .unfold(&poisson)
        .unwrap();
    let statistics = spacing_statistics(&unit_mean_spacings(&unfolded)).unwrap();
    assert!(
        statistics.poisson.p_value > 0.05 && statistics.goe.p_value < 1e-10,
        "{statistics:?}"
    );
    let ratio = mean_spacing_ratio(&poisson).unwrap();
    assert!(
        (ratio - SpacingLaw::Poisson.mean_spacing_ratio()).abs() < 0.02,
        "⟨r⟩ = {ratio}"
    );
    let sigma = number_variance(&unfolded, 5.0).unwrap();
    assert!((sigma.value / 5.0 - 1.0).abs() < 0.25, "{sigma:?}");
}

#[test]
fn haar_vectors_pass_porter_thomas_and_localised_ones_fail() {
    let m = 300;
    let mut rng = SeededNormal::new(17);
    let g = Tensor::from_slice(&rng.normals(m * m)).reshape([m as i64, m as i64]);
    let (_, vectors) = (&g + g.transpose(0, 1)).linalg_eigh("L");
    let rows = Vec::<Vec<f64>>::try_from(vectors.transpose(0, 1).contiguous()).unwrap();
    let haar = porter_thomas(&rows, 15);
    assert!(
        haar.rejected <= m / 10,
        "{} of {m} Haar vectors rejected",
        haar.rejected
    );
    let localised: Vec<Vec<f64>> = (0..20)
        .map(|i| {
            let mut v = vec![0.0; m];
            v[i] = 0.6;
            v[i + 1] = 0.8;
            v
        })
        .collect();
    assert_eq!(porter_thomas(&localised, 15).rejected, 20);
}

#[test]
fn square_gaussian_matrices_have_a_semicircular_symmetric_part() {
    let n = 400;
    let mut rng = SeededNormal::new(23);
    let values: Vec<f64> = rng.normals(n * n).iter().map(|x| 0.1 * x).collect();
    let report = suite(&tensor(&values, n, n), &RmtOptions::default());
    let semicircle = report.semicircle.unwrap();
    assert!(
        (semicircle.semicircle_sigma2 / 0.01 - 1.0).abs() < 0.05,
        "{semicircle:?}"
    );
    assert!(semicircle.semicircle_ks_p > 0.05, "{semicircle:?}");
}

/// The suite with Porter-Thomas, spikes counted at a false-positive rate of 0.1 % per layer
/// (the shipped models have a dozen layers: at 5 % one initial layer may show a spike by chance).
fn suite_on(model: &str) -> Vec<Value> {
    let options = crate::fixtures::options(serde_json::json!({"vectors": true, "tw_level": 0.001}));
    let model = Model::load(shipped_model(model)).unwrap();
    let analysis = analyze(&model, &options).unwrap();
    let json = serde_json::to_value(&analysis).unwrap();
    json["layers"].as_array().unwrap().clone()
}

/// Thamm, Staats & Rosenow's (2022) finding: initial weights look random; trained ones keep a random bulk (spacings
/// follow the surmise) but grow spikes beyond the Tracy-Widom edge, whose singular vectors fail
/// Porter-Thomas.
#[test]
fn shipped_models_are_random_at_init_and_deviate_at_the_top_after_training() {
    for kind in ["mlp", "cnn"] {
        let init = suite_on(&format!("digits_{kind}_init.pt"));
        let trained = suite_on(&format!("digits_{kind}_trained.pt"));
        let init_spiky = init
            .iter()
            .filter(|l| l["M"].as_u64().unwrap() >= 10 && l["tw_p_value"].as_f64().unwrap() < 0.001)
            .count();
        assert_eq!(init_spiky, 0, "{kind}: an initial layer rejected at 0.1 %");
        let big = |layers: &[Value]| -> Value {
            layers
                .iter()
                .find(|l| l["M"].as_u64().unwrap() >= 256)
                .unwrap()
                .clone()
        };
        let (before, after) = (big(&init), big(&trained));
        assert_eq!(before["quality"], "random-like", "{kind}: {before}");
        assert_ne!(after["quality"], "random-like", "{kind}: {after}");
        assert!(
            after["num_spikes_tw"].as_u64().unwrap() >= 5,
            "{kind}: {after}"
        );
        assert!(after["tw_p_value"].as_f64().unwrap() < 1e-10);
        assert!(
            after["spacing_p_goe"].as_f64().unwrap() > 0.05,
            "{kind}: bulk not GOE"
        );
        assert!(before["spacing_p_goe"].as_f64().unwrap() > 0.05);
        let top_p = |layer: &Value| {
            let p: Vec<f64> = layer["porter_thomas"]["p_values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            p[p.len() - 5..].iter().sum::<f64>() / 5.0
        };
        assert!(
            top_p(&after) < 0.01,
            "{kind}: top vectors after training {}",
            top_p(&after)
        );
        assert!(
            top_p(&before) > 0.05,
            "{kind}: top vectors at init {}",
            top_p(&before)
        );
    }
}

#[test]
fn dist_evaluates_the_distributions() {
    let json: Value = serde_json::from_str(&run_ok(&[
        "dist", "tw1", "--cdf", "-3", "--cdf", "0", "-f", "json",
    ]))
    .unwrap();
    assert!((json[0]["value"].as_f64().unwrap() - 0.06960011886736989).abs() < 1e-9);
    assert!((json[1]["value"].as_f64().unwrap() - 0.8319080662029519).abs() < 1e-9);
    let json: Value = serde_json::from_str(&run_ok(&[
        "dist",
        "mp",
        "--q",
        "2",
        "--moments",
        "--quantile",
        "0.5",
        "-f",
        "json",
    ]))
    .unwrap();
    let moments: Vec<f64> = json.as_array().unwrap()[1..]
        .iter()
        .filter(|v| v["function"].as_str().unwrap().starts_with("moment"))
        .map(|v| v["value"].as_f64().unwrap())
        .collect();
    assert_eq!(moments, vec![1.0, 1.5, 2.75, 5.625]);
    // Q < 1: the atom 1 − Q at 0 (a rank-deficient Gram matrix's zeros).
    let json: Value = serde_json::from_str(&run_ok(&[
        "dist", "mp", "--q", "0.25", "--cdf", "0", "--cdf", "-0.1", "-f", "json",
    ]))
    .unwrap();
    assert_eq!(json[0]["value"].as_f64(), Some(0.75));
    assert_eq!(json[1]["value"].as_f64(), Some(0.0));
    let table = run_ok(&["dist", "goe-number-variance", "--at", "10"]);
    assert!(table.contains("0.9086"), "{table}");
    for bad in [
        &["dist", "goe", "--at", "1"][..],
        &["dist", "mp", "--q", "0", "--cdf", "1"],
        &["dist", "tw1"],
        &["dist", "tw2", "--quantile", "1.5"],
    ] {
        let output = run(bad);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.lines().count() == 1,
            "{bad:?}: {stderr}"
        );
    }
}

#[test]
fn analyze_reports_the_suite_in_json_and_csv() {
    let model = shipped_model("digits_mlp_trained.pt");
    let model = model.to_str().unwrap();
    let json: Value = serde_json::from_str(&run_ok(&[
        "analyze",
        model,
        "-f",
        "json",
        "--number-variance",
        "1:3",
        "--vectors",
        "--semicircle",
    ]))
    .unwrap();
    let layer = &json["layers"][1];
    for field in [
        "bulk_sigma2",
        "tw_p_value",
        "num_spikes_tw",
        "mmp_fraction",
        "spacing_p_goe",
        "spacing_ratio",
        "mp_softrank",
        "semicircle_ks_p",
    ] {
        assert!(layer[field].is_number(), "{field} missing: {layer}");
    }
    assert_eq!(layer["number_variance"].as_array().unwrap().len(), 3);
    assert_eq!(
        layer["porter_thomas"]["p_values"].as_array().unwrap().len(),
        512
    );
    let csv = run_ok(&["analyze", model, "-f", "csv"]);
    assert!(csv.lines().next().unwrap().contains("num_spikes_tw"));
    for bad in [
        &["analyze", model, "--tw-level", "0"][..],
        &["analyze", model, "--number-variance", "3:1"],
        &[
            "analyze",
            model,
            "--unfolding",
            "polynomial",
            "--unfolding-degree",
            "0",
        ],
    ] {
        assert_eq!(run(bad).status.code(), Some(2), "{bad:?}");
    }
}
