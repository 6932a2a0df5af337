//! `compare`: the update's spectrum and the distances against numpy, the matching rules on
//! models made to test them.
use serde_json::Value;

use crate::fixtures::{self, floats, run, run_ok};

/// Per weight of the shipped CNN at init (argv[1]) and trained (argv[2]), from torch's own
/// loader: the update's pooled eigenvalues in the RMT convention (σ²/N of each [out, in]
/// slice, N the larger side), ‖ΔW‖_F/‖W‖_F and ‖ΔW‖₂/‖W‖₂ and linear CKA of the weights as
/// [out, rest] matrices, and KS and Wasserstein-1 between the two ESDs on log₁₀ λ.
const REFERENCE: &str = r#"
import json, sys, numpy, scipy.stats, torch
base = {k: v.double().numpy() for k, v in torch.jit.load(sys.argv[1]).state_dict().items()}
other = {k: v.double().numpy() for k, v in torch.jit.load(sys.argv[2]).state_dict().items()}
def slices(w):
    if w.ndim == 2:
        return [w]
    return [w[:, :, i, j] for i in range(w.shape[2]) for j in range(w.shape[3])]
def esd(w):
    values = []
    for s in slices(w):
        n = max(s.shape)
        values.extend(numpy.linalg.svd(s, compute_uv=False) ** 2 / n)
    return sorted(values)
def cka(x, y):
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    return numpy.linalg.norm(y.T @ x) ** 2 / (numpy.linalg.norm(x.T @ x) * numpy.linalg.norm(y.T @ y))
out = {}
for name, w in base.items():
    if not name.endswith("weight") or w.ndim < 2:
        continue
    v = other[name]
    flat = lambda t: t.reshape(t.shape[0], -1)
    d = v - w
    logs = lambda e: numpy.log10([x for x in e if x > 0])
    out[name] = {
        "update_eigenvalues": esd(d),
        "relative_frobenius": numpy.linalg.norm(d) / numpy.linalg.norm(w),
        "relative_spectral": numpy.linalg.norm(flat(d), 2) / numpy.linalg.norm(flat(w), 2),
        "cka": cka(flat(w), flat(v)),
        "esd_ks": scipy.stats.ks_2samp(logs(esd(w)), logs(esd(v))).statistic,
        "esd_wasserstein": scipy.stats.wasserstein_distance(logs(esd(w)), logs(esd(v))),
    }
print(json.dumps(out))
"#;

fn close(ours: f64, theirs: f64, tolerance: f64) -> bool {
    (ours - theirs).abs() <= tolerance * theirs.abs().max(1e-300)
}

#[test]
fn the_update_and_the_distances_equal_numpy() {
    let (init, trained) = (
        fixtures::shipped_model("digits_cnn_init.pt"),
        fixtures::shipped_model("digits_cnn_trained.pt"),
    );
    let reference: Value = fixtures::python_json(REFERENCE, &[&init, &trained]);
    let ours: Value = serde_json::from_str(&run_ok(&[
        "compare",
        init.to_str().unwrap(),
        trained.to_str().unwrap(),
        "--convention",
        "rmt",
        "--min-evals",
        "1",
        "--eigenvalues",
        "-f",
        "json",
        "-q",
    ]))
    .unwrap();
    assert_eq!(ours["schema"], "rmt-torch/compare/v1");
    assert_eq!(ours["settings"]["convention"], "rmt");
    assert_eq!(ours["settings"]["min_evals"], 1);
    let layers = ours["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4);
    assert!(ours["unmatched"].as_array().unwrap().is_empty());
    // The summary: every layer changed; the largest update and the smallest CKA are the
    // layers'; the mean change of α is theirs.
    let summary = &ours["summary"];
    assert_eq!(
        (&summary["layers"], &summary["changed"]),
        (&Value::from(4), &Value::from(4))
    );
    let field = |layer: &Value, name: &str| layer[name].as_f64().unwrap();
    let most = layers
        .iter()
        .max_by(|a, b| field(a, "relative_frobenius").total_cmp(&field(b, "relative_frobenius")))
        .unwrap();
    assert_eq!(summary["most_changed"], most["name"]);
    let min_cka = layers
        .iter()
        .map(|l| field(l, "cka"))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(summary["min_cka"].as_f64(), Some(min_cka));
    let mean = layers.iter().map(|l| field(l, "delta_alpha")).sum::<f64>() / 4.0;
    assert!((summary["mean_delta_alpha"].as_f64().unwrap() - mean).abs() < 1e-12);
    for layer in layers {
        let name = layer["name"].as_str().unwrap();
        let want = &reference[name];
        let mut eigenvalues = floats(&layer["update"]["eigenvalues"]);
        eigenvalues.sort_by(f64::total_cmp);
        let expected = floats(&want["update_eigenvalues"]);
        assert_eq!(eigenvalues.len(), expected.len(), "{name}");
        let top = expected.last().copied().unwrap();
        for (ours, theirs) in eigenvalues.iter().zip(&expected) {
            assert!(
                (ours - theirs).abs() <= 1e-10 * top,
                "{name}: {ours} vs {theirs}"
            );
        }
        for field in [
            "relative_frobenius",
            "relative_spectral",
            "cka",
            "esd_ks",
            "esd_wasserstein",
        ] {
            let (o, t) = (
                layer[field].as_f64().unwrap(),
                want[field].as_f64().unwrap(),
            );
            assert!(close(o, t, 1e-12), "{name} {field}: {o} vs {t}");
        }
        let delta =
            layer["other"]["alpha"].as_f64().unwrap() - layer["base"]["alpha"].as_f64().unwrap();
        assert!(close(layer["delta_alpha"].as_f64().unwrap(), delta, 1e-12));
    }
    // Each side is what analyze reports for that model.
    let analysed: Value = serde_json::from_str(&run_ok(&[
        "analyze",
        trained.to_str().unwrap(),
        "--convention",
        "rmt",
        "--min-evals",
        "1",
        "-f",
        "json",
        "-q",
    ]))
    .unwrap();
    for (layer, alone) in layers.iter().zip(analysed["layers"].as_array().unwrap()) {
        for field in ["alpha", "lambda_max", "stable_rank"] {
            let (o, a) = (
                layer["other"][field].as_f64().unwrap(),
                alone[field].as_f64().unwrap(),
            );
            assert!(close(o, a, 1e-12), "{} {field}: {o} vs {a}", layer["name"]);
        }
    }
    let figures = fixtures::output_dir("compare-figures");
    let table = run_ok(&[
        "compare",
        init.to_str().unwrap(),
        trained.to_str().unwrap(),
        "-q",
        "--plots",
        figures.to_str().unwrap(),
        "--plot-format",
        "svg",
    ]);
    let header = table.lines().find(|l| l.starts_with("name ")).unwrap();
    assert!(header.contains("relative_frobenius") && header.contains("update.alpha"));
    let overview = std::fs::read_to_string(figures.join("compare.svg")).unwrap();
    for text in ["α before and after", "the update", "conv1", "fc2"] {
        assert!(overview.contains(text), "compare.svg lacks {text}");
    }
    for (index, layer) in layers.iter().enumerate() {
        let stem = layer["name"].as_str().unwrap().replace('.', "_");
        let esd = figures.join(format!("{index:03}_{stem}_update_esd.svg"));
        assert!(esd.exists(), "{}", esd.display());
    }
}

/// Wrapper prefixes and a stored transpose match; another shape or a missing partner is
/// listed with its reason, never zero-filled.
#[test]
fn layers_match_by_name_and_shape_or_are_listed() {
    let dir = fixtures::output_dir("compare-matching");
    let script = r#"
import sys, torch
from safetensors.torch import save_file
torch.manual_seed(0)
a, b, c = torch.randn(8, 16), torch.randn(16, 12), torch.randn(10, 10)
save_file({"fc.weight": a, "proj.weight": b, "odd.weight": c, "only_base.weight": torch.randn(9, 9)},
          sys.argv[1] + "/base.safetensors")
save_file({"module.fc.weight": a + 0.1, "module.proj.weight": (b + 0.1).T.contiguous(),
           "module.odd.weight": torch.randn(10, 12), "module.only_other.weight": torch.randn(9, 9)},
          sys.argv[1] + "/other.safetensors")
"#;
    let status = fixtures::reference_python()
        .args(["-c", script])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let (base, other) = (dir.join("base.safetensors"), dir.join("other.safetensors"));
    let json: Value = serde_json::from_str(&run_ok(&[
        "compare",
        base.to_str().unwrap(),
        other.to_str().unwrap(),
        "-f",
        "json",
        "-q",
    ]))
    .unwrap();
    let matched: Vec<(&str, &str)> = json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["storage"].as_str().unwrap()))
        .collect();
    assert_eq!(
        matched,
        [("fc.weight", "same"), ("proj.weight", "transposed")]
    );
    let fc = &json["layers"][0];
    assert_eq!(fc["other_name"], "module.fc.weight");
    // A constant shift of 0.1 in every entry: ‖ΔW‖_F = 0.1·√(8·16).
    let norm = 0.1 * (128.0_f64).sqrt();
    let relative = fc["relative_frobenius"].as_f64().unwrap();
    assert!(
        relative > 0.0
            && (relative * fc["base"]["norm"].as_f64().unwrap().sqrt() - norm).abs() < 1e-5 * norm
    );
    let unmatched: Vec<(String, String, String)> = json["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_string(),
                u["side"].as_str().unwrap().to_string(),
                u["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(unmatched.len(), 3, "{unmatched:?}");
    assert!(unmatched
        .iter()
        .any(|(n, s, r)| n == "odd.weight" && s == "base" && r.contains("[10, 12]")));
    assert!(unmatched
        .iter()
        .any(|(n, s, _)| n == "only_base.weight" && s == "base"));
    assert!(unmatched
        .iter()
        .any(|(n, s, _)| n == "module.only_other.weight" && s == "other"));
    let table = run_ok(&[
        "compare",
        base.to_str().unwrap(),
        other.to_str().unwrap(),
        "-q",
    ]);
    assert!(
        table.contains("3 layers left out") && table.contains("shape [10, 10] here, [10, 12]"),
        "{table}"
    );
    // Nothing in common is an error, not an empty report.
    let alone = dir.join("alone.safetensors");
    let status = fixtures::reference_python()
        .args(["-c", "import sys, torch; from safetensors.torch import save_file; save_file({'x.weight': torch.randn(9, 9)}, sys.argv[1])"])
        .arg(&alone)
        .status()
        .unwrap();
    assert!(status.success());
    let refused = run(&[
        "compare",
        base.to_str().unwrap(),
        alone.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("matches one of"));
}

/// `--fail-if` rules read the comparison's columns per layer, with zoo's exit codes; a summary
/// field or a field that is not a numeric column is refused before any work.
#[test]
fn rules_judge_the_comparison() {
    let (init, trained) = (
        fixtures::shipped_model("digits_cnn_init.pt"),
        fixtures::shipped_model("digits_cnn_trained.pt"),
    );
    let (init, trained) = (init.to_str().unwrap(), trained.to_str().unwrap());
    let json: Value =
        serde_json::from_str(&run_ok(&["compare", init, trained, "-f", "json", "-q"])).unwrap();
    let layers = json["layers"].as_array().unwrap();
    let field =
        |name: &str| -> Vec<f64> { layers.iter().map(|l| l[name].as_f64().unwrap()).collect() };
    let largest_drop = field("delta_alpha").into_iter().fold(f64::MAX, f64::min);
    let lowest_cka = field("cka").into_iter().fold(f64::MAX, f64::min);
    let cases = [
        (format!("min_delta_alpha<{}", largest_drop + 0.01), true),
        (format!("min_delta_alpha<{}", largest_drop - 0.01), false),
        (format!("any(cka<{})", lowest_cka + 0.01), true),
        (format!("any(cka<{})", lowest_cka - 0.01), false),
        (
            "layers=^fc:count(relative_frobenius>0)>=2".to_string(),
            true,
        ),
        (
            "layers=^fc:count(relative_frobenius>0)>=3".to_string(),
            false,
        ),
    ];
    for (rule, violated) in cases {
        let output = run(&[
            "compare",
            init,
            trained,
            "-f",
            "json",
            "-q",
            "--fail-if",
            &rule,
        ]);
        assert_eq!(
            output.status.code(),
            Some(if violated { 1 } else { 0 }),
            "{rule}"
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["rules"][0], rule.as_str());
        assert_eq!(
            report["violations"].as_array().unwrap().len(),
            usize::from(violated),
            "{rule}"
        );
    }
    for (bad, says) in [
        ("alpha>6", "unknown field 'alpha'"),
        ("max_quality>1", "not a numeric layer field"),
    ] {
        let output = run(&["compare", init, trained, "-q", "--fail-if", bad]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(says),
            "{bad}"
        );
    }
}

/// `report MODEL --base BASE` adds a section on what changed: the comparison's rows (every
/// matched layer, largest update first, as `compare` sorts them), its figure and a link to it;
/// for a LoRA adapter given as MODEL, the adapter laid over the base.
#[test]
fn report_with_a_base_shows_what_changed() {
    let (init, trained) = (
        fixtures::shipped_model("digits_cnn_init.pt"),
        fixtures::shipped_model("digits_cnn_trained.pt"),
    );
    let dir = fixtures::output_dir("report_base");
    let page = dir.join("changes.html");
    run_ok(&[
        "report",
        trained.to_str().unwrap(),
        "--base",
        init.to_str().unwrap(),
        "--no-vectors",
        "-o",
        page.to_str().unwrap(),
        "-q",
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<a href=\"#changes\">Changes</a>"));
    let section = &html[html.find("<h2 id=\"changes\">").expect("a changes section")..];
    let section = &section[..section.find("<h2 id=\"details\">").unwrap()];
    let comparison: Value = serde_json::from_str(&run_ok(&[
        "compare",
        init.to_str().unwrap(),
        trained.to_str().unwrap(),
        "-f",
        "json",
        "-q",
    ]))
    .unwrap();
    let mut layers: Vec<(f64, String)> = comparison["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["relative_frobenius"].as_f64().unwrap(),
                l["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    layers.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positions: Vec<usize> = layers
        .iter()
        .map(|(_, name)| {
            section
                .find(&format!("<td>{name}</td>"))
                .unwrap_or_else(|| panic!("{name} not in the section"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "largest update first"
    );
    assert!(section.contains("<svg"), "the comparison's figure");
    // Without --base, no such section.
    run_ok(&[
        "report",
        trained.to_str().unwrap(),
        "--no-vectors",
        "-o",
        page.to_str().unwrap(),
        "-q",
    ]);
    assert!(!std::fs::read_to_string(&page)
        .unwrap()
        .contains("id=\"changes\""));
}

/// Makes under argv[3] a fine-tuned copy of the PyPI model argv[1] (three SGD steps of each
/// weight on a regression of random inputs to random targets, seeded) as `tuned.pt`, and as
/// `grown.pt` the same with one output channel added to argv[2] (another shape).
const FINE_TUNE: &str = r#"
import sys, torch
source, grown_layer, out = sys.argv[1], sys.argv[2], sys.argv[3]
state = torch.load(source, map_location="cpu", weights_only=True)
state = state.get("model_state", state)
torch.manual_seed(7)
tuned = {}
for name, w in state.items():
    if w.ndim >= 2 and w.is_floating_point():
        p = w.clone().float().requires_grad_(True)
        optimiser = torch.optim.SGD([p], lr=0.05)
        x = torch.randn(64, w[0].numel())
        target = torch.randn(64, w.shape[0])
        for _ in range(3):
            optimiser.zero_grad()
            ((x @ p.reshape(w.shape[0], -1).T - target) ** 2).mean().backward()
            optimiser.step()
        tuned[name] = p.detach()
    else:
        tuned[name] = w.clone()
torch.save(tuned, out + "/tuned.pt")
grown = dict(tuned)
for key in (grown_layer + ".weight", grown_layer + ".bias"):
    grown[key] = torch.cat([grown[key], grown[key][:1]], 0)
torch.save(grown, out + "/grown.pt")
print("{}")
"#;

/// The update's record under `--ww-compat` against WeightWatcher 0.7.7's
/// `analyze(base_model=…)` of the same two models: every column both report equal, to 1e-6
/// relative (absolute below 1; WeightWatcher subtracts the weights in their float32, we in f64: numpy's f64
/// reference above agrees with ours to 1e-10).
fn assert_updates_match_weightwatcher(
    kind: &str,
    base: &std::path::Path,
    other: &std::path::Path,
) -> Value {
    let kwargs = format!(r#"{{"base_model": "{}"}}"#, base.display());
    let (header, theirs) = fixtures::weightwatcher_details(kind, other, &kwargs);
    let ours: Value = serde_json::from_str(&run_ok(&[
        "compare",
        base.to_str().unwrap(),
        other.to_str().unwrap(),
        "--ww-compat",
        "-f",
        "json",
        "-q",
    ]))
    .unwrap();
    let mut compared = 0;
    for layer in ours["layers"].as_array().unwrap() {
        let name = layer["name"].as_str().unwrap();
        let reference = &theirs[name];
        let update = &layer["update"];
        let sv_max: f64 = reference["sv_max"].parse().unwrap();
        for column in header.iter().filter(|c| *c != "layer_id") {
            let (Some(value), Ok(want)) =
                (update[column].as_f64(), reference[column].parse::<f64>())
            else {
                continue;
            };
            // Logarithms near 0 are compared absolutely, σmin to f32's error on σmax.
            let scale = if column == "sv_min" {
                sv_max
            } else {
                want.abs().max(1.0)
            };
            assert!(
                (value - want).abs() <= 1e-6 * scale,
                "{name}: {column} = {value}, WeightWatcher {want}"
            );
            compared += 1;
        }
    }
    assert!(
        compared >= 10 * ours["layers"].as_array().unwrap().len(),
        "{compared} cells"
    );
    ours
}

#[test]
fn updates_equal_weightwatcher_with_a_base_model() {
    let (init, trained) = (
        fixtures::shipped_model("digits_cnn_init.pt"),
        fixtures::shipped_model("digits_cnn_trained.pt"),
    );
    assert_updates_match_weightwatcher("digits-cnn", &init, &trained);
    // A real pretrained model (MTCNN's O-Net, shipped by facenet-pytorch) and a fine-tuned
    // copy of it.
    let dir = fixtures::output_dir("compare_ww");
    let onet = fixtures::pypi_model("facenet-pytorch/onet.pt");
    let _: Value = fixtures::python_json(FINE_TUNE, &[&onet, std::path::Path::new("conv1"), &dir]);
    let tuned = dir.join("tuned.pt");
    assert_updates_match_weightwatcher("weights", &onet, &tuned);
    // Where WeightWatcher zero-fills a layer of another shape, we leave it out and say why.
    let grown = dir.join("grown.pt");
    let ours: Value = serde_json::from_str(&run_ok(&[
        "compare",
        onet.to_str().unwrap(),
        grown.to_str().unwrap(),
        "-f",
        "json",
        "-q",
    ]))
    .unwrap();
    let unmatched = ours["unmatched"].as_array().unwrap();
    assert!(
        unmatched.iter().any(|u| u["name"] == "conv1.weight"
            && u["reason"]
                .as_str()
                .unwrap()
                .contains("shape [32, 3, 3, 3] here, [33, 3, 3, 3]")),
        "{unmatched:?}"
    );
    assert!(ours["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["name"] != "conv1.weight"));
}
