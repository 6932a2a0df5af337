//! Spectra against numpy's float64 SVD, the ESD conventions, and Marchenko-Pastur.
use rmt_torch::model::layers::{self, LayerSelection};
use rmt_torch::spectrum::{spectrum, spectrum_with_vectors, Precision};
use rmt_torch::stats::heavy_tail::power_law;
use rmt_torch::stats::rmt::goodness_of_fit::ks_test;
use rmt_torch::stats::rmt::marchenko_pastur::MarchenkoPastur;
use rmt_torch::{analyze, AnalyzeOptions, ConvMode, DeviceChoice, EsdConvention, Model};

use crate::fixtures::{self, floats};

fn selection(conv_mode: ConvMode) -> LayerSelection {
    let mut selection = LayerSelection::default();
    selection.conv_mode = conv_mode;
    selection.min_evals = 1;
    selection
}

/// Every eigenvalue within 1e-10 relative of numpy's (plus 1e-13·λmax for the smallest, the
/// Gram matrix's round-off level).
fn assert_spectra_equal(ours: &[f64], numpy: &[f64], what: &str) {
    assert_eq!(ours.len(), numpy.len(), "{what}: count");
    let lambda_max = numpy.iter().copied().fold(0.0, f64::max);
    for (a, b) in ours.iter().zip(numpy) {
        assert!(
            (a - b).abs() <= 1e-10 * b.abs() + 1e-13 * lambda_max,
            "{what}: {a} vs numpy {b}"
        );
    }
}

fn eigenvalues_match_numpy_on(device: tch::Device) {
    let reference = fixtures::reference().as_object().unwrap();
    let mut checked = 0;
    for (file, tensors) in reference {
        let model = Model::load(fixtures::file(file)).unwrap();
        for (mode, conv_mode) in [("slices", ConvMode::Slices), ("reshape", ConvMode::Reshape)] {
            let (layers, _) = layers::select(&model, &selection(conv_mode)).unwrap();
            for layer in layers {
                let want = &tensors[layer.name.as_str()][mode];
                let ours = spectrum(
                    &layer.name,
                    &layer.matrices().unwrap(),
                    device,
                    Precision::F64,
                )
                .unwrap()
                .squared_singular_values;
                assert_eq!(layer.shape.n as u64, want["n"].as_u64().unwrap());
                assert_spectra_equal(
                    &ours,
                    &floats(&want["squared_singular_values"]),
                    &format!("{file} {} {mode}", layer.name),
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} spectra checked");
}

#[test]
fn eigenvalues_equal_numpy_svd_squared() {
    eigenvalues_match_numpy_on(tch::Device::Cpu);
}

#[test]
fn eigenvalues_on_cuda_equal_numpy_svd_squared() {
    if !fixtures::capability(
        "cuda",
        tch::Cuda::is_available(),
        "eigenvalues_on_cuda_equal_numpy_svd_squared",
    ) {
        return;
    }
    eigenvalues_match_numpy_on(tch::Device::Cuda(0));
}

#[test]
fn conventions_scale_as_documented_and_metrics_match_weightwatcher_definitions() {
    let file = "weights_float64.safetensors";
    let model = Model::load(fixtures::file(file)).unwrap();
    for convention in [EsdConvention::WeightWatcher, EsdConvention::Rmt] {
        let options = fixtures::options(serde_json::json!({
            "device": "cpu", "convention": convention.to_string(), "eigenvalues": true,
        }));
        let analysis = analyze(&model, &options).unwrap();
        assert_eq!(analysis.layers.len(), 4);
        for layer in &analysis.layers {
            let want = &fixtures::reference()[file][&layer.name]["slices"];
            let scale = match (convention, layer.name.as_str()) {
                (EsdConvention::Rmt, _) => 1.0 / layer.n as f64,
                (_, "conv2d.weight") => 0.5,
                _ => 1.0,
            };
            let expected: Vec<f64> = floats(&want["squared_singular_values"])
                .iter()
                .map(|s| s * scale)
                .collect();
            assert_spectra_equal(layer.eigenvalues.as_ref().unwrap(), &expected, &layer.name);
            let metrics = &want["metrics"];
            let close = |ours: f64, key: &str, shift: f64| {
                let theirs = metrics[key].as_f64().unwrap() + shift;
                assert!(
                    (ours - theirs).abs() <= 1e-10 * theirs.abs().max(1.0),
                    "{} {key}: {ours} vs {theirs}",
                    layer.name
                );
            };
            let m = &layer.metrics;
            close(m.log_norm, "log_norm", scale.log10());
            close(m.log_spectral_norm, "log_spectral_norm", scale.log10());
            close(m.lambda_max.log10(), "log_spectral_norm", scale.log10());
            close(m.stable_rank, "stable_rank", 0.0);
            close(m.entropy.unwrap(), "entropy", 0.0);
            let sigma2 = fixtures::reference()[file][&layer.name]["sigma2"]
                .as_f64()
                .unwrap();
            let mp = layer.rmt.marchenko_pastur.as_ref().unwrap();
            assert!((mp.sigma2 - sigma2).abs() < 1e-12 * sigma2);
        }
    }
}

#[test]
fn gaussian_matrices_follow_marchenko_pastur() {
    let model = Model::load(fixtures::file("gaussian_mp.safetensors")).unwrap();
    let options = fixtures::options(serde_json::json!({
        "device": "cpu", "convention": "rmt", "eigenvalues": true,
    }));
    let analysis = analyze(&model, &options).unwrap();
    assert_eq!(analysis.layers.len(), 4);
    for layer in &analysis.layers {
        let eigenvalues = layer.eigenvalues.as_ref().unwrap();
        let law = MarchenkoPastur::new(layer.q, 1.0).unwrap();
        let fit = ks_test(eigenvalues, |x| law.cdf(x)).unwrap();
        assert!(
            fit.p_value > 0.01,
            "{}: KS p = {} (D = {})",
            layer.name,
            fit.p_value,
            fit.statistic
        );
        // The same test rejects a 25 % scale error or a doubled aspect ratio: it can fail.
        for wrong in [
            MarchenkoPastur::new(layer.q, 1.25).unwrap(),
            MarchenkoPastur::new(layer.q * 2.0, 1.0).unwrap(),
        ] {
            let p = ks_test(eigenvalues, |x| wrong.cdf(x)).unwrap().p_value;
            assert!(
                p < 0.01,
                "{}: wrong law not rejected at 1 %, p = {p}",
                layer.name
            );
        }
        let mp = layer.rmt.marchenko_pastur.as_ref().unwrap();
        assert!(
            (mp.sigma2 - 1.0).abs() < 0.02,
            "{}: σ² = {}",
            layer.name,
            mp.sigma2
        );
        let (_, edge) = law.edges();
        assert!(
            (layer.metrics.lambda_max / edge - 1.0).abs() < 0.1,
            "{}: λmax {} vs edge {edge}",
            layer.name,
            layer.metrics.lambda_max
        );
        assert!(
            mp.num_spikes <= 1,
            "{}: {} spikes",
            layer.name,
            mp.num_spikes
        );
    }
}

#[test]
fn fast_precision_stays_within_its_stated_error() {
    for file in ["gaussian_mp.safetensors", "large_gram.safetensors"] {
        let model = Model::load(fixtures::file(file)).unwrap();
        let (layers, _) = layers::select(&model, &LayerSelection::default()).unwrap();
        for layer in layers {
            let run = |precision| {
                spectrum(
                    &layer.name,
                    &layer.matrices().unwrap(),
                    tch::Device::Cpu,
                    precision,
                )
                .unwrap()
            };
            let (exact, fast) = (run(Precision::F64), run(Precision::Fast));
            let exact_values = &exact.squared_singular_values;
            let lambda_max = exact_values[exact_values.len() - 1];
            let worst = exact_values
                .iter()
                .zip(&fast.squared_singular_values)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
                / lambda_max;
            assert!(worst < 1e-4, "{}: {worst:e}", layer.name);
            assert!(worst > 0.0, "{}: fast mode computed in f64", layer.name);
            let alpha = |values: &[f64]| power_law::fit(values, 0.0).unwrap().alpha;
            let alpha_error =
                (alpha(&fast.squared_singular_values) / alpha(exact_values) - 1.0).abs();
            assert!(
                alpha_error < 1e-3,
                "{}: α off by {alpha_error:e}",
                layer.name
            );
            let variance_error = (fast.entry_variance / exact.entry_variance - 1.0).abs();
            assert!(
                variance_error < 1e-5,
                "{}: σ² off by {variance_error:e}",
                layer.name
            );
        }
    }
}

#[test]
fn trained_weights_leave_the_random_bulk() {
    let spikes = |name: &str| -> usize {
        let model = Model::load(fixtures::shipped_model(name)).unwrap();
        let options = AnalyzeOptions::default().on_device(DeviceChoice::Cpu);
        let analysis = analyze(&model, &options).unwrap();
        analysis
            .layers
            .iter()
            .map(|l| l.rmt.marchenko_pastur.as_ref().unwrap().num_spikes)
            .sum()
    };
    for net in ["mlp", "cnn"] {
        let init = spikes(&format!("digits_{net}_init.pt"));
        let trained = spikes(&format!("digits_{net}_trained.pt"));
        assert!(init <= 2, "{net} at initialisation: {init} spikes");
        assert!(trained >= 10, "{net} trained: {trained} spikes");
    }
}

#[test]
fn right_singular_vectors_are_orthonormal_eigenvectors() {
    let model = Model::load(fixtures::file("large_gram.safetensors")).unwrap();
    let (layers, _) = layers::select(&model, &LayerSelection::default()).unwrap();
    let layer = &layers[0];
    let matrices = layer.matrices().unwrap();
    let (spectrum, decompositions) =
        spectrum_with_vectors(&layer.name, &matrices, tch::Device::Cpu, Precision::F64).unwrap();
    let decomposition = &decompositions[0];
    // One decomposition gives both: its eigenvalues are the spectrum's.
    assert_eq!(spectrum.by_matrix[0], decomposition.squared_singular_values);
    let numpy = floats(
        &fixtures::reference()["large_gram.safetensors"]["large.weight"]["slices"]
            ["squared_singular_values"],
    );
    assert_spectra_equal(
        &decomposition.squared_singular_values,
        &numpy,
        "eigh values",
    );
    // ‖W v‖² = σ² and vᵢ·vⱼ = δᵢⱼ, checked on a spread of indices.
    let w = matrices.get(0).to_kind(tch::Kind::Double);
    for &i in &[0usize, 1, 500, 1028, 1029] {
        let v = &decomposition.vectors[i];
        let norm: f64 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-12, "|v{i}|² = {norm}");
        let wv = w.mv(&tch::Tensor::from_slice(v));
        let stretched = f64::try_from(wv.dot(&wv)).unwrap();
        let sigma2 = decomposition.squared_singular_values[i];
        assert!(
            (stretched - sigma2).abs() < 1e-9 * numpy[numpy.len() - 1],
            "‖W v{i}‖² = {stretched} vs {sigma2}"
        );
        let other = &decomposition.vectors[(i + 7) % v.len()];
        let overlap: f64 = v.iter().zip(other).map(|(a, b)| a * b).sum();
        assert!(
            overlap.abs() < 1e-12,
            "v{i}·v{} = {overlap}",
            (i + 7) % v.len()
        );
    }
}

/// Weights far from 1 are scaled by an exact power of two before WᵀW is formed: λ(2ᵏW) = 4ᵏλ(W)
/// holds exactly, in f64 and in the f32 Gram of `--precision fast`, whose squares of entries
/// near 2^±70 would underflow or overflow unscaled (closed-form reference: the spectrum of W).
/// Both orientations: a layer stored (in, out) is read as a transposed view, whose extreme
/// entries are found in memory order.
#[test]
fn spectra_scale_exactly_with_the_weights() {
    let rows = tch::Tensor::randn([96, 40], (tch::Kind::Double, tch::Device::Cpu));
    let columns = rows.transpose(0, 1).contiguous();
    for (w, (precision, exponents)) in [&rows, &columns].into_iter().flat_map(|w| {
        [
            (Precision::F64, [-500, -60, 60, 500]),
            (Precision::Fast, [-70, -50, 50, 70]),
        ]
        .map(|case| (w, case))
    }) {
        let options = fixtures::options(serde_json::json!({
            "device": "cpu", "precision": precision.to_string(), "eigenvalues": true,
        }));
        let eigenvalues = |scale: f64| {
            let model = Model::from_tensors("w", [("w", &(w * scale))]);
            analyze(&model, &options).unwrap().layers[0]
                .eigenvalues
                .clone()
                .unwrap()
        };
        let reference = eigenvalues(1.0);
        for k in exponents {
            let scaled = eigenvalues(2f64.powi(k));
            let factor = 4f64.powi(k);
            for (a, b) in scaled.iter().zip(&reference) {
                assert!(
                    (a / factor - b).abs() <= 1e-12 * b.abs(),
                    "{precision:?} 2^{k}: {a} vs {b} × 4^{k}"
                );
            }
        }
    }
}

/// float8 weights are analysed by upcasting: their eigenvalues equal numpy's SVD of the same
/// values in float32.
#[test]
fn float8_weights_match_numpy_on_their_upcast_values() {
    let path = fixtures::root().join("target/float8.safetensors");
    let script = r#"
import json, sys
import numpy as np
import torch
from safetensors.torch import save_file
w = (torch.randn(80, 30, generator=torch.Generator().manual_seed(4)) * 0.5).to(torch.float8_e4m3fn)
save_file({"w": w}, sys.argv[1])
s = np.linalg.svd(w.to(torch.float32).double().numpy(), compute_uv=False)
print(json.dumps(sorted((s ** 2).tolist())))
"#;
    let numpy: Vec<f64> = fixtures::python_json(script, &[&path]);
    let model = Model::load(&path).unwrap();
    assert_eq!(model.tensors[0].dtype.to_string(), "float8_e4m3fn");
    let options = fixtures::options(serde_json::json!({"device": "cpu", "eigenvalues": true}));
    let analysis = analyze(&model, &options).unwrap();
    assert_eq!(analysis.layers[0].dtype, "float8_e4m3fn");
    assert_spectra_equal(
        analysis.layers[0].eigenvalues.as_ref().unwrap(),
        &numpy,
        "float8",
    );
}

/// The same file gives the same JSON whatever the thread count: eigensolves run on one
/// thread (LAPACK's threaded tridiagonal reduction sums in a thread-dependent order, and the
/// lognormal fit of the trained CNN's fc1, on a flat likelihood, once moved by 23 % with it),
/// and no statistic reduces in a thread-dependent order.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    for (model, extra) in [
        ("digits_cnn_trained.pt", &["--eigenvalues"][..]),
        ("digits_mlp_trained.pt", &["--randomize", "--vectors"][..]),
        ("digits_cnn_init.pt", &["--conv", "reshape"][..]),
    ] {
        let model = fixtures::shipped_model(model);
        let at = |threads: &str| -> serde_json::Value {
            let mut args = vec!["analyze", model.to_str().unwrap(), "--threads", threads];
            args.extend(["--device", "cpu", "-f", "json", "-q"]);
            args.extend(extra);
            serde_json::from_str(&fixtures::run_ok(&args)).unwrap()
        };
        let differences = fixtures::json_differences(&at("1"), &at("2"), &|key| {
            (key != "timing").then_some(1e-12)
        });
        assert!(
            differences.is_empty(),
            "{} {extra:?}: {}",
            model.display(),
            differences.join("\n")
        );
    }
}
