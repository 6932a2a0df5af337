//! Random matrix theory on plain `&[f64]`: distributions and tests, with no libtorch in sight.
pub mod goodness_of_fit;
pub mod marchenko_pastur;
