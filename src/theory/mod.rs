//! The theory behind the spectra, as closed forms and simulations to compare networks with:
//! Dyson Brownian motion and its Coulomb gas ([`dyson`], Favoni, Aarts, Lucini & Park (2024) and Aarts (2025)), Hermite
//! linearisation of activations ([`hermite`]), the conjugate kernel of a random layer against
//! its linear equivalent and across depth ([`kernel`], Liao & Mahoney (2025)), pre-activation statistics at
//! initialisation ([`preactivation`], Aarts (2025)), and the deterministic-equivalent risks of
//! ridge regression ([`ridge`]) and random-features ridge ([`random_features`]) with their
//! double descent. Closed forms in pure f64; simulations seeded ([`crate::random`]).
pub mod budget;
pub mod dyson;
pub mod hermite;
pub mod kernel;
pub mod preactivation;
pub mod random_features;
pub mod ridge;
