//! `scripts/gallery` draws every figure kind for the shipped models; each figure keeps its
//! labels (SVG text elements, no markup left in them) and its ink (PNG pixel statistics), so
//! that a regression in labels or layout fails here.
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::fixtures::{self, python_json};
use crate::plots::{has_text, svg_texts};

/// Each figure (path under the gallery, without extension) with texts it must show.
const FIGURES: &[(&str, &[&str])] = &[
    (
        "analyze/model",
        &["power-law exponent α", "conv1", "fc2", "Tracy-Widom spikes"],
    ),
    (
        "analyze/002_fc1_weight_esd",
        &[
            "eigenvalue λ",
            "density ρ(λ)",
            "Marchenko-Pastur",
            "baseline ESD",
            "beyond λ =",
        ],
    ),
    ("analyze/002_fc1_weight_tail", &["P(Λ ≥ λ)", "xmin"]),
    (
        "analyze/002_fc1_weight_spacing",
        &["unfolded spacing s", "GOE surmise", "Poisson"],
    ),
    ("analyze/002_fc1_weight_number_variance", &["Σ²(L)", "GOE"]),
    (
        "analyze/002_fc1_weight_porter_thomas",
        &[
            "eigenvector rank (ascending eigenvalue)",
            "KS p-value against N(0, 1/M)",
        ],
    ),
    (
        "jacobian/jacobian",
        &["singular value σ of ∂f/∂x", "density"],
    ),
    (
        "hessian/hessian_density",
        &[
            "loss Hessian spectral density",
            "SLQ density (2 runs)",
            "bulk edge",
        ],
    ),
    ("track/alpha", &["training step", "conv1.weight"]),
    ("track/esd_fc1_weight", &["log₁₀ λ", "step 0", "step 1000"]),
    (
        "theory/ridge",
        &["samples per dimension n/p", "simulated ± 1 s.e., λ = 0.1"],
    ),
    (
        "theory/random_features",
        &[
            "features per training sample N/n",
            "test, simulated ± 1 s.e.",
        ],
    ),
    ("theory/dyson_spacing", &["GOE surmise"]),
    ("theory/dyson_density", &["eigenvalue x", "pair density"]),
    ("theory/depth_distance", &["depth L", "measured"]),
    ("theory/depth_spectra", &["density"]),
    (
        "theory/kernel",
        &["samples n (= p)", "relative operator-norm error"],
    ),
    (
        "theory/preactivation",
        &["variances (± 1 s.e. over networks)", "layer l"],
    ),
];

/// Per PNG: width, height and the share of pixels that are not white.
pub const PIXEL_STATISTICS: &str = r#"
import json, sys
from pathlib import Path
from PIL import Image
stats = {}
for path in sorted(Path(sys.argv[1]).rglob("*.png")):
    image = Image.open(path).convert("L")
    ink = sum(1 for value in image.getdata() if value < 245) / (image.width * image.height)
    stats[str(path.relative_to(sys.argv[1]).with_suffix(""))] = [image.width, image.height, ink]
print(json.dumps(stats))
"#;

#[test]
fn every_figure_kind_keeps_its_labels_and_its_ink() {
    let out = fixtures::output_dir("gallery");
    let status = Command::new(fixtures::root().join("scripts/gallery"))
        .arg(&out)
        .env("RMT_TORCH_BIN", env!("CARGO_BIN_EXE_rmt-torch"))
        .status()
        .expect("run scripts/gallery");
    assert!(status.success(), "scripts/gallery failed");
    for (figure, wanted) in FIGURES {
        let texts = svg_texts(&out.join(format!("{figure}.svg")));
        for text in *wanted {
            assert!(has_text(&texts, text), "{figure} lacks {text:?}: {texts:?}");
        }
    }
    let stats: HashMap<String, (u32, u32, f64)> = python_json(PIXEL_STATISTICS, &[&out]);
    assert!(stats.len() >= 30, "{} figures", stats.len());
    for (figure, (width, height, ink)) in &stats {
        assert!(
            *width >= 720 && *height >= 380,
            "{figure}: {width}×{height}"
        );
        // Axes, labels and data, but neither a blank page nor a page painted over.
        assert!(
            (0.01..0.5).contains(ink),
            "{figure}: {ink} of its pixels inked"
        );
        let svg = std::fs::read_to_string(out.join(format!("{figure}.svg"))).unwrap();
        for leak in ["_{", "^{", "NaN", "inf<"] {
            assert!(!svg.contains(leak), "{figure} shows {leak:?}");
        }
    }
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("<nav class=\"toc\">") && report.contains("<details id=\"layer-0\""));
    assert!(Path::new(&out).join("analyze/model.png").exists());
}
