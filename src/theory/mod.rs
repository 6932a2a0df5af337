//! The theory behind the spectra, as closed forms and quadratures to compare networks with:
//! Hermite linearisation of activations and the deterministic-equivalent risk of ridge
//! regression (seed 002), and the conjugate kernel of a random layer against its linear
//! equivalent. Closed forms in pure f64; simulations seeded.
pub mod hermite;
pub mod kernel;
pub mod random;
pub mod ridge;
