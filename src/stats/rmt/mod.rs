//! Random matrix theory on plain `&[f64]`: distributions and tests, with no libtorch in sight.
pub mod bulk_fit;
pub mod bulk_outliers;
pub mod goodness_of_fit;
pub mod marchenko_pastur;
pub mod number_variance;
pub mod porter_thomas;
pub mod quadrature;
pub mod spacing;
pub mod special;
pub mod tracy_widom;
pub mod unfolding;
pub mod wigner;
