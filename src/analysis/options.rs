//! The analysis options, defined once. [`AnalysisRequest`] is what a user asked for, each option
//! given or not (ripgrep's "low" arguments): the command line's flags (its clap derive), the
//! Python package's keywords and any JSON object fill it alike. [`AnalysisRequest::resolve`]
//! applies every default and checks every value, once, into [`AnalyzeOptions`], the only type
//! [`crate::analyze`] takes (linfa's parameter guard: a checked value is another type). The
//! resolved request ([`AnalyzeOptions::settings`]) is the provenance every output records: the
//! JSON's `settings`, the HTML report's settings table, the zoo's cache key.
//!
//! Adding an option is one field here, with its doc comment (the `--help` text and the docs),
//! and one line in `resolve` (its default and checks).
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::model::layers::{
    ConvMode, LayerSelection, DEFAULT_MIN_EVALS, WEIGHTWATCHER_MAX_EVALS, WEIGHTWATCHER_MAX_N,
};
use crate::spectrum::windows::{FarmsWindows, DEFAULT_FARMS_WINDOWS};
use crate::spectrum::Precision;
use crate::stats::esd::EsdConvention;
use crate::stats::heavy_tail::estimator::{Estimator, TailRule};
use crate::stats::heavy_tail::power_law::TailOptions;
use crate::stats::rmt::unfolding::{
    Unfolding, UnfoldingMethod, DEFAULT_GAUSSIAN_WINDOW, DEFAULT_POLYNOMIAL_DEGREE,
};
use crate::stats::suite::{
    RmtOptions, DEFAULT_PORTER_THOMAS_WINDOW, DEFAULT_TW_LEVEL, FIGURE_NUMBER_VARIANCE_LENGTHS,
};

#[cfg(feature = "cli")]
use crate::option_names::choice;

/// An analysis as asked for: every option given or not. Its serde names are the Python keywords
/// and, with `-` for `_`, the command-line flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[non_exhaustive]
pub struct AnalysisRequest {
    /// Device for the spectra: `auto` (the first GPU if any, else CPU), `cpu`, `cuda`, `cuda:N`.
    #[cfg_attr(feature = "cli", arg(long, value_name = "DEVICE"))]
    pub device: Option<DeviceChoice>,
    /// ESD convention. `ww`: λ = σ² of W (Conv2d slices halved), WeightWatcher's numbers.
    /// `rmt`: λ = σ²/N, the eigenvalues of WᵀW/N that Marchenko-Pastur describes.
    #[cfg_attr(feature = "cli", arg(long, value_parser = choice::<EsdConvention>()))]
    pub convention: Option<EsdConvention>,
    /// Arithmetic. `f64`: WᵀW and eigenvalues in float64, exact to ~1e-12. `fast`: both in
    /// float32, about twice as fast; eigenvalues within 1e-4·λmax, α within 0.5 %.
    #[cfg_attr(feature = "cli", arg(long, value_parser = choice::<Precision>()))]
    pub precision: Option<Precision>,
    /// Include each layer's eigenvalues (ascending) in JSON output.
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub eigenvalues: bool,
    /// Keep in the JSON what the figures draw: eigenvalues, unfolded spacings, and Σ²(L) at
    /// L = 0.5…10 unless --number-variance chose lengths (--plots and report imply it).
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub figure_data: bool,
    /// Also analyse each layer with its entries shuffled: rand_lambda_max, rand_distance (how
    /// far the ESD is from its randomised self) and num_traps (shuffled eigenvalues beyond the
    /// Marchenko-Pastur edge: large isolated entries); analyze's table shows rand_distance and
    /// num_traps.
    /// Doubles the cost.
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub randomize: bool,
    /// Seed of the shuffles of --randomize (the same seed gives the same numbers).
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub seed: Option<u64>,
    /// Drop the K largest eigenvalues before the power-law fit (WeightWatcher's xmax=K).
    #[cfg_attr(feature = "cli", arg(long, value_name = "K"))]
    pub xmax_drop: Option<usize>,
    /// Clip power-law "fingers": refit without the top 2–9 eigenvalues and keep the first fit
    /// whose α is more than 1 lower (WeightWatcher's fix_fingers='clip_xmax'); adds fingers
    /// and raw_alpha to analyze's table.
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub clip_fingers: bool,
    /// Choose xmin near the peak of the log-ESD only, in [0.95·p, 1.5·p] with p the left edge of
    /// the fullest of 100 bins of log10 λ (WeightWatcher's fix_fingers='xmin_peak', which fails
    /// every fit in WeightWatcher 0.7.7 under its default pl_package).
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub xmin_peak: bool,
    /// Only consider power-law tails of at least N eigenvalues when choosing xmin.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub min_tail: Option<usize>,
    /// Which α each layer reports. `ww`: WeightWatcher's fit of the whole ESD.
    /// `alpha-peak`: AlphaPruning's and AlphaLoRA's fit, xmin at most 1.5× the log-ESD's peak.
    /// `hill-median`: TempBalance's Hill estimate with xmin at the median eigenvalue.
    /// `farms`, `farms-peak`, `farms-median`: the same fits of FARMS's pooled ESD of equal-shaped
    /// windows, free of the aspect ratio's bias (Hu et al. 2025). The quality labels keep
    /// WeightWatcher's thresholds (α < 2, α > 6), which were set on its fit.
    #[cfg_attr(feature = "cli", arg(long, value_parser = choice::<Estimator>()))]
    pub estimator: Option<Estimator>,
    /// Rows b of FARMS's windows (default 2000; fewer when a matrix has fewer).
    #[cfg_attr(feature = "cli", arg(long, value_name = "B"))]
    pub farms_window: Option<usize>,
    /// Aspect ratio Q of FARMS's windows: b × ⌊b·Q⌋ (default 1).
    #[cfg_attr(feature = "cli", arg(long, value_parser = finite_number, value_name = "Q"))]
    pub farms_q: Option<f64>,
    /// FARMS's window positions per dimension, k × k windows (default 10; at least 2).
    #[cfg_attr(feature = "cli", arg(long, value_name = "K"))]
    pub farms_grid: Option<usize>,
    /// Which tensors, and how convolutions become matrices.
    #[cfg_attr(
        feature = "cli",
        command(flatten, next_help_heading = "Layer selection")
    )]
    #[serde(flatten)]
    pub selection: SelectionRequest,
    /// The universal RMT suite.
    #[cfg_attr(feature = "cli", command(flatten, next_help_heading = "RMT suite"))]
    #[serde(flatten)]
    pub rmt: RmtRequest,
}

/// Which tensors are weight matrices, and how convolutions become matrices, as asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[non_exhaustive]
pub struct SelectionRequest {
    /// How convolution kernels become matrices. `slices`: one out×in matrix per kernel
    /// position, eigenvalues pooled into one ESD (WeightWatcher's default for Conv2d).
    /// `reshape`: one out×(in·k) matrix per kernel (Thamm, Staats & Rosenow 2022). `ww`:
    /// WeightWatcher 0.7.7's reading, Conv2d as slices and a Conv1d kernel as one SVD of the 3-D
    /// tensor (the default with --ww-compat).
    #[cfg_attr(feature = "cli", arg(long, value_parser = choice::<ConvMode>()))]
    pub conv: Option<ConvMode>,
    /// Analyse only tensors whose dotted name matches this regular expression
    /// (e.g. 'features\.\d+\.weight' or 'fc|classifier').
    #[cfg_attr(feature = "cli", arg(long, value_name = "REGEX"))]
    pub layers: Option<String>,
    /// Skip layers whose ESD has fewer eigenvalues than this (WeightWatcher 0.7.7's default).
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub min_evals: Option<usize>,
    /// Skip layers whose ESD has more eigenvalues than this (default: none; 15000 with
    /// --ww-compat, WeightWatcher's max_evals).
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_evals: Option<usize>,
    /// Skip layers whose larger side N exceeds this, such as large embeddings (default: none;
    /// 50000 with --ww-compat, WeightWatcher's max_N).
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_n: Option<usize>,
    /// WeightWatcher 0.7.7's own rules, for numbers and a layer set that equal its
    /// analyze(): only the `weight` of Linear, Conv1d, Conv2d and Embedding layers (LSTM, GRU
    /// and attention in_proj weights are skipped), --max-evals 15000 and --max-n 50000 unless
    /// given, Conv1d as one SVD of the 3-D kernel keeping the top min(out, in, k) values
    /// (`--conv ww`), its rank and entropy definitions, and CSV with its DataFrame's columns.
    /// docs/weightwatcher.md lists what changes, and why the defaults
    /// differ.
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub ww_compat: bool,
    /// Split fused query-key-value projections (GPT-2's c_attn, qkv_proj, query_key_value,
    /// Wqkv, qkv, in_proj_weight) into q, k and v layers named `NAME[q]`, `NAME[k]`, `NAME[v]`, with
    /// the head counts (grouped-query attention included) of the checkpoint's config.json.
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub split_fused: bool,
    /// Also analyse each attention head's block of the query, key, value and output
    /// projections (rows of q, k and v, columns of o), named `NAME[h3]`, beside the whole
    /// matrix; head counts from the checkpoint's config.json or a GGUF file's metadata
    /// (grouped-query attention included). Heads are left out of the per-block means.
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub split_heads: bool,
}

/// Options of the universal RMT suite, as asked for: shared by every command that reports on
/// spectra.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[non_exhaustive]
pub struct RmtRequest {
    /// False-positive rate of the Tracy-Widom spike count (num_spikes_tw) of each spectrum: a
    /// random matrix has spikes with this probability (for a sliced convolution,
    /// Bonferroni-corrected over its slices).
    #[cfg_attr(feature = "cli", arg(long, value_parser = finite_number, value_name = "P"))]
    pub tw_level: Option<f64>,
    /// Unfolding before spacing statistics. `gaussian`: Gaussian broadening of the staircase
    /// (Thamm, Staats & Rosenow 2022; window 2a, 2a levels dropped at each end). `polynomial`:
    /// a least-squares polynomial fit of the staircase (2 % dropped at each end).
    #[cfg_attr(feature = "cli", arg(long, value_parser = choice::<UnfoldingMethod>()))]
    pub unfolding: Option<UnfoldingMethod>,
    /// Half-window a of the Gaussian broadening.
    #[cfg_attr(feature = "cli", arg(long, value_name = "A"))]
    pub unfolding_window: Option<usize>,
    /// Degree of the staircase polynomial.
    #[cfg_attr(feature = "cli", arg(long, value_name = "D"))]
    pub unfolding_degree: Option<usize>,
    /// Level number variance Σ²(L) at these interval lengths, beside the exact GOE curve and
    /// Poisson: a list (`1,2,5,10`) or a range `START:END[:STEP]` (`0.5:10:0.5`).
    #[cfg_attr(feature = "cli", arg(long, value_name = "LENGTHS"))]
    pub number_variance: Option<Lengths>,
    /// Porter-Thomas test of every right singular vector (entries against N(0, 1/M)); costs an
    /// eigendecomposition per matrix. Adds porter_thomas to analyze's table; JSON carries the
    /// p-values in ascending-eigenvalue order.
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub vectors: bool,
    /// Window of the Porter-Thomas moving average (Thamm, Staats & Rosenow 2022 use 15).
    #[cfg_attr(feature = "cli", arg(long, value_name = "K"))]
    pub pt_window: Option<usize>,
    /// Compare the symmetric part (W + Wᵀ)/√2 of square matrices with Wigner's semicircle and
    /// the two-component density of Favoni, Aarts, Lucini & Park; costs one more eigensolve
    /// per square layer.
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(default)]
    pub semicircle: bool,
}

/// Interval lengths for Σ²(L): positive numbers, written `1,2,5` or `START:END[:STEP]`
/// (step 1 by default) on the command line and as a list of numbers in JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Lengths(pub Vec<f64>);

impl<'de> Deserialize<'de> for Lengths {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            List(Vec<f64>),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::List(lengths) => Ok(Self(lengths)),
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl std::str::FromStr for Lengths {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let number = |part: &str| match part.trim().parse::<f64>() {
            Ok(value) if value > 0.0 && value.is_finite() => Ok(value),
            _ => Err(format!("'{part}' is not a positive number")),
        };
        if !text.contains(':') {
            return text
                .split(',')
                .map(number)
                .collect::<Result<_, _>>()
                .map(Self);
        }
        let parts: Vec<&str> = text.split(':').collect();
        let start = number(parts[0])?;
        let end = number(parts.get(1).copied().unwrap_or(""))?;
        let step = parts.get(2).map(|p| number(p)).transpose()?.unwrap_or(1.0);
        if parts.len() > 3 || end < start || (end - start) / step > 10_000.0 {
            return Err(format!(
                "'{text}' is not START:END[:STEP] with START ≤ END and at most 10000 steps"
            ));
        }
        let count = ((end - start) / step + 1e-9).floor() as usize + 1;
        Ok(Self((0..count).map(|i| start + i as f64 * step).collect()))
    }
}

/// A number flag's value: any finite f64 (NaN and infinities are refused at parse time, so no
/// command ever computes with one).
#[cfg(feature = "cli")]
pub fn finite_number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(value) => Err(format!("expected a finite number, got {value}")),
        Err(_) => Err(format!("expected a number, got `{text}`")),
    }
}

impl AnalysisRequest {
    /// Every option's name, in the order of the fields: the Python keywords, and the
    /// command-line flags with `-` for `_`.
    pub fn names() -> Vec<String> {
        match serde_json::to_value(Self::default()) {
            Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The request a JSON object of options means (the Python package's keywords). A `null` is
    /// an option not given; an unknown name is an [`Error::UnknownName`] that lists the known
    /// ones, a value of the wrong type an [`Error::InvalidParameter`] naming its option.
    pub fn from_json(options: &Value) -> Result<Self> {
        let Value::Object(options) = options else {
            return Err(Error::parameter(
                "options",
                format!("expected an object of named options, not {options}"),
            ));
        };
        let names = Self::names();
        let given: Map<String, Value> = options
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        for (name, value) in &given {
            if !names.contains(name) {
                return Err(Error::unknown_name("option", name, &names));
            }
            let alone = Value::Object(Map::from_iter([(name.clone(), value.clone())]));
            serde_json::from_value::<Self>(alone)
                .map_err(|err| Error::parameter(name.clone(), err.to_string()))?;
        }
        serde_json::from_value(Value::Object(given))
            .map_err(|err| Error::parameter("options", err.to_string()))
    }

    /// The checked options this request means: every default applied, every value checked
    /// (errors name the option: [`Error::InvalidParameter`]).
    pub fn resolve(&self) -> Result<AnalyzeOptions> {
        let selection = self.selection.resolve()?;
        let mut rmt = self.rmt.resolve()?;
        if self.seed.is_some() && !self.randomize {
            return Err(Error::parameter(
                "seed",
                "a seed is used only with randomize, which was not asked for",
            ));
        }
        let defaults = TailOptions::default();
        let tail = TailOptions {
            drop_top: self.xmax_drop.unwrap_or(defaults.drop_top),
            clip_fingers: self.clip_fingers,
            min_tail: self.min_tail.unwrap_or(defaults.min_tail),
            xmin_peak: self.xmin_peak,
        };
        if self.figure_data {
            rmt.keep_spacings = true;
            if rmt.number_variance.is_empty() {
                rmt.number_variance = FIGURE_NUMBER_VARIANCE_LENGTHS.to_vec();
            }
        }
        let randomize = self.randomize.then(|| self.seed.unwrap_or(0));
        let estimator = self.estimator.unwrap_or_default();
        let farms = self.farms_windows(estimator)?;
        if estimator.rule() != TailRule::WeightWatcher && tail != defaults {
            return Err(Error::parameter(
                "estimator",
                format!(
                    "xmax_drop, clip_fingers, xmin_peak and min_tail shape WeightWatcher's fit; \
                     the {estimator} estimator fits its own way"
                ),
            ));
        }
        let settings = Self {
            device: Some(self.device.unwrap_or_default()),
            convention: Some(self.convention.unwrap_or_default()),
            precision: Some(self.precision.unwrap_or_default()),
            eigenvalues: self.eigenvalues,
            figure_data: self.figure_data,
            randomize: self.randomize,
            seed: randomize,
            xmax_drop: Some(tail.drop_top),
            clip_fingers: tail.clip_fingers,
            xmin_peak: tail.xmin_peak,
            min_tail: Some(tail.min_tail),
            estimator: Some(estimator),
            farms_window: farms.map(|f| f.window),
            farms_q: farms.map(|f| f.q),
            farms_grid: farms.map(|f| f.grid),
            selection: SelectionRequest {
                conv: Some(selection.conv_mode),
                layers: self.selection.layers.clone(),
                min_evals: Some(selection.min_evals),
                max_evals: selection.max_evals,
                max_n: selection.max_n,
                ww_compat: selection.ww_compat,
                split_fused: selection.split_fused,
                split_heads: selection.split_heads,
            },
            rmt: self.rmt.resolved(&rmt),
        };
        Ok(AnalyzeOptions {
            device: self.device.unwrap_or_default(),
            convention: self.convention.unwrap_or_default(),
            precision: self.precision.unwrap_or_default(),
            keep_eigenvalues: self.eigenvalues || self.figure_data,
            tail,
            estimator,
            farms,
            randomize,
            selection,
            rmt,
            settings,
        })
    }

    /// FARMS's windows for `estimator`, checked: `None` unless it pools windows, and then the
    /// parameters given or their defaults. Parameters given to another estimator are refused.
    fn farms_windows(&self, estimator: Estimator) -> Result<Option<FarmsWindows>> {
        let given = [
            ("farms_window", self.farms_window.is_some()),
            ("farms_q", self.farms_q.is_some()),
            ("farms_grid", self.farms_grid.is_some()),
        ];
        if !estimator.pools_windows() {
            return match given.iter().find(|(_, given)| *given) {
                Some((name, _)) => Err(Error::parameter(
                    *name,
                    format!("applies to the farms estimators, not to {estimator}"),
                )),
                None => Ok(None),
            };
        }
        let windows = FarmsWindows {
            window: self.farms_window.unwrap_or(DEFAULT_FARMS_WINDOWS.window),
            q: self.farms_q.unwrap_or(DEFAULT_FARMS_WINDOWS.q),
            grid: self.farms_grid.unwrap_or(DEFAULT_FARMS_WINDOWS.grid),
        };
        if windows.window < 2 {
            return Err(Error::parameter(
                "farms_window",
                "a window has at least 2 rows",
            ));
        }
        if !(windows.q > 0.0 && windows.q <= 1e6) {
            return Err(Error::parameter("farms_q", "the aspect ratio must be > 0"));
        }
        if windows.grid < 2 {
            return Err(Error::parameter(
                "farms_grid",
                "at least 2 window positions per dimension",
            ));
        }
        Ok(Some(windows))
    }
}

impl SelectionRequest {
    /// The checked layer selection this request means. With `ww_compat`, WeightWatcher's limits
    /// apply unless given and convolutions are read as it reads them (`conv ww`); another conv
    /// mode asked for beside it is refused.
    pub fn resolve(&self) -> Result<LayerSelection> {
        let ww = self.ww_compat;
        let selection = LayerSelection {
            conv_mode: self.conv.unwrap_or(if ww {
                ConvMode::WeightWatcher
            } else {
                ConvMode::Slices
            }),
            name_pattern: None,
            min_evals: self.min_evals.unwrap_or(DEFAULT_MIN_EVALS),
            max_evals: self.max_evals.or(ww.then_some(WEIGHTWATCHER_MAX_EVALS)),
            max_n: self.max_n.or(ww.then_some(WEIGHTWATCHER_MAX_N)),
            split_fused: self.split_fused,
            split_heads: self.split_heads,
            ww_compat: ww,
        };
        let selection = match &self.layers {
            Some(pattern) => selection.with_pattern(pattern)?,
            None => selection,
        };
        selection.check()?;
        Ok(selection)
    }
}

impl RmtRequest {
    /// The checked suite options this request means.
    pub fn resolve(&self) -> Result<RmtOptions> {
        let options = RmtOptions {
            level: self.tw_level.unwrap_or(DEFAULT_TW_LEVEL),
            unfolding: match self.unfolding.unwrap_or_default() {
                UnfoldingMethod::Gaussian => Unfolding::GaussianBroadening {
                    window: self.unfolding_window.unwrap_or(DEFAULT_GAUSSIAN_WINDOW),
                },
                UnfoldingMethod::Polynomial => Unfolding::Polynomial {
                    degree: self.unfolding_degree.unwrap_or(DEFAULT_POLYNOMIAL_DEGREE),
                },
            },
            number_variance: self.number_variance.clone().unwrap_or_default().0,
            vectors: self.vectors,
            porter_thomas_window: self.pt_window.unwrap_or(DEFAULT_PORTER_THOMAS_WINDOW),
            semicircle: self.semicircle,
            keep_spacings: false,
        };
        options.check()?;
        Ok(options)
    }

    /// This request with what `options` (its resolution) ran with filled in; the parameter of
    /// the unfolding not used keeps its default, so that the settings resolve to themselves.
    fn resolved(&self, options: &RmtOptions) -> Self {
        let (method, window, degree) = match options.unfolding {
            Unfolding::GaussianBroadening { window } => {
                let degree = self.unfolding_degree.unwrap_or(DEFAULT_POLYNOMIAL_DEGREE);
                (UnfoldingMethod::Gaussian, window, degree)
            }
            Unfolding::Polynomial { degree } => {
                let window = self.unfolding_window.unwrap_or(DEFAULT_GAUSSIAN_WINDOW);
                (UnfoldingMethod::Polynomial, window, degree)
            }
        };
        Self {
            tw_level: Some(options.level),
            unfolding: Some(method),
            unfolding_window: Some(window),
            unfolding_degree: Some(degree),
            number_variance: Some(Lengths(options.number_variance.clone())),
            vectors: options.vectors,
            pt_window: Some(options.porter_thomas_window),
            semicircle: options.semicircle,
        }
    }
}

/// Checked analysis options: made only by [`AnalysisRequest::resolve`] (the defaults:
/// [`AnalyzeOptions::default`]), so [`crate::analyze`] never sees an unchecked value.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    pub(crate) device: DeviceChoice,
    pub(crate) selection: LayerSelection,
    pub(crate) convention: EsdConvention,
    pub(crate) precision: Precision,
    pub(crate) keep_eigenvalues: bool,
    pub(crate) tail: TailOptions,
    pub(crate) estimator: Estimator,
    pub(crate) farms: Option<FarmsWindows>,
    pub(crate) randomize: Option<u64>,
    pub(crate) rmt: RmtOptions,
    settings: AnalysisRequest,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalysisRequest::default()
            .resolve()
            .expect("the default options are valid")
    }
}

impl AnalyzeOptions {
    /// The request these options resolved, with every default filled in: what the JSON's
    /// `settings`, the HTML report and the zoo's cache key record.
    pub fn settings(&self) -> &AnalysisRequest {
        &self.settings
    }

    /// The settings as a JSON object (option name → value), in the order of the fields.
    pub fn settings_json(&self) -> Map<String, Value> {
        match serde_json::to_value(&self.settings) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        }
    }

    /// Where the spectra are computed.
    pub fn device(&self) -> DeviceChoice {
        self.device
    }

    /// Which tensors, and how convolutions become matrices.
    pub fn selection(&self) -> &LayerSelection {
        &self.selection
    }

    /// The ESD convention of the reported eigenvalues and scale metrics.
    pub fn convention(&self) -> EsdConvention {
        self.convention
    }

    /// Arithmetic of the Gram product.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The estimator of each layer's α.
    pub fn estimator(&self) -> Estimator {
        self.estimator
    }

    /// The universal RMT suite's options.
    pub fn rmt(&self) -> &RmtOptions {
        &self.rmt
    }

    /// The same options on another device (a service that places work itself).
    pub fn on_device(mut self, device: DeviceChoice) -> Self {
        self.device = device;
        self.settings.device = Some(device);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(options: Value) -> Result<AnalysisRequest> {
        AnalysisRequest::from_json(&options)
    }

    #[test]
    fn settings_resolve_to_themselves() {
        for options in [
            serde_json::json!({}),
            serde_json::json!({"ww_compat": true, "randomize": true, "seed": 7}),
            serde_json::json!({"figure_data": true, "unfolding": "polynomial", "layers": "fc"}),
            serde_json::json!({"number_variance": "1:3", "conv": "reshape", "max_n": 100}),
            serde_json::json!({"estimator": "farms-peak", "farms_grid": 4}),
            serde_json::json!({"estimator": "hill-median"}),
        ] {
            let resolved = request(options).unwrap().resolve().unwrap();
            let again = resolved.settings().resolve().unwrap();
            assert_eq!(again.settings(), resolved.settings());
            let json = Value::Object(resolved.settings_json());
            assert_eq!(&request(json).unwrap(), resolved.settings());
        }
    }

    #[test]
    fn a_conv_mode_given_is_not_a_conv_mode_defaulted() {
        let ww = request(serde_json::json!({"ww_compat": true})).unwrap();
        assert_eq!(
            ww.resolve().unwrap().selection().conv_mode,
            ConvMode::WeightWatcher
        );
        let slices = request(serde_json::json!({"ww_compat": true, "conv": "slices"})).unwrap();
        assert!(matches!(
            slices.resolve(),
            Err(Error::InvalidParameter { name, .. }) if name == "conv"
        ));
    }

    #[test]
    fn keyword_errors_name_the_keyword() {
        let unknown = request(serde_json::json!({"min_eval": 3})).unwrap_err();
        assert!(
            unknown.to_string().contains("min_eval") && unknown.to_string().contains("min_evals"),
            "{unknown}"
        );
        let wrong = request(serde_json::json!({"min_evals": "three"})).unwrap_err();
        assert!(
            matches!(&wrong, Error::InvalidParameter { name, .. } if name == "min_evals"),
            "{wrong}"
        );
        let lengths = request(serde_json::json!({"number_variance": "0:2"})).unwrap_err();
        assert!(
            matches!(&lengths, Error::InvalidParameter { name, .. } if name == "number_variance"),
            "{lengths}"
        );
        let seed = request(serde_json::json!({"seed": 3})).unwrap().resolve();
        assert!(matches!(seed, Err(Error::InvalidParameter { name, .. }) if name == "seed"));
        assert!(request(serde_json::json!({"seed": null}))
            .unwrap()
            .resolve()
            .is_ok());
    }

    #[test]
    fn estimator_options_are_checked_against_the_estimator() {
        let refused = |options: Value, name: &str| {
            let err = request(options).unwrap().resolve().unwrap_err();
            assert!(
                matches!(&err, Error::InvalidParameter { name: n, .. } if n == name),
                "{err}"
            );
        };
        refused(serde_json::json!({"farms_q": 2.0}), "farms_q");
        refused(
            serde_json::json!({"estimator": "farms", "farms_grid": 1}),
            "farms_grid",
        );
        refused(
            serde_json::json!({"estimator": "farms", "farms_q": 0.0}),
            "farms_q",
        );
        refused(
            serde_json::json!({"estimator": "hill-median", "clip_fingers": true}),
            "estimator",
        );
        let farms = request(serde_json::json!({"estimator": "farms"}))
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(farms.farms, Some(DEFAULT_FARMS_WINDOWS));
        assert!(request(serde_json::json!({"estimator": "hill"})).is_err());
    }

    #[test]
    fn lengths_read_lists_and_ranges() {
        assert_eq!("1,2,5".parse::<Lengths>().unwrap().0, [1.0, 2.0, 5.0]);
        assert_eq!(
            "0.5:2:0.5".parse::<Lengths>().unwrap().0,
            [0.5, 1.0, 1.5, 2.0]
        );
        assert!("2:1".parse::<Lengths>().is_err());
        assert!("1,-2".parse::<Lengths>().is_err());
        assert!("1:2:3:4".parse::<Lengths>().is_err());
    }
}
