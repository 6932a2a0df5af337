//! The theory behind the spectra, as closed forms and quadratures to compare networks with:
//! Hermite linearisation of activations and the deterministic-equivalent risk of ridge
//! regression (seed 002). Pure math on f64.
pub mod hermite;
pub mod random;
pub mod ridge;
