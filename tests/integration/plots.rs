//! Figures (`--plots`) and the HTML report: valid PNG and SVG with the expected text, Thamm,
//! Staats & Rosenow's (2022) picture for the shipped CNN at initialisation and after training, and the report opened in
//! headless Chromium.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixtures::{self, run, run_ok, shipped_model};

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

/// Every `<text>` element's content of an SVG document, after checking it is one.
pub fn svg_texts(path: &Path) -> Vec<String> {
    let svg = std::fs::read_to_string(path).unwrap();
    let svg = svg.trim();
    assert!(
        svg.starts_with("<svg") && svg.ends_with("</svg>"),
        "{} is not an SVG",
        path.display()
    );
    svg.split("<text")
        .skip(1)
        .map(|chunk| {
            let start = chunk.find('>').unwrap() + 1;
            let end = chunk.find("</text>").unwrap();
            chunk[start..end].trim().to_string()
        })
        .collect()
}

pub fn has_text(texts: &[String], wanted: &str) -> bool {
    texts.iter().any(|t| t.contains(wanted))
}

fn analyze_with_plots(model: &str, dir: &Path, extra: &[&str]) {
    let model = shipped_model(model);
    let mut args = vec![
        "analyze",
        model.to_str().unwrap(),
        "--plots",
        dir.to_str().unwrap(),
        "--vectors",
        "-q",
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

#[test]
fn analyze_writes_png_and_svg_figures_with_labelled_axes() {
    let dir = fixtures::output_dir("plots_formats");
    analyze_with_plots("digits_cnn_trained.pt", &dir, &["--plot-format", "png,svg"]);
    for kind in ["esd", "tail", "spacing", "number_variance", "porter_thomas"] {
        let stem = dir.join(format!("002_fc1_weight_{kind}"));
        let png = stem.with_extension("png");
        assert_eq!(png_size(&png), (720, 440), "{kind}");
        // A blank 720×440 canvas compresses to well under 2 kB.
        assert!(
            std::fs::metadata(&png).unwrap().len() > 10_000,
            "{kind} PNG looks empty"
        );
        let texts = svg_texts(&stem.with_extension("svg"));
        assert!(
            has_text(&texts, "fc1.weight — "),
            "{kind}: no title in {texts:?}"
        );
    }
    let esd = svg_texts(&dir.join("002_fc1_weight_esd.svg"));
    for wanted in ["eigenvalue λ", "density ρ(λ)", "Marchenko-Pastur", "λ₊"] {
        assert!(has_text(&esd, wanted), "ESD lacks {wanted:?}: {esd:?}");
    }
    let spacing = svg_texts(&dir.join("002_fc1_weight_spacing.svg"));
    for wanted in ["unfolded spacing s", "GOE surmise", "Poisson", "cumulative"] {
        assert!(has_text(&spacing, wanted), "spacing lacks {wanted:?}");
    }
    let model = svg_texts(&dir.join("model.svg"));
    for wanted in [
        "power-law exponent α",
        "Tracy-Widom spikes",
        "well-trained",
        "layer",
        "conv1",
        "fc2",
    ] {
        assert!(has_text(&model, wanted), "model figure lacks {wanted:?}");
    }
    // The layers are named on the x axis, not numbered.
    assert!(!has_text(&model, "layer index"));
    // Scripts are drawn as such, never left as markup; the bundled font is named first.
    let raw = std::fs::read_to_string(dir.join("model.svg")).unwrap();
    assert!(raw.contains("‖W‖²<tspan baseline-shift=\"sub\" font-size=\"70%\">F</tspan>"));
    assert!(!raw.contains("_{") && !raw.contains("²_F"));
    assert!(raw.contains("font-family=\"DejaVu Sans, sans-serif\""));
    let (width, height) = png_size(&dir.join("model.png"));
    assert!(
        width > 720 && height > 440,
        "the four-panel figure is {width}×{height}"
    );
}

/// Thamm, Staats & Rosenow's (2022) picture: at initialisation the ESD is a Marchenko-Pastur bulk with nothing past
/// the Tracy-Widom edge and random singular vectors; after training, spikes leave the bulk and
/// the top singular vectors fail Porter-Thomas.
#[test]
fn figures_of_the_shipped_cnn_show_a_bulk_at_init_and_spikes_after_training() {
    let spikes = |texts: &[String]| -> usize {
        let legend = texts
            .iter()
            .find(|t| t.starts_with("Tracy-Widom threshold: "))
            .expect("threshold legend");
        legend["Tracy-Widom threshold: ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let rejected = |texts: &[String]| -> usize {
        let legend = texts.iter().find(|t| t.starts_with("vectors (")).unwrap();
        legend["vectors (".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // At 0.1 % (as in the suite's own test of these models): one random layer in a thousand
    // shows a spike.
    let options = ["--plot-format", "svg", "--tw-level", "0.001"];
    let init = fixtures::output_dir("plots_init");
    analyze_with_plots("digits_cnn_init.pt", &init, &options);
    let trained = fixtures::output_dir("plots_trained");
    analyze_with_plots("digits_cnn_trained.pt", &trained, &options);

    let init_esd = svg_texts(&init.join("002_fc1_weight_esd.svg"));
    let trained_esd = svg_texts(&trained.join("002_fc1_weight_esd.svg"));
    assert_eq!(spikes(&init_esd), 0, "{init_esd:?}");
    assert!(!has_text(&init_esd, "beyond the axis"));
    assert!(spikes(&trained_esd) >= 5, "{trained_esd:?}");
    assert!(has_text(&trained_esd, "beyond the axis"));
    // The spikes get a panel of their own, so the bulk keeps the main panel's width.
    assert!(has_text(&trained_esd, "beyond λ ="));
    assert!(!has_text(&init_esd, "beyond λ ="));

    let init_pt = svg_texts(&init.join("002_fc1_weight_porter_thomas.svg"));
    let trained_pt = svg_texts(&trained.join("002_fc1_weight_porter_thomas.svg"));
    // 256 random vectors: about 13 rejections at 5 %; training adds the structured top ones.
    assert!(rejected(&init_pt) < 26, "{init_pt:?}");
    assert!(
        rejected(&trained_pt) > rejected(&init_pt) + 5,
        "{trained_pt:?}"
    );
}

#[test]
fn a_baseline_is_overlaid_on_the_esd() {
    let dir = fixtures::output_dir("plots_baseline");
    let init = shipped_model("digits_cnn_init.pt");
    analyze_with_plots(
        "digits_cnn_trained.pt",
        &dir,
        &["--plot-format", "svg", "--baseline", init.to_str().unwrap()],
    );
    let esd = svg_texts(&dir.join("002_fc1_weight_esd.svg"));
    assert!(has_text(&esd, "baseline ESD"), "{esd:?}");

    let trained = shipped_model("digits_cnn_trained.pt");
    let without_plots = run(&[
        "analyze",
        trained.to_str().unwrap(),
        "--baseline",
        init.to_str().unwrap(),
    ]);
    assert!(!without_plots.status.success(), "--baseline needs --plots");
}

/// `--plot-size` sizes a one-panel figure; the four-panel overview scales with it, in PNG and
/// SVG; a size that is not WxH within 200…8000 is refused.
#[test]
fn plot_size_sets_the_pixels_of_every_figure() {
    let default = fixtures::output_dir("plot_size_default");
    let large = fixtures::output_dir("plot_size_large");
    let both = ["--plot-format", "png,svg"];
    analyze_with_plots("digits_mlp_trained.pt", &default, &both);
    analyze_with_plots(
        "digits_mlp_trained.pt",
        &large,
        &["--plot-format", "png,svg", "--plot-size", "1440x880"],
    );
    assert_eq!(
        png_size(&default.join("000_fc1_weight_esd.png")),
        (720, 440)
    );
    assert_eq!(png_size(&large.join("000_fc1_weight_esd.png")), (1440, 880));
    let (width, height) = png_size(&default.join("model.png"));
    assert_eq!(png_size(&large.join("model.png")), (2 * width, 2 * height));
    let svg = std::fs::read_to_string(large.join("000_fc1_weight_esd.svg")).unwrap();
    assert!(svg.contains("width=\"1440\"") && svg.contains("height=\"880\""));
    refuses_plot_option(
        "--plot-size",
        &["1440", "10x10", "1440x880x2", "wide"],
        "WIDTHxHEIGHT",
    );
}

/// Each of `values` for `option` is a usage error (exit 2) whose message contains `says`.
fn refuses_plot_option(option: &str, values: &[&str], says: &str) {
    let model = shipped_model("digits_mlp_trained.pt");
    let directory = fixtures::output_dir("plot_option_refused");
    for bad in values {
        let output = run(&[
            "analyze",
            model.to_str().unwrap(),
            "--plots",
            directory.to_str().unwrap(),
            option,
            bad,
        ]);
        assert_eq!(output.status.code(), Some(2), "{option} {bad}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(says),
            "{option} {bad}"
        );
    }
}

/// `--plot-scale` draws the same figure with more pixels: PNGs and SVGs S times the size each
/// way, every font size S times, the same texts, and the same share of the page inked (lines,
/// markers and margins scale with the text); a scale outside 0.25…8 is refused.
#[test]
fn plot_scale_draws_the_same_figure_with_more_pixels() {
    let plain = fixtures::output_dir("plot_scale_1");
    let scaled = fixtures::output_dir("plot_scale_2");
    let both = ["--plot-format", "png,svg"];
    analyze_with_plots("digits_cnn_trained.pt", &plain, &both);
    analyze_with_plots(
        "digits_cnn_trained.pt",
        &scaled,
        &["--plot-format", "png,svg", "--plot-scale", "2"],
    );
    let font_sizes = |path: &Path| -> Vec<f64> {
        let svg = std::fs::read_to_string(path).unwrap();
        svg.split("font-size=\"")
            .skip(1)
            .filter_map(|rest| rest[..rest.find('"').unwrap()].parse().ok())
            .collect()
    };
    let stats = |dir: &Path| -> std::collections::HashMap<String, (u32, u32, f64)> {
        fixtures::python_json(crate::gallery::PIXEL_STATISTICS, &[dir])
    };
    let (plain_stats, scaled_stats) = (stats(&plain), stats(&scaled));
    assert!(plain_stats.len() >= 10, "{} figures", plain_stats.len());
    for (figure, &(width, height, ink)) in &plain_stats {
        let (scaled_width, scaled_height, scaled_ink) = scaled_stats[figure];
        assert_eq!(
            (scaled_width, scaled_height),
            (2 * width, 2 * height),
            "{figure}"
        );
        assert!(
            (scaled_ink / ink - 1.0).abs() < 0.2,
            "{figure}: {ink} of the page inked at scale 1, {scaled_ink} at scale 2"
        );
        let svg = |dir: &Path| dir.join(format!("{figure}.svg"));
        assert_eq!(
            svg_texts(&svg(&plain)),
            svg_texts(&svg(&scaled)),
            "{figure}"
        );
        let (small, large) = (font_sizes(&svg(&plain)), font_sizes(&svg(&scaled)));
        assert!(!small.is_empty() && small.len() == large.len(), "{figure}");
        for (small, large) in small.iter().zip(&large) {
            assert!(
                (large / small - 2.0).abs() < 1e-9,
                "{figure}: {small} → {large}"
            );
        }
    }
    refuses_plot_option(
        "--plot-scale",
        &["0", "9", "0.1", "nan", "two"],
        "expected a scale",
    );
}

#[test]
fn plots_into_a_file_fail_with_one_line() {
    let dir = fixtures::output_dir("plots_bad");
    let file = dir.join("taken");
    std::fs::write(&file, "not a directory").unwrap();
    let model = shipped_model("digits_mlp_trained.pt");
    let output = run(&[
        "analyze",
        model.to_str().unwrap(),
        "--plots",
        file.to_str().unwrap(),
        "-q",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("taken"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let output = run(&[
        "analyze",
        model.to_str().unwrap(),
        "--plots",
        "x",
        "--plot-format",
        "gif",
    ]);
    assert!(!output.status.success());
}

#[test]
fn jacobian_plots_show_the_singular_values_and_the_isometry_band() {
    let dir = fixtures::output_dir("plots_jacobian");
    let model = fixtures::file("jac_mlp.pt");
    let input = fixtures::file("jac_mlp_input.pt");
    run_ok(&[
        "jacobian",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--plots",
        dir.to_str().unwrap(),
        "--plot-format",
        "svg,png",
        "-q",
    ]);
    assert_eq!(png_size(&dir.join("jacobian.png")), (720, 440));
    let texts = svg_texts(&dir.join("jacobian.svg"));
    for wanted in [
        "jac_mlp.pt — Jacobian singular values",
        "singular value σ",
        "isometry",
        "mean σ²",
    ] {
        assert!(has_text(&texts, wanted), "lacks {wanted:?}: {texts:?}");
    }
    // Titles name the model's file, not the path it was read from.
    let folder = model.parent().unwrap().to_str().unwrap();
    assert!(!texts.iter().any(|text| text.contains(folder)), "{texts:?}");
}

/// Where Debian's Chromium is, if installed (scripts/setup --test installs it when it can).
fn chromium() -> Option<PathBuf> {
    std::env::var_os("RMT_TORCH_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")))
        .filter(|path| path.exists())
}

fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut command = Command::new(chromium);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// The DOM of the page at `url` once headless Chromium has run its scripts.
fn dumped_dom(chromium: &Path, profile: &Path, url: &str) -> String {
    let dom = headless(chromium, profile)
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// `--figures-for-worst K` keeps figures for the K worst layers by their labels (over-trained
/// first) and the farthest α from 2…6, every layer keeps a collapsible section, and the table
/// of contents links every part.
#[test]
fn the_report_keeps_figures_for_the_worst_layers_only_when_asked() {
    let dir = fixtures::output_dir("report_worst");
    let report = dir.join("worst.html");
    let model = shipped_model("digits_cnn_trained.pt");
    let model = model.to_str().unwrap();
    run_ok(&[
        "report",
        model,
        "--figures-for-worst",
        "2",
        "--no-vectors",
        "-o",
        report.to_str().unwrap(),
        "-q",
    ]);
    let html = std::fs::read_to_string(&report).unwrap();
    let layers: serde_json::Value =
        serde_json::from_str(&run_ok(&["analyze", model, "-f", "json", "-q"])).unwrap();
    let layers = layers["layers"].as_array().unwrap();
    let severity = |label: &str| {
        [
            "over-trained",
            "under-trained",
            "fit-failed",
            "well-trained",
            "random-like",
        ]
        .iter()
        .position(|l| *l == label)
        .unwrap()
    };
    let distance = |alpha: Option<f64>| alpha.map_or(0.0, |a| (2.0 - a).max(a - 6.0).max(0.0));
    let mut ranked: Vec<&serde_json::Value> = layers.iter().collect();
    ranked.sort_by(|a, b| {
        severity(a["quality"].as_str().unwrap())
            .cmp(&severity(b["quality"].as_str().unwrap()))
            .then(distance(b["alpha"].as_f64()).total_cmp(&distance(a["alpha"].as_f64())))
    });
    let worst: Vec<u64> = ranked[..2]
        .iter()
        .map(|l| l["layer_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ranked[0]["quality"], "over-trained");
    for layer in layers {
        let id = layer["layer_id"].as_u64().unwrap();
        let section = html
            .split(&format!("<details id=\"layer-{id}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no section for layer {id}"));
        let section = &section[..section.find("</details>").unwrap()];
        assert_eq!(
            section.contains("<svg"),
            worst.contains(&id),
            "layer {id}: figures only for the worst {worst:?}"
        );
    }
    assert!(html.contains("Figures for the 2 worst of 4 layers"));
    let toc = &html[html.find("<nav class=\"toc\">").unwrap()..];
    let toc = &toc[..toc.find("</nav>").unwrap()];
    for id in [
        "summary", "layers", "across", "details", "settings", "glossary",
    ] {
        assert!(toc.contains(&format!("href=\"#{id}\"")), "toc lacks {id}");
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "no #{id} to link to"
        );
    }
    let output = run(&["report", model, "--figures-for-worst", "0", "-o", "x.html"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_html_report_is_self_contained_and_opens_in_chromium() {
    let dir = fixtures::output_dir("report");
    let report = dir.join("report.html");
    let trained = shipped_model("digits_cnn_trained.pt");
    let init = shipped_model("digits_cnn_init.pt");
    run_ok(&[
        "report",
        trained.to_str().unwrap(),
        "--baseline",
        init.to_str().unwrap(),
        "-o",
        report.to_str().unwrap(),
        "-q",
    ]);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for external in ["<script", "<link", "src=", "url(", "<img"] {
        assert!(
            !html.contains(external),
            "the report refers outside itself: {external}"
        );
    }
    for wanted in [
        "conv1.weight",
        "id=\"layer-2\"",
        "well-trained",
        "over-trained",
        "libtorch_version",
        "baseline ESD",
        "Tracy-Widom",
    ] {
        assert!(html.contains(wanted), "report lacks {wanted:?}");
    }
    let figures = html.matches("<svg").count();
    // The model figure, and per layer at least the ESD, tail and Porter-Thomas figures.
    assert!(figures > 4 * 3, "{figures} figures");

    let Some(chromium) = fixtures::available(
        "chromium",
        chromium(),
        "the_html_report_is_self_contained_and_opens_in_chromium",
    ) else {
        return;
    };
    let url = format!("file://{}", report.display());
    let dom = dumped_dom(&chromium, &dir.join("profile-dom"), &url);
    assert_eq!(
        dom.matches("<svg").count(),
        figures,
        "Chromium parsed a different page"
    );
    assert!(dom.contains("Settings and versions"));

    let screenshot = dir.join("report.png");
    let shot = headless(&chromium, &dir.join("profile-shot"))
        .args([
            "--window-size=1280,2400",
            &format!("--screenshot={}", screenshot.display()),
            &url,
        ])
        .output()
        .expect("run chromium");
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    assert_eq!(png_size(&screenshot), (1280, 2400));
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 50_000,
        "a blank page"
    );
}

#[test]
fn the_report_adds_the_jacobians_of_an_input_batch() {
    let dir = fixtures::output_dir("report_jacobian");
    let report = dir.join("report.html");
    let model = fixtures::file("jac_cnn.pt");
    let input = fixtures::file("jac_cnn_input.pt");
    run_ok(&[
        "report",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--jacobian-samples",
        "2",
        "-o",
        report.to_str().unwrap(),
        "-q",
    ]);
    let html = std::fs::read_to_string(&report).unwrap();
    for wanted in [
        "Input-output Jacobian",
        "isometry fraction",
        "Jacobian singular values",
    ] {
        assert!(html.contains(wanted), "report lacks {wanted:?}");
    }
    assert!(html.contains("<tr><th>samples</th><td>2</td></tr>"));
    let without_input = run(&["report", model.to_str().unwrap(), "--input-key", "x"]);
    assert!(!without_input.status.success(), "--input-key needs --input");
}

/// One label everywhere: the HTML report's table and the model figure show each layer's
/// `quality` (not WeightWatcher's α-only `warning`), and the label cards add up to the layers
/// analysed, on every shipped model and on checkpoints of three architectures.
#[test]
fn the_report_shows_one_label_per_layer_and_its_cards_add_up() {
    use rmt_torch::environment::Environment;
    use rmt_torch::report::html::{html_report, LayerFigures};
    use rmt_torch::report::plots::model::model_figure;
    use rmt_torch::{analyze, Model};
    const LABELS: [&str; 5] = [
        "random-like",
        "well-trained",
        "over-trained",
        "under-trained",
        "fit-failed",
    ];
    let options = fixtures::options(serde_json::json!({"device": "cpu", "figure_data": true}));
    let mut paths: Vec<PathBuf> = [
        "digits_cnn_trained.pt",
        "digits_cnn_init.pt",
        "digits_mlp_trained.pt",
        "digits_mlp_init.pt",
    ]
    .map(shipped_model)
    .to_vec();
    paths.extend(
        [
            "ckpt_cnn_float32.safetensors",
            "ckpt_mlp_float32.safetensors",
            "ckpt_lstm_float32.safetensors",
        ]
        .map(fixtures::file),
    );
    let mut seen = std::collections::BTreeSet::new();
    for path in &paths {
        let analysis = analyze(&Model::load(path).unwrap(), &options).unwrap();
        let html = html_report(
            &analysis,
            Default::default(),
            &Environment::detect(),
            LayerFigures::Worst(1),
        )
        .unwrap();
        let expected: Vec<String> = analysis
            .layers
            .iter()
            .map(|l| l.quality.to_string())
            .collect();
        let shown: Vec<&str> = html
            .match_indices("<span class=\"label ")
            .map(|(at, prefix)| {
                let rest = &html[at + prefix.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        assert_eq!(shown, expected, "{}", path.display());
        let card = |label: &str| -> usize {
            let at = html.find(&format!("<div>{label}<b>")).unwrap() + label.len() + 8;
            html[at..at + html[at..].find("</b>").unwrap()]
                .parse()
                .unwrap()
        };
        for label in LABELS {
            let count = expected.iter().filter(|e| *e == label).count();
            assert_eq!(card(label), count, "{} {label}", path.display());
        }
        let cards: usize = LABELS.iter().map(|label| card(label)).sum();
        assert_eq!(cards, analysis.layers.len(), "{}", path.display());
        let alpha_panel = &model_figure(&analysis).panels[0];
        for series in &alpha_panel.series {
            let fitted = analysis
                .layers
                .iter()
                .filter(|l| l.quality.to_string() == series.name && l.power_law.is_some())
                .count();
            assert_eq!(
                series.points.len(),
                fitted,
                "{} {}",
                path.display(),
                series.name
            );
        }
        seen.extend(expected);
    }
    assert!(seen.contains("random-like") && seen.len() >= 3, "{seen:?}");
}

/// A figure's SVG elements as (tag, attributes), in drawing order.
fn svg_elements(svg: &str) -> Vec<(String, std::collections::HashMap<String, String>)> {
    let element = regex::Regex::new(r"<(rect|polyline|circle)\s([^>]*)/?>").unwrap();
    let attribute = regex::Regex::new(r#"([a-z-]+)="([^"]*)""#).unwrap();
    element
        .captures_iter(svg)
        .map(|c| {
            let attributes = attribute
                .captures_iter(&c[2])
                .map(|a| (a[1].to_string(), a[2].to_string()))
                .collect();
            (c[1].to_string(), attributes)
        })
        .collect()
}

/// Points of a data element that a legend must not cover: a polyline's vertices, a circle's
/// centre, a bar's corners and centre. Axes and text (black), legend backgrounds (white) and
/// translucent bands across the chart are not data.
fn data_points(tag: &str, a: &std::collections::HashMap<String, String>) -> Vec<(f64, f64)> {
    let number = |key: &str| {
        a.get(key)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let color = a
        .get("stroke")
        .filter(|c| c.as_str() != "none")
        .or(a.get("fill"))
        .cloned()
        .unwrap_or_default();
    if ["#000000", "#FFFFFF", "none", ""].contains(&color.as_str()) || number("opacity") < 0.2 {
        return Vec::new();
    }
    match tag {
        "polyline" => a["points"]
            .split_whitespace()
            .filter_map(|p| {
                let (x, y) = p.split_once(',')?;
                Some((x.parse().ok()?, y.parse().ok()?))
            })
            .collect(),
        "circle" => vec![(number("cx"), number("cy"))],
        _ => {
            let (x, y, w, h) = (number("x"), number("y"), number("width"), number("height"));
            vec![
                (x, y),
                (x + w, y),
                (x, y + h),
                (x + w, y + h),
                (x + w / 2.0, y + h / 2.0),
            ]
        }
    }
}

/// No legend box covers a plotted point, bar or line of its panel, in every figure the CLI
/// draws for the shipped models (analyze with every optional figure, jacobian, hessian).
#[test]
fn no_legend_covers_the_data() {
    let dir = fixtures::output_dir("legends");
    let mlp = shipped_model("digits_mlp_trained.pt");
    let batch = shipped_model("digits_mlp_batch.pt");
    let labels = shipped_model("digits_batch_labels.pt");
    for model in [
        "digits_cnn_trained.pt",
        "digits_cnn_init.pt",
        "digits_mlp_trained.pt",
        "digits_mlp_init.pt",
    ] {
        let out = dir.join(model);
        run_ok(&[
            "analyze",
            shipped_model(model).to_str().unwrap(),
            "-q",
            "--vectors",
            "--randomize",
            "--plots",
            out.to_str().unwrap(),
            "--plot-format",
            "svg",
        ]);
    }
    let (mlp, batch, labels) = (
        mlp.to_str().unwrap(),
        batch.to_str().unwrap(),
        labels.to_str().unwrap(),
    );
    let jacobian = dir.join("jacobian");
    run_ok(&[
        "jacobian",
        mlp,
        "--input",
        batch,
        "-q",
        "--plots",
        jacobian.to_str().unwrap(),
        "--plot-format",
        "svg",
    ]);
    let hessian = dir.join("hessian");
    run_ok(&[
        "hessian",
        mlp,
        "--input",
        batch,
        "--target",
        labels,
        "--density",
        "2",
        "-q",
        "--plots",
        hessian.to_str().unwrap(),
        "--plot-format",
        "svg",
    ]);
    let compared = dir.join("compare");
    run_ok(&[
        "compare",
        shipped_model("digits_cnn_init.pt").to_str().unwrap(),
        shipped_model("digits_cnn_trained.pt").to_str().unwrap(),
        "-q",
        "--plots",
        compared.to_str().unwrap(),
        "--plot-format",
        "svg",
    ]);
    let mut figures = 0;
    let mut covered = Vec::new();
    for folder in std::fs::read_dir(&dir).unwrap() {
        for file in std::fs::read_dir(folder.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let elements = svg_elements(&std::fs::read_to_string(&path).unwrap());
            let mut panel_start = 0;
            for (index, (tag, a)) in elements.iter().enumerate() {
                let is_legend = tag == "rect"
                    && a.get("fill").map(String::as_str) == Some("#FFFFFF")
                    && a.get("opacity").map(String::as_str) == Some("0.85");
                if !is_legend {
                    continue;
                }
                let number = |key: &str| a[key].parse::<f64>().unwrap();
                let (x0, y0) = (number("x"), number("y"));
                let (x1, y1) = (x0 + number("width"), y0 + number("height"));
                let hidden = elements[panel_start..index]
                    .iter()
                    .flat_map(|(tag, a)| data_points(tag, a))
                    .filter(|&(x, y)| x > x0 + 1.0 && x < x1 - 1.0 && y > y0 + 1.0 && y < y1 - 1.0)
                    .count();
                if hidden > 0 {
                    covered.push(format!("{}: {hidden} points", path.display()));
                }
                panel_start = index + 1;
                figures += 1;
            }
        }
    }
    assert!(figures > 30, "{figures} legends checked");
    assert!(
        covered.is_empty(),
        "legends over data:\n{}",
        covered.join("\n")
    );
}

/// `zoo --html`: one self-contained page with every model, its layers one click away, the
/// model changed since the last run highlighted, and a table that Chromium sorts by the
/// column the address names (the script that also sorts on a header's click).
#[test]
fn the_zoo_page_sorts_its_models_in_chromium() {
    let dir = fixtures::output_dir("zoo_page");
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    for model in [
        "digits_mlp_init.pt",
        "digits_mlp_trained.pt",
        "digits_cnn_init.pt",
    ] {
        std::fs::copy(shipped_model(model), models.join(model)).unwrap();
    }
    let cache = dir.join("cache");
    let (models_text, cache_text) = (models.to_str().unwrap(), cache.to_str().unwrap());
    run_ok(&["zoo", models_text, "--cache", cache_text, "-q"]);
    std::fs::copy(
        shipped_model("digits_cnn_trained.pt"),
        models.join("digits_cnn_init.pt"),
    )
    .unwrap();
    let page = dir.join("zoo.html");
    let json: serde_json::Value = serde_json::from_str(&run_ok(&[
        "zoo",
        models_text,
        "--cache",
        cache_text,
        "--since",
        "last",
        "--html",
        page.to_str().unwrap(),
        "-f",
        "json",
        "-q",
    ]))
    .unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["<link", "src=", "url(", "<img"] {
        assert!(
            !html.contains(external),
            "the page refers outside itself: {external}"
        );
    }
    let entries = json["models"].as_array().unwrap();
    for (index, entry) in entries.iter().enumerate() {
        let path = entry["path"].as_str().unwrap();
        assert!(html.contains(&format!("<a href=\"#model-{index}\">{path}</a>")));
        assert!(html.contains(&format!("<details id=\"model-{index}\">")));
    }
    let drifted: Vec<&str> = html
        .split("<tr class=\"drifted\">")
        .skip(1)
        .map(|row| {
            let link = &row[row.find("<a href=\"#model-").unwrap()..];
            let start = link.find("\">").unwrap() + 2;
            &link[start..link.find("</a>").unwrap()]
        })
        .collect();
    assert_eq!(drifted.len(), 1);
    assert!(drifted[0].ends_with("digits_cnn_init.pt"), "{drifted:?}");
    assert!(html.contains("<svg"), "the distribution of α");

    let Some(chromium) = fixtures::available(
        "chromium",
        chromium(),
        "the_zoo_page_sorts_its_models_in_chromium",
    ) else {
        return;
    };
    let mut alphas: Vec<(f64, String)> = entries
        .iter()
        .map(|e| {
            (
                e["summary"]["alpha"].as_f64().unwrap(),
                e["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    alphas.sort_by(|a, b| b.0.total_cmp(&a.0));
    let url = format!("file://{}#sort=alpha-desc", page.display());
    let dom = dumped_dom(&chromium, &dir.join("profile"), &url);
    let table = &dom[dom.find("id=\"models\"").unwrap()..];
    let positions: Vec<usize> = alphas
        .iter()
        .map(|(_, path)| table.find(&format!(">{path}</a>")).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "rows not sorted by α, descending: {alphas:?}"
    );
    assert!(
        table.contains("data-sorted=\"alpha-desc\""),
        "the script ran"
    );
}
