//! The library's own speed, so that a regression shows in Rust: `cargo bench --bench library`.
//! The side-by-side comparisons with WeightWatcher, PyHessian and torch.func, with their
//! ratios, are `scripts/benchmark*.py`.
use std::path::{Path, PathBuf};

use rmt_torch::stats::heavy_tail::power_law;
use rmt_torch::{analyze, AnalysisRequest, AnalyzeOptions, DeviceChoice, Model};

fn main() {
    divan::main();
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

/// The whole pipeline on the shipped models, on the CPU.
#[divan::bench(args = ["digits_mlp_trained.pt", "digits_cnn_trained.pt"], sample_count = 20)]
fn analyze_shipped(bencher: divan::Bencher, name: &str) {
    let model = Model::load(shipped(name)).unwrap();
    let options = AnalyzeOptions::default().on_device(DeviceChoice::Cpu);
    bencher.bench_local(|| analyze(&model, &options).unwrap());
}

/// Resolving a request: what every front end pays before any work.
#[divan::bench]
fn resolve_options(bencher: divan::Bencher) {
    let mut request = AnalysisRequest::default();
    request.selection.layers = Some(r"features\.\d+\.weight|classifier".into());
    request.selection.ww_compat = true;
    bencher.bench(|| request.resolve().unwrap());
}

/// The power-law fit (the KS scan over every candidate xmin) of a Pareto sample.
#[divan::bench(args = [1_000, 10_000])]
fn power_law_fit(bencher: divan::Bencher, n: usize) {
    let alpha = 3.0;
    let eigenvalues: Vec<f64> = (1..=n)
        .map(|i| (1.0 - i as f64 / (n + 1) as f64).powf(-1.0 / (alpha - 1.0)))
        .collect();
    bencher.bench(|| power_law::fit(&eigenvalues, 0.0).unwrap());
}
