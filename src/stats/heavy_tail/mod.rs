//! Heavy-tailed self-regularisation (Martin & Mahoney): the power-law tail of an ESD and the
//! quality metrics WeightWatcher derives from it. Pure math on `&[f64]`.
pub mod alternatives;
pub mod estimator;
pub mod hill;
pub mod power_law;
pub mod quality;
pub mod randomization;
