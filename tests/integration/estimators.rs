//! `--estimator`: every α against a reference written from the methods' published code, in
//! numpy (and `torch.histc`, which their peak rule bins with), float64: the xmin-peak fit of
//! AlphaPruning (Lu et al. 2024) and AlphaLoRA, TempBalance's median Hill estimate (Zhou et al.
//! 2023), FARMS's `fixed_sampling` windows and convolution row blocks (Hu et al. 2025) fitted
//! by those rules and by WeightWatcher 0.7.7's own `WWFit`. The FARMS claim is reproduced: the
//! median Hill α of pure noise depends on the aspect ratio, FARMS's does not.
use serde_json::Value;

use crate::fixtures::{self, run_ok};

/// The fits as the references compute them, in numpy (and `torch.histc` for the peak rule):
/// `peak` is the xmin-peak loop of AlphaPruning's, AlphaLoRA's and TempBalance's
/// `net_esd_estimator`, `median` TempBalance's `xmin_mid`, `ww` WeightWatcher 0.7.7's `WWFit`.
pub const FITS: &str = r#"
import contextlib, io, math
import numpy as np, torch
from weightwatcher.WW_powerlaw import WWFit

def ks(x, i, alpha):
    n = len(x) - i
    return np.max(np.abs(1 - (x[i:] / x[i]) ** (1 - alpha) - np.arange(n) / n))

def hill(x, i):
    n = len(x) - i
    return 1 + n / (np.sum(np.log(x[i:])) - n * np.log(x[i]))

def median(x):
    x = np.sort(x)
    return hill(x, len(x) // 2)

def peak(x):
    # The references' loop: xmin in [log10(0.95 p), 1.5 p], p from torch.histc's fullest bin.
    x = np.sort(x)
    logs = torch.log10(torch.tensor(x))
    counts = torch.histc(logs, 100, min=logs.min().item(), max=logs.max().item())
    edges = torch.linspace(logs.min().item(), logs.max().item(), 101, dtype=torch.float64)
    p = 10 ** edges[int(torch.argmax(counts))].item()
    alphas, ds = np.zeros(len(x) - 1), np.ones(len(x) - 1)
    for i in range(len(x) - 1):
        if x[i] < math.log10(0.95 * p):
            continue
        if x[i] > 1.5 * p:
            break
        alphas[i] = hill(x, i)
        if alphas[i] > 1:
            ds[i] = ks(x, i, alphas[i])
    return alphas[int(np.argmin(ds))]

def ww(x):
    with contextlib.redirect_stdout(io.StringIO()):
        return float(WWFit(np.sort(x[x > 1e-5])).alpha)

def esd(w):
    return np.linalg.svd(w, compute_uv=False) ** 2

"#;

/// Writes a model of heavy-tailed matrices (tall, wide, square) and a convolution, then prints
/// every estimator's α per layer as the references compute it, windows b = 24, Q = 1.5, k = 4.
const REFERENCE: &str = r#"
import json, sys
from safetensors.torch import save_file

torch.manual_seed(7)
def heavy(r, c):
    w = torch.randn(r, c, dtype=torch.float64) / c ** 0.5
    u, s, v = torch.linalg.svd(w, full_matrices=False)
    return (u * (s * (1 + 3 * torch.rand(s.shape, dtype=torch.float64) ** 6))) @ v
tensors = {"tall.weight": heavy(200, 64), "wide.weight": heavy(96, 160),
           "square.weight": heavy(120, 120),
           "conv.weight": torch.randn(48, 24, 3, 3, dtype=torch.float64) * 0.1}
save_file({k: v.contiguous() for k, v in tensors.items()}, sys.argv[1])

def fixed_sampling(w, b, q, k):
    rows, cols = w.shape
    b = min(b, rows, cols)
    bc = int(b * q)
    row_step = max(1, (rows - b) // (k - 1))
    col_step = max(1, (cols - bc) // (k - 1))
    pooled = []
    for i in range(min(k, max(1, (rows - b) // row_step + 1))):
        for j in range(min(k, max(1, (cols - bc) // col_step + 1))):
            r, c = min(i * row_step, rows - b), min(j * col_step, cols - bc)
            pooled.append(esd(w[r:r + b, c:c + bc]))
    return np.concatenate(pooled)

def conv_blocks(w, q):
    slices = [w[:, :, i, j] for i in range(w.shape[2]) for j in range(w.shape[3])]
    slices = [s.T if s.shape[0] < s.shape[1] else s for s in slices]
    rows, cols = slices[0].shape
    nr, nc = (max(1, int(cols // q)), cols) if q > 1 else (cols, max(1, int(cols // (1 / q))))
    return [np.concatenate([esd(s[i * nr:(i + 1) * nr, :nc]) * 0.5 for s in slices])
            for i in range(rows // cols)]

out = {}
for name, w in tensors.items():
    w = w.numpy()
    if w.ndim == 2:
        whole, groups = esd(w), [fixed_sampling(w, 24, 1.5, 4)]
    else:
        whole = np.concatenate([esd(w[:, :, i, j]) for i in range(3) for j in range(3)]) * 0.5
        groups = conv_blocks(w, 1.5)
    mean = lambda fit: float(np.mean([fit(g) for g in groups]))
    out[name] = {"alpha-peak": float(peak(whole)), "hill-median": float(median(whole)),
                 "farms": mean(ww), "farms-peak": mean(peak), "farms-median": mean(median)}
print(json.dumps(out))
"#;

/// The flags of `estimator` as these tests run it (FARMS with small windows).
fn estimator_flags(estimator: &str) -> Vec<&str> {
    let mut flags = vec!["--estimator", estimator, "--min-evals", "2", "-f", "json"];
    if estimator.starts_with("farms") {
        flags.extend([
            "--farms-window",
            "24",
            "--farms-q",
            "1.5",
            "--farms-grid",
            "4",
        ]);
    }
    flags
}

fn alphas(path: &str, estimator: &str) -> Vec<(String, f64)> {
    let mut args = vec!["analyze", path];
    args.extend(estimator_flags(estimator));
    let json: Value = serde_json::from_str(&run_ok(&args)).unwrap();
    assert_eq!(json["settings"]["estimator"], estimator);
    json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let alpha = l["alpha"].as_f64().unwrap_or(f64::NAN);
            (l["name"].as_str().unwrap().to_string(), alpha)
        })
        .collect()
}

#[test]
fn every_estimator_equals_its_reference() {
    let path = fixtures::output_dir("estimators-fits").join("model.safetensors");
    let expected: Value = fixtures::python_json(&format!("{FITS}{REFERENCE}"), &[&path]);
    let path = path.to_str().unwrap();
    for estimator in [
        "alpha-peak",
        "hill-median",
        "farms",
        "farms-peak",
        "farms-median",
    ] {
        let ours = alphas(path, estimator);
        assert_eq!(ours.len(), 4, "{estimator}: {ours:?}");
        for (name, alpha) in ours {
            let theirs = expected[&name][estimator].as_f64().unwrap();
            assert!(
                (alpha - theirs).abs() <= 1e-9 * theirs,
                "{estimator} {name}: {alpha} vs the reference's {theirs}"
            );
        }
    }
}

/// Pure noise of aspect ratios 1, 2, 4 and 8: the median Hill α rises with the ratio, FARMS's
/// (b = 128) stays put, as Hu et al. (2025) report.
#[test]
fn farms_removes_the_aspect_ratio_bias() {
    let path = fixtures::output_dir("estimators-noise").join("noise.safetensors");
    let script = r#"
import sys, torch
from safetensors.torch import save_file
torch.manual_seed(1)
save_file({f"q{q}.weight": torch.randn(256, 256 * q) for q in (1, 2, 4, 8)}, sys.argv[1])
print("{}")
"#;
    let _: Value = fixtures::python_json(script, &[&path]);
    let spread = |estimator: &str, extra: &[&str]| {
        let mut args = vec!["analyze", path.to_str().unwrap(), "--estimator", estimator];
        args.extend(extra);
        args.extend(["-f", "json"]);
        let json: Value = serde_json::from_str(&run_ok(&args)).unwrap();
        let alphas: Vec<f64> = json["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["alpha"].as_f64().unwrap())
            .collect();
        let (lo, hi) = alphas
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &a| {
                (lo.min(a), hi.max(a))
            });
        (alphas, hi - lo)
    };
    let (plain, plain_spread) = spread("hill-median", &[]);
    let (farms, farms_spread) = spread("farms-median", &["--farms-window", "128"]);
    assert!(
        plain_spread > 1.0 && plain.windows(2).all(|p| p[1] > p[0]),
        "the bias is not there to remove: {plain:?}"
    );
    assert!(
        farms_spread < 0.05,
        "FARMS's α still depends on the aspect ratio: {farms:?} (without: {plain:?})"
    );
}

/// One α per estimator in every command: `compare`'s sides (which form their Gram matrices
/// themselves for the default estimator) report what `analyze` reports.
#[test]
fn compare_reports_the_estimators_alpha() {
    let (init, trained) = (
        fixtures::shipped_model("digits_cnn_init.pt"),
        fixtures::shipped_model("digits_cnn_trained.pt"),
    );
    for estimator in ["farms-median", "alpha-peak"] {
        let analysis = alphas(trained.to_str().unwrap(), estimator);
        let mut args = vec!["compare", init.to_str().unwrap(), trained.to_str().unwrap()];
        args.extend(estimator_flags(estimator));
        let compared: Value = serde_json::from_str(&run_ok(&args)).unwrap();
        for (name, alpha) in analysis {
            let layer = compared["layers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{estimator}: {name} not compared"));
            assert_eq!(
                layer["other"]["alpha"].as_f64().unwrap(),
                alpha,
                "{estimator} {name}"
            );
        }
    }
}
