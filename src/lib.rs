//! # rmt-torch
//!
//! Random matrix theory diagnostics for PyTorch models, from Rust: load a TorchScript archive, a
//! Python `torch.save` checkpoint (read without Python) or a safetensors file, pick its weight matrices, compute their eigenvalue spectra in f64 on the
//! CPU or a CUDA GPU, and measure them against random-matrix predictions.
//!
//! Data flows one way, by stage: [`model`] (load, select layers) → [`spectrum`] (eigenvalues
//! of WᵀW, in f64, on the CPU or a GPU) → [`stats`] (the ESD convention, norms and ranks, the
//! heavy tail, the RMT suite: pure math on `&[f64]`) → [`analysis`] (options, the schedule
//! over layers, one record per layer; [`analyze`] runs the whole chain) → [`workflows`]
//! (Jacobians, loss Hessians and the Lanczos iteration both use, the training-loop monitor,
//! tracks over checkpoints, zoos, health gates) → [`report`] (tables, JSON and CSV through one
//! [`report::Render`] trait; figures and the HTML page with the default `plots` feature;
//! Prometheus metrics with `prometheus`). [`theory`] has the closed forms and simulations to
//! compare with; [`random`] the seeded generator every stage draws from.
//!
//! A service analyses the model it already holds: [`Model::from_module`] (a `tch::CModule`),
//! [`Model::from_var_store`] and [`Model::from_tensors`] share its tensors;
//! [`workflows::health::check`] gates a deployment on a [`workflows::health::Policy`] (the rules
//! of `zoo --fail-if`), and `report::prometheus` exports the verdicts as Prometheus metrics
//! (`examples/service.rs` puts them together). [`cli`] is the `rmt-torch` command line itself,
//! one entry point for the binary and the Python wheel's console script. Cargo features: `plots`
//! (figures, the HTML report), `cli` (the command line: clap, anyhow, indicatif) and
//! `prometheus`, all on by default; a service takes `default-features = false, features = ["prometheus"]`.
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
#[cfg(all(feature = "cli", feature = "plots"))]
pub mod cli;
pub mod device;
pub mod environment;
pub mod error;
pub mod model;
mod option_names;
pub mod random;
pub mod report;
pub mod spectrum;
pub mod stats;
pub mod theory;
pub mod workflows;

pub use analysis::{
    analyze, analyze_with_progress, Analysis, AnalysisRequest, AnalyzeOptions, LayerReport,
    ModelSummary, SummaryField,
};
pub use device::DeviceChoice;
pub use error::{Error, ErrorKind, Result};
pub use model::layers::{ConvMode, LayerSelection};
pub use model::Model;
pub use option_names::OptionNames;
#[cfg(feature = "cli")]
pub use option_names::{choice, described_choice};
pub use spectrum::Precision;
pub use stats::esd::EsdConvention;
pub use stats::suite::RmtOptions;

/// The guide's Rust examples (`docs/library.md`), compiled by `cargo test --doc` so that they
/// cannot fall behind the API.
#[cfg(doctest)]
#[doc = include_str!("../docs/library.md")]
pub struct GuideLibraryExamples;
