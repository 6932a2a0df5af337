//! `--ww-compat` against WeightWatcher 0.7.7 itself on real pretrained weights that PyPI packages
//! ship (MTCNN from facenet-pytorch, Resemblyzer's LSTM speaker encoder, Silero's VAD) and on a
//! seeded model with what its rules single out; and the documented differences of the default.
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use rmt_torch::{analyze, Analysis, Error, Model};

use crate::fixtures;

/// Columns whose values cannot be WeightWatcher's (docs/weightwatcher.md).
const OWN_COLUMNS: [&str; 1] = ["layer_id"];

/// The analysis on the CPU, with WeightWatcher's rules when `ww_compat`.
fn analysis(path: &Path, ww_compat: bool) -> rmt_torch::Result<Analysis> {
    let options = fixtures::options(serde_json::json!({"device": "cpu", "ww_compat": ww_compat}));
    analyze(&Model::load(path)?, &options)
}

fn names(analysis: &Analysis) -> BTreeSet<&str> {
    analysis.layers.iter().map(|l| l.name.as_str()).collect()
}

/// `analyze --ww-compat -f csv` against WeightWatcher's details of the same weights: the same
/// columns in the same order, the same layers, every cell equal (numbers to 1e-9 relative).
fn assert_csv_matches_weightwatcher(kind: &str, model: &Path) -> usize {
    let (their_header, theirs) = fixtures::weightwatcher_details(kind, model, "{}");
    let output = fixtures::run(&[
        "analyze",
        model.to_str().unwrap(),
        "--ww-compat",
        "-f",
        "csv",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (header, rows) = fixtures::csv_table(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(header, their_header, "{kind} {}: columns", model.display());
    let ours: HashMap<String, HashMap<String, String>> = rows
        .into_iter()
        .map(|row| (format!("{}.weight", row["longname"]), row))
        .collect();
    let our_names: BTreeSet<&String> = ours.keys().collect();
    let their_names: BTreeSet<&String> = theirs.keys().collect();
    assert_eq!(our_names, their_names, "{}: layer set", model.display());
    for (name, row) in &ours {
        let reference = &theirs[name];
        let sv_max: f64 = reference["sv_max"].parse().unwrap();
        for column in header.iter().filter(|c| !OWN_COLUMNS.contains(&c.as_str())) {
            let (value, want) = (&row[column], &reference[column]);
            match (value.parse::<f64>(), want.parse::<f64>()) {
                (Ok(value), Ok(want)) => {
                    // The smallest singular values of an SVD are exact to ε·σmax, not relatively.
                    let scale = if column == "sv_min" {
                        sv_max * 1e-3
                    } else {
                        want.abs()
                    };
                    assert!(
                        (value - want).abs() <= 1e-9 * scale.max(1e-12),
                        "{} {name}: {column} = {value}, WeightWatcher {want}",
                        model.display()
                    );
                }
                _ => assert_eq!(value, want, "{} {name}: {column}", model.display()),
            }
        }
    }
    ours.len()
}

#[test]
fn real_pretrained_weights_match_weightwatcher_column_by_column() {
    let mut compared = 0;
    for model in [
        "facenet-pytorch/pnet.pt",
        "facenet-pytorch/rnet.pt",
        "facenet-pytorch/onet.pt",
        "resemblyzer/pretrained.pt",
    ] {
        compared += assert_csv_matches_weightwatcher("weights", &fixtures::pypi_model(model));
    }
    // pnet 3 convs, rnet 3 convs + dense4, onet 4 convs + dense5 + the 10×256 head,
    // Resemblyzer its projection only.
    assert_eq!(compared, 14);
}

#[test]
fn the_rules_weightwatcher_singles_out_match_it() {
    let model = fixtures::dir().join("ww_rules.pt");
    // Conv1d k = 9 as one SVD, the 60001-row embedding and the k = 3 Conv1d skipped, the LSTM
    // skipped, five dead rows (σ ≈ 1e-9·σmax) counted in the rank as WeightWatcher does.
    assert_eq!(assert_csv_matches_weightwatcher("synthetic", &model), 3);
    let ww = analysis(&model, true).unwrap();
    let proj = ww.layers.iter().find(|l| l.name == "proj.weight").unwrap();
    assert_eq!((proj.metrics.matrix_rank, proj.metrics.rank_loss), (48, 0));

    let ours = analysis(&model, false).unwrap();
    let expected: BTreeSet<&str> = [
        "conv_wide.weight",
        "conv_narrow.weight",
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "word_embeddings.weight",
        "proj.weight",
        "head.weight",
    ]
    .into();
    assert_eq!(names(&ours), expected, "the default analyses every matrix");
    let layer = |analysis: &Analysis, name: &str| {
        analysis
            .layers
            .iter()
            .find(|l| l.name == name)
            .unwrap()
            .clone()
    };
    // The default reads Conv1d per kernel position: 9 slices of 40 × 30.
    let conv = layer(&ours, "conv_wide.weight");
    assert_eq!((conv.n, conv.m, conv.rf), (40, 30, 9));
    let conv = layer(&ww, "conv_wide.weight");
    assert_eq!((conv.n, conv.m, conv.rf), (40, 9, 1));
    // The Gram matrix does not resolve σ = 1e-9·σmax: the default calls those rows rank loss.
    let proj = layer(&ours, "proj.weight");
    assert_eq!((proj.metrics.matrix_rank, proj.metrics.rank_loss), (43, 5));
    // Dense layers both read alike have the same α.
    let head = (layer(&ours, "head.weight"), layer(&ww, "head.weight"));
    assert_eq!(
        head.0.power_law.unwrap().alpha,
        head.1.power_law.unwrap().alpha
    );
}

#[test]
fn default_mode_differs_only_where_documented_on_real_weights() {
    // MTCNN: the same layers and α in both modes (the small-N rule is WeightWatcher's in both).
    let onet = fixtures::pypi_model("facenet-pytorch/onet.pt");
    let (ours, ww) = (
        analysis(&onet, false).unwrap(),
        analysis(&onet, true).unwrap(),
    );
    assert_eq!(names(&ours), names(&ww));
    for (a, b) in ours.layers.iter().zip(&ww.layers) {
        assert_eq!(
            a.power_law.as_ref().unwrap().alpha,
            b.power_law.as_ref().unwrap().alpha,
            "{}",
            a.name
        );
    }
    let head = ours
        .layers
        .iter()
        .find(|l| l.name == "dense6_3.weight")
        .unwrap();
    let fit = head.power_law.as_ref().unwrap();
    assert_eq!(
        fit.fit_method,
        rmt_torch::stats::heavy_tail::power_law::FitMethod::SmallN
    );
    assert!((fit.alpha - 1.673).abs() < 1e-3, "α = {}", fit.alpha);

    // Resemblyzer (its checkpoint's model_state; the Adam state beside it is not read): the
    // default also analyses the LSTM's six matrices.
    let resemblyzer = fixtures::pypi_model("resemblyzer/pretrained.pt");
    let ours = analysis(&resemblyzer, false).unwrap();
    let ww = analysis(&resemblyzer, true).unwrap();
    assert_eq!(names(&ww), ["linear.weight"].into());
    assert_eq!(ours.layers.len(), 7);
    assert!(names(&ours).contains("lstm.weight_hh_l2"));

    // Silero VAD: WeightWatcher analyses none of its layers (k = 3 and 1-channel Conv1d, an
    // LSTMCell), and says nothing; --ww-compat says why; the default reads the Conv1d slices.
    let silero = fixtures::pypi_model("silero-vad/silero_vad_16k.safetensors");
    let (_, theirs) = fixtures::weightwatcher_details("weights", &silero, "{}");
    assert!(theirs.is_empty());
    match analysis(&silero, true) {
        Err(Error::NoWeightMatrices(why)) => {
            assert!(
                why.contains("conv1.weight: 3 eigenvalues < minimum 8"),
                "{why}"
            )
        }
        other => panic!(
            "expected no weight matrices, got {:?}",
            other.map(|a| a.layers.len())
        ),
    }
    let ours = analysis(&silero, false).unwrap();
    assert!(names(&ours).contains("conv1.weight") && names(&ours).contains("lstm_cell.weight_hh"));
}

#[test]
fn ww_compat_refuses_a_reshaped_convolution() {
    let output = fixtures::run(&[
        "analyze",
        fixtures::shipped_model("digits_cnn_trained.pt")
            .to_str()
            .unwrap(),
        "--ww-compat",
        "--conv",
        "reshape",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("conv mode ww"), "{stderr}");
}
