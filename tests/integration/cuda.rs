//! The CUDA paths against the CPU ones: the same numbers from every entry point that takes a
//! device (library analysis, the training monitor, the CLI's analyze, zoo, jacobian and
//! hessian). Each test skips without a GPU and fails there under `RMT_TORCH_REQUIRE_CUDA=1`.
use rmt_torch::workflows::monitor::SpectralMonitor;
use rmt_torch::{analyze, AnalyzeOptions, DeviceChoice, Model, Precision};
use serde_json::Value;
use tch::{Device, Tensor};

use crate::fixtures::{self, floats, run_ok, shipped_model};

fn cuda_here(test: &str) -> bool {
    fixtures::capability("cuda", tch::Cuda::is_available(), test)
}

/// How closely a field of a layer record must agree between devices, relative; `None`: not
/// compared. Fits on a flat likelihood (a lognormal whose μ runs to −10⁵, a truncation rate of
/// 1e-10) move with the last bit of the eigenvalues; a least-squares minimum (the fitted
/// Marchenko-Pastur edge of the `mmp_` fields) is located to about √ε. Everything else is a
/// closed function of the eigenvalues.
fn tolerance(key: &str) -> Option<f64> {
    if key.contains("lognormal") || key.contains("truncated") || key.starts_with("tpl_") {
        None
    } else if key.starts_with("mmp_") {
        Some(1e-6)
    } else {
        Some(1e-8)
    }
}

/// Every field of two layer records that differs by more than its [`tolerance`].
fn differences(ours: &Value, theirs: &Value) -> Vec<String> {
    let name = ours["name"].as_str().unwrap_or("?");
    fixtures::json_differences(ours, theirs, &|key| {
        tolerance(key).filter(|_| key != "eigenvalues")
    })
    .into_iter()
    .map(|difference| format!("{name}{difference}"))
    .collect()
}

/// `Precision::Fast`'s documented bound on a GPU, in units of λmax.
const FAST_BOUND_ON_GPU: f64 = 5e-4;

fn analysis(model: &Model, device: DeviceChoice, precision: Precision) -> Value {
    let options = fixtures::options(serde_json::json!({
        "device": device.to_string(), "precision": precision.to_string(), "eigenvalues": true,
    }));
    serde_json::to_value(analyze(model, &options).unwrap()).unwrap()
}

#[test]
fn analysis_on_cuda_equals_the_cpu_one() {
    if !cuda_here("analysis_on_cuda_equals_the_cpu_one") {
        return;
    }
    let mut found = Vec::new();
    for name in ["digits_cnn_trained.pt", "digits_mlp_trained.pt"] {
        let model = Model::load(shipped_model(name)).unwrap();
        let cpu = analysis(&model, DeviceChoice::Cpu, Precision::F64);
        let cuda = analysis(&model, DeviceChoice::Cuda(0), Precision::F64);
        let fast = analysis(&model, DeviceChoice::Cuda(0), Precision::Fast);
        assert_eq!(cuda["device"], "cuda:0");
        for ((cpu, cuda), fast) in cpu["layers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(cuda["layers"].as_array().unwrap())
            .zip(fast["layers"].as_array().unwrap())
        {
            let exact = floats(&cpu["eigenvalues"]);
            let lambda_max = exact.last().copied().unwrap();
            for (label, other, bound) in [("f64", cuda, 1e-12), ("fast", fast, FAST_BOUND_ON_GPU)] {
                let worst = exact
                    .iter()
                    .zip(floats(&other["eigenvalues"]))
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                if worst > bound * lambda_max {
                    found.push(format!(
                        "{name} {} {label}: eigenvalues differ by {worst:e} (λmax {lambda_max})",
                        cpu["name"]
                    ));
                }
            }
            found.extend(
                differences(cuda, cpu)
                    .into_iter()
                    .map(|d| format!("{name} {d}")),
            );
        }
    }
    assert!(
        found.is_empty(),
        "CUDA differs from CPU:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_monitor_analyses_gpu_tensors_where_they_are() {
    if !cuda_here("the_monitor_analyses_gpu_tensors_where_they_are") {
        return;
    }
    let model = Model::load(shipped_model("digits_mlp_trained.pt")).unwrap();
    let weights: Vec<(String, Tensor)> = model
        .tensors
        .iter()
        .filter(|t| t.name.ends_with("weight"))
        .map(|t| (t.name.clone(), t.load().unwrap()))
        .collect();
    let on = |tensor_device: Device, device: DeviceChoice| {
        let tensors = weights
            .iter()
            .map(|(name, t)| (name.clone(), t.to_device(tensor_device)))
            .collect();
        let options = AnalyzeOptions::default().on_device(device);
        let records = SpectralMonitor::new(options, 1)
            .unwrap()
            .observe(1, tensors)
            .unwrap();
        serde_json::to_value(records).unwrap()
    };
    let cpu = on(Device::Cpu, DeviceChoice::Cpu);
    assert!(!cpu.as_array().unwrap().is_empty());
    for (tensors, device) in [
        (Device::Cuda(0), DeviceChoice::Cuda(0)),
        (Device::Cuda(0), DeviceChoice::Cpu),
        (Device::Cpu, DeviceChoice::Cuda(0)),
    ] {
        let records = on(tensors, device);
        for (ours, theirs) in records
            .as_array()
            .unwrap()
            .iter()
            .zip(cpu.as_array().unwrap())
        {
            let found = differences(ours, theirs);
            assert!(found.is_empty(), "{tensors:?} on {device}: {found:?}");
        }
    }

    // A VarStore on the GPU, observed in the background while it lives there.
    let vs = tch::nn::VarStore::new(Device::Cuda(0));
    for (name, tensor) in &weights {
        let mut variable = vs
            .root()
            .zeros_no_train(&name.replace('.', "_"), &tensor.size());
        tch::no_grad(|| variable.copy_(tensor));
    }
    let mut monitor = SpectralMonitor::new(AnalyzeOptions::default(), 1).unwrap();
    monitor.observe_var_store_in_background(1, &vs).unwrap();
    let records = serde_json::to_value(monitor.finish().unwrap()).unwrap();
    assert_eq!(records.as_array().unwrap().len(), weights.len());
    for (ours, theirs) in records
        .as_array()
        .unwrap()
        .iter()
        .zip(cpu.as_array().unwrap())
    {
        let (a, b) = (ours["alpha"].as_f64(), theirs["alpha"].as_f64());
        assert!(matches!((a, b), (Some(a), Some(b)) if (a - b).abs() <= 1e-8 * b.abs()));
    }
}

#[test]
fn the_cli_runs_on_cuda() {
    if !cuda_here("the_cli_runs_on_cuda") {
        return;
    }
    let model = shipped_model("digits_cnn_trained.pt");
    let model = model.to_str().unwrap();
    // The README's command: `auto` takes the GPU.
    let table = run_ok(&["analyze", model, "--device", "auto"]);
    assert!(table.contains("layers on cuda:0"), "{table}");

    let cache = fixtures::root().join("target/test-cuda-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let zoo: Value = serde_json::from_str(&run_ok(&[
        "zoo",
        fixtures::root().join("models").to_str().unwrap(),
        "--device",
        "cuda",
        "-f",
        "json",
        "-q",
        "--cache",
        cache.to_str().unwrap(),
    ]))
    .unwrap();
    assert!(zoo["models"].as_array().unwrap().len() >= 4, "{zoo}");

    let batch = shipped_model("digits_batch.pt");
    let jacobian = |device: &str| -> Value {
        serde_json::from_str(&run_ok(&[
            "jacobian",
            model,
            "--input",
            batch.to_str().unwrap(),
            "--device",
            device,
            "--f64",
            "--samples",
            "4",
            "-f",
            "json",
            "-q",
        ]))
        .unwrap()
    };
    let (cpu, cuda) = (jacobian("cpu"), jacobian("cuda"));
    for (a, b) in cpu["samples"]
        .as_array()
        .unwrap()
        .iter()
        .zip(cuda["samples"].as_array().unwrap())
    {
        let (a, b) = (floats(&a["singular_values"]), floats(&b["singular_values"]));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-10 * a[0], "{x} vs {y}");
        }
    }
}

#[test]
fn hessian_and_jacobian_lanczos_on_cuda_equal_the_cpu_ones() {
    if !cuda_here("hessian_and_jacobian_lanczos_on_cuda_equal_the_cpu_ones") {
        return;
    }
    let hessian = |device: &str| {
        crate::hessian::hessian(
            "cross-entropy",
            &["--device", device, "--tolerance", "1e-10", "--trace", "20"],
        )
    };
    let (cpu, gpu) = (hessian("cpu"), hessian("cuda"));
    assert!(gpu["device"].as_str().unwrap().starts_with("cuda"));
    for (a, b) in floats(&cpu["top_eigenvalues"])
        .iter()
        .zip(floats(&gpu["top_eigenvalues"]))
    {
        assert!(
            (a - b).abs() < 1e-9 * a.abs(),
            "hessian: {a} on the CPU, {b} on CUDA"
        );
    }
    let (a, b) = (
        cpu["trace"].as_f64().unwrap(),
        gpu["trace"].as_f64().unwrap(),
    );
    assert!(
        (a - b).abs() < 1e-9 * a.abs(),
        "seeded trace: {a} on the CPU, {b} on CUDA"
    );

    let jacobian = |device: &str| {
        crate::jacobian::lanczos_json("jac_mlp.pt", &["--lanczos", "3", "--device", device])
    };
    let (cpu, gpu) = (jacobian("cpu"), jacobian("cuda"));
    for (a, b) in cpu["samples"]
        .as_array()
        .unwrap()
        .iter()
        .zip(gpu["samples"].as_array().unwrap())
    {
        for (x, y) in floats(&a["top_singular_values"])
            .iter()
            .zip(floats(&b["top_singular_values"]))
        {
            assert!(
                (x - y).abs() < 1e-9 * x.abs(),
                "jacobian --lanczos: {x} vs {y}"
            );
        }
    }
}

/// FARMS's windows on a GPU (each span's windows solved as one batch there, spread over the
/// cores on the CPU) give the CPU's α.
#[test]
fn farms_windows_on_cuda_equal_the_cpu_ones() {
    if !cuda_here("farms_windows_on_cuda_equal_the_cpu_ones") {
        return;
    }
    for name in ["digits_cnn_trained.pt", "digits_mlp_trained.pt"] {
        let model = Model::load(shipped_model(name)).unwrap();
        let alphas = |device: &str| -> Vec<f64> {
            let options = fixtures::options(serde_json::json!({
                "device": device, "estimator": "farms-peak", "farms_window": 64, "farms_grid": 4,
            }));
            analyze(&model, &options)
                .unwrap()
                .layers
                .iter()
                .map(|l| l.power_law.as_ref().map_or(f64::NAN, |f| f.alpha))
                .collect()
        };
        let (cpu, cuda) = (alphas("cpu"), alphas("cuda:0"));
        assert_eq!(cpu.len(), cuda.len(), "{name}");
        for (a, b) in cpu.iter().zip(&cuda) {
            assert!(
                (a - b).abs() <= 1e-8 * a.abs(),
                "{name}: α {a} on the CPU, {b} on CUDA"
            );
        }
    }
}
