//! Statistics of spectra, pure math on `&[f64]` that knows nothing of libtorch: the reporting
//! convention ([`esd`]), norms, ranks and entropy ([`spectral_metrics`]), the heavy tail
//! ([`heavy_tail`]: power law, its alternatives, Hill, quality labels), random-matrix laws and
//! tests ([`rmt`]) and the suite that runs them on one layer ([`suite`]).
pub mod esd;
pub mod heavy_tail;
pub mod rmt;
pub mod spectral_metrics;
pub mod suite;
