//! Health checks as Prometheus metrics (the `prometheus` crate's registry and text exposition),
//! so that a service's existing scrape picks up α, spikes and verdicts per model version.
//!
//! Every series carries the labels `model` and `version` (the service's names for them); the
//! per-layer ones also `layer`. Recording a new check of a model replaces all its series, so a
//! scrape after a model swap shows the new version only.
use std::collections::HashMap;
use std::sync::Mutex;

use prometheus::{GaugeVec, Opts, Registry, TextEncoder};

use crate::error::{Error, Result};
use crate::workflows::health::HealthReport;

/// Per-model series: (help, name) in the exposition, and how a check fills them.
const MODEL_GAUGES: [(&str, &str); 9] = [
    (
        "rmt_model_healthy",
        "1 when the model violates no rule of the policy, else 0",
    ),
    (
        "rmt_model_violations",
        "rules of the policy the model violates",
    ),
    ("rmt_model_layers", "weight layers analysed"),
    (
        "rmt_model_alpha",
        "mean power-law exponent alpha over the fitted layers",
    ),
    (
        "rmt_model_alpha_weighted",
        "mean alpha-hat = alpha * log10(lambda_max)",
    ),
    (
        "rmt_model_log_norm",
        "mean log10 of the squared Frobenius norm",
    ),
    ("rmt_model_stable_rank", "mean stable rank"),
    (
        "rmt_model_spikes_tw",
        "eigenvalues beyond the Tracy-Widom edge, all layers",
    ),
    (
        "rmt_model_check_seconds",
        "wall time of the last health check",
    ),
];

/// Per-layer series.
const LAYER_GAUGES: [(&str, &str); 4] = [
    (
        "rmt_layer_alpha",
        "power-law exponent alpha of the layer's ESD tail",
    ),
    (
        "rmt_layer_lambda_max",
        "largest eigenvalue of the layer's ESD",
    ),
    ("rmt_layer_stable_rank", "stable rank of the layer"),
    (
        "rmt_layer_spikes_tw",
        "eigenvalues beyond the Tracy-Widom edge",
    ),
];

/// A registry of health-check metrics for the models a service holds.
///
/// ```
/// use rmt_torch::workflows::health::{check, Policy};
/// use rmt_torch::report::prometheus::HealthMetrics;
/// let weight = tch::Tensor::randn([256, 128], (tch::Kind::Float, tch::Device::Cpu));
/// let model = rmt_torch::Model::from_tensors("service", [("fc.weight", &weight)]);
/// let options = rmt_torch::AnalyzeOptions::default().on_device(rmt_torch::DeviceChoice::Cpu);
/// let report = check(&model, &Policy::default(), &options)?;
/// let metrics = HealthMetrics::new()?;
/// metrics.record("classifier", "v1", &report)?;
/// assert!(metrics.exposition()?.contains("rmt_model_healthy{model=\"classifier\",version=\"v1\"} 1"));
/// # Ok::<(), rmt_torch::Error>(())
/// ```
pub struct HealthMetrics {
    registry: Registry,
    model: Vec<GaugeVec>,
    layer: Vec<GaugeVec>,
    /// The label values recorded for each model, removed when it is recorded again.
    recorded: Mutex<HashMap<String, Recorded>>,
}

/// The label values of one model's series.
#[derive(Default)]
struct Recorded {
    model: Vec<[String; 2]>,
    layer: Vec<[String; 3]>,
}

fn prometheus_error(err: prometheus::Error) -> Error {
    Error::InvalidOption(format!("metrics: {err}"))
}

impl HealthMetrics {
    /// An empty registry with every series declared.
    pub fn new() -> Result<Self> {
        let registry = Registry::new();
        let declare = |(name, help): (&str, &str), labels: &[&str]| -> Result<GaugeVec> {
            let gauge = GaugeVec::new(Opts::new(name, help), labels).map_err(prometheus_error)?;
            registry
                .register(Box::new(gauge.clone()))
                .map_err(prometheus_error)?;
            Ok(gauge)
        };
        let model = MODEL_GAUGES
            .into_iter()
            .map(|gauge| declare(gauge, &["model", "version"]))
            .collect::<Result<_>>()?;
        let layer = LAYER_GAUGES
            .into_iter()
            .map(|gauge| declare(gauge, &["model", "version", "layer"]))
            .collect::<Result<_>>()?;
        Ok(Self {
            registry,
            model,
            layer,
            recorded: Mutex::new(HashMap::new()),
        })
    }

    /// Records a check of `model` at `version`, replacing what was recorded for that model.
    pub fn record(&self, model: &str, version: &str, report: &HealthReport) -> Result<()> {
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(previous) = recorded.remove(model) {
            for labels in &previous.model {
                for gauge in &self.model {
                    let _ = gauge.remove_label_values(labels);
                }
            }
            for labels in &previous.layer {
                for gauge in &self.layer {
                    let _ = gauge.remove_label_values(labels);
                }
            }
        }
        let summary = &report.analysis.summary;
        let values = [
            Some(f64::from(u8::from(report.is_healthy()))),
            Some(report.violations.len() as f64),
            Some(summary.layers as f64),
            summary.alpha,
            summary.alpha_weighted,
            summary.log_norm,
            summary.stable_rank,
            Some(summary.num_spikes_tw as f64),
            Some(report.seconds),
        ];
        let labels = [model.to_string(), version.to_string()];
        for (gauge, value) in self.model.iter().zip(values) {
            if let Some(value) = value {
                gauge.with_label_values(&labels).set(value);
            }
        }
        let mut entry = Recorded {
            model: vec![labels],
            layer: Vec::new(),
        };
        for layer in &report.analysis.layers {
            let values = [
                layer.power_law.as_ref().map(|fit| fit.alpha),
                Some(layer.metrics.lambda_max),
                Some(layer.metrics.stable_rank),
                layer
                    .rmt
                    .bulk
                    .as_ref()
                    .map(|bulk| bulk.num_spikes_tw as f64),
            ];
            let labels = [model.to_string(), version.to_string(), layer.name.clone()];
            for (gauge, value) in self.layer.iter().zip(values) {
                if let Some(value) = value {
                    gauge.with_label_values(&labels).set(value);
                }
            }
            entry.layer.push(labels);
        }
        recorded.insert(model.to_string(), entry);
        Ok(())
    }

    /// Every series in Prometheus's text exposition format (what `/metrics` serves).
    pub fn exposition(&self) -> Result<String> {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .map_err(prometheus_error)
    }
}
