//! # rmt-torch
//!
//! Random matrix theory diagnostics for PyTorch models, from Rust: load a TorchScript archive, a
//! Python `torch.save` checkpoint (read without Python) or a safetensors file, pick its weight matrices, compute their eigenvalue spectra in f64 on the
//! CPU or a CUDA GPU, and measure them against random-matrix predictions.
//!
//! Data flows one way: [`model`] (load, select layers) → [`spectrum`] (eigenvalues of WᵀW) →
//! [`esd`] (the reporting convention) → [`spectral_metrics`] and [`rmt`] (pure math on `&[f64]`)
//! → [`report`] (table, JSON, CSV; figures and the HTML page with the default `plots` feature). [`analysis::analyze`] runs the whole chain, with
//! [`heavy_tail`] (power law and its alternatives) and [`rmt_suite`] (Marchenko-Pastur,
//! Tracy-Widom, spacings, Porter-Thomas) per layer. Built on it: [`jacobian`] (input-output
//! Jacobians through autograd), [`hessian`] (loss Hessian spectra; [`lanczos`] is the
//! iteration both use on operators known only by their products), [`monitor`] (the `tch`
//! training-loop plugin), [`track`] (checkpoints over training), [`zoo`] (many models,
//! policies, shards) and [`theory`] (closed forms to compare with).
//!
//! A service analyses the model it already holds: [`Model::from_module`] (a `tch::CModule`),
//! [`Model::from_var_store`] and [`Model::from_tensors`] share its tensors; [`health::check`]
//! gates a deployment on a [`health::Policy`] (the rules of `zoo --fail-if`), and [`metrics`]
//! exports the verdicts as Prometheus metrics (`examples/service.rs` puts them together).
//! Cargo features: `plots` (figures, the HTML report), `cli` (what only the binary needs: clap,
//! anyhow, indicatif) and `prometheus` ([`metrics`]), all on by default; a service takes
//! `default-features = false, features = ["prometheus"]`.
//!
//! ```no_run
//! use rmt_torch::{analyze, AnalysisRequest, Model};
//!
//! let model = Model::load("models/digits_mlp_trained.pt")?;
//! let options = AnalysisRequest::default().resolve()?;
//! let analysis = analyze(&model, &options)?;
//! for layer in &analysis.layers {
//!     println!("{}: λmax = {:.3}, stable rank = {:.1}", layer.name,
//!              layer.metrics.lambda_max, layer.metrics.stable_rank);
//! }
//! # Ok::<(), rmt_torch::Error>(())
//! ```
#![warn(missing_docs)]

pub mod analysis;
pub mod device;
pub mod environment;
pub mod error;
pub mod esd;
pub mod health;
pub mod heavy_tail;
pub mod hessian;
pub mod jacobian;
pub mod lanczos;
#[cfg(feature = "prometheus")]
pub mod metrics;
pub mod model;
pub mod monitor;
mod option_names;
pub mod report;
pub mod rmt;
pub mod rmt_suite;
pub mod spectral_metrics;
pub mod spectrum;
pub mod theory;
pub mod track;
pub mod zoo;

pub use analysis::{
    analyze, analyze_with_progress, Analysis, AnalysisRequest, AnalyzeOptions, LayerReport,
    ModelSummary, SummaryField,
};
pub use device::DeviceChoice;
pub use error::{Error, ErrorKind, Result};
pub use esd::EsdConvention;
pub use model::layers::{ConvMode, LayerSelection};
pub use model::Model;
#[cfg(feature = "cli")]
pub use option_names::choice;
pub use option_names::OptionNames;
pub use rmt_suite::RmtOptions;
pub use spectrum::Precision;
