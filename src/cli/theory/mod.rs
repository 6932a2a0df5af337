//! `rmt-torch theory`: the closed forms and quadratures behind the spectra.

use clap::{Args, Subcommand};

mod depth;
mod dyson;
mod hermite;
mod kernel;
mod preactivation;
mod random_features;
mod ridge;

use crate::report::Tabulated;

use super::OutputArgs;

/// Arguments of `theory`.
#[derive(Debug, Args)]
pub struct TheoryArgs {
    #[command(subcommand)]
    command: TheoryCommand,
}

#[derive(Debug, Subcommand)]
enum TheoryCommand {
    /// Hermite coefficients aₖ = E[φ(ξ)Heₖ(ξ)]/√k! and ν = E[φ(ξ)²] of activations (Liao & Mahoney's (2025)
    /// linear equivalent of a random layer's conjugate kernel).
    Hermite(hermite::HermiteArgs),
    /// The conjugate kernel K = φ(WX)ᵀφ(WX)/d of a random layer against its Hermite linear
    /// equivalent K̃: the relative operator-norm error ‖K − K̃‖/‖K‖.
    Kernel(kernel::KernelArgs),
    /// Deterministic-equivalent prediction risk of ridge regression with isotropic features
    /// (Hastie et al.): double descent in γ = p/n, its peak at γ = 1 for a small ridge λ.
    Ridge(ridge::RidgeArgs),
    /// Ridge regression on N random features (Louart, Liao & Couillet): training and test
    /// error against their deterministic equivalents; the test error peaks at N = n.
    RandomFeatures(random_features::RandomFeaturesArgs),
    /// Dyson Brownian motion of eigenvalues and its Coulomb gas: spacings against the Wigner
    /// surmise, densities against the semicircle and Favoni, Aarts, Lucini & Park's (2024) two-width pair density.
    Dyson(dyson::DysonArgs),
    /// The curse of depth: the conjugate kernel K_L of a deep random network forgets its input
    /// as b^{2L} (b the normalised activation's a₁); ‖K_L − I‖_F against the prediction.
    Depth(depth::DepthArgs),
    /// Pre-activation statistics at initialisation (Aarts (2025), eq. 32): the recursion for
    /// E[z⁽ˡ⁾(x_α)z⁽ˡ⁾(x_β)] against random networks.
    Preactivation(preactivation::PreactivationArgs),
}

/// Evaluates and prints: each subcommand computes, then writes through the one output path
/// (`emit`) and its figures.
pub fn run(args: TheoryArgs) -> anyhow::Result<u8> {
    match args.command {
        TheoryCommand::Hermite(args) => hermite::run(args)?,
        TheoryCommand::Kernel(args) => kernel::run(args)?,
        TheoryCommand::Ridge(args) => ridge::run(args)?,
        TheoryCommand::RandomFeatures(args) => random_features::run(args)?,
        TheoryCommand::Dyson(args) => dyson::run(args)?,
        TheoryCommand::Depth(args) => depth::run(args)?,
        TheoryCommand::Preactivation(args) => preactivation::run(args)?,
    }
    Ok(0)
}

/// The one output path of every theory subcommand: `results` as JSON, or the table (CSV with
/// the same columns) of `rows` under `headers`.
pub(super) fn emit(
    output: &OutputArgs,
    results: &impl serde::Serialize,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
) -> anyhow::Result<()> {
    output.emit(&Tabulated {
        results,
        headers,
        rows,
    })
}
