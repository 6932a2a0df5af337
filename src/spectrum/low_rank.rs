//! The spectrum of a low-rank product s·B·A from its factors, never forming it: with the thin
//! QR factorisations B = Q_B R_B and Aᵀ = Q_A R_A, s·B·A = Q_B (s R_B R_Aᵀ) Q_Aᵀ, so its
//! non-zero singular values are those of the r × r core s R_B R_Aᵀ. A 4096 × 4096 update of
//! rank 16 costs two thin QRs and a 16 × 16 SVD instead of a 4096-wide eigensolve, and the QRs
//! keep the accuracy an SVD of the product would have (no Gram matrix squares the condition).
use tch::{Kind, Tensor};

use super::gram::{eigensolve_on_one_thread, non_finite_error};
use super::Spectrum;
use crate::error::{Error, Result};

/// The spectrum of the stack s·B_k·A_k (B [slices, out, r], A [slices, r, in]) as a
/// [`Spectrum`] of `m` = min(out, in) squared singular values per matrix: the core's, and
/// m − rank zeros.
pub(crate) fn low_rank_spectrum(
    name: &str,
    b: &Tensor,
    a: &Tensor,
    scale: f64,
    device: tch::Device,
) -> Result<Spectrum> {
    let _no_grad = tch::no_grad_guard();
    let (b, a) = (
        b.f_to_device(device)?.f_to_kind(Kind::Double)?,
        a.f_to_device(device)?.f_to_kind(Kind::Double)?,
    );
    let [slices, out, _] = b.size()[..] else {
        return Err(Error::InvalidInput(format!(
            "layer '{name}': expected a stack of factors, got B of shape {:?}",
            b.size()
        )));
    };
    let inputs = a.size()[2];
    let m = out.min(inputs).max(0) as usize;
    let (_, r_b) = Tensor::f_linalg_qr(&b, "reduced")?;
    let (_, r_a) = Tensor::f_linalg_qr(&a.f_transpose(1, 2)?, "reduced")?;
    let core = r_b.f_matmul(&r_a.f_transpose(1, 2)?)?.f_mul_scalar(scale)?;
    // A non-finite factor makes the core non-finite: said before the SVD fails on it.
    let finite = core.f_isfinite()?.f_all()?;
    if !bool::try_from(finite)? {
        return Err(non_finite_error(name, &[&b, &a])?);
    }
    let (_, singular_values, _) = eigensolve_on_one_thread(&core, || Ok(core.f_svd(true, false)?))?;
    let rows = Vec::<Vec<f64>>::try_from(
        singular_values
            .f_reshape([slices, -1])?
            .f_to_device(tch::Device::Cpu)?,
    )?;
    let by_matrix: Vec<Vec<f64>> = rows
        .into_iter()
        .map(|row| {
            let mut squared = vec![0.0; m.saturating_sub(row.len())];
            squared.extend(row.iter().map(|s| s * s));
            squared.sort_by(f64::total_cmp);
            squared
        })
        .collect();
    let mut pooled = by_matrix.concat();
    pooled.sort_by(f64::total_cmp);
    // Σ of ΔW's entries is s·(1ᵀB)(A1) per matrix; Σ of their squares is Σσ².
    let column_sums = b.f_sum_dim_intlist([1i64].as_slice(), false, Kind::Double)?;
    let row_sums = a.f_sum_dim_intlist([2i64].as_slice(), false, Kind::Double)?;
    let total = scale * f64::try_from(column_sums.f_mul(&row_sums)?.f_sum(Kind::Double)?)?;
    let count = (slices * out * inputs) as f64;
    let mean = total / count;
    let sum_of_squares: f64 = pooled.iter().sum();
    Ok(Spectrum {
        squared_singular_values: pooled,
        by_matrix,
        entry_variance: (sum_of_squares / count - mean * mean).max(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The core's singular values are the product's: against the SVD of B·A formed.
    #[test]
    fn equals_the_spectrum_of_the_formed_product() {
        tch::manual_seed(3);
        let options = (Kind::Double, tch::Device::Cpu);
        let (b, a) = (
            Tensor::randn([2, 40, 5], options),
            Tensor::randn([2, 5, 30], options),
        );
        let ours = low_rank_spectrum("w", &b, &a, 0.5, tch::Device::Cpu).unwrap();
        let product = b.matmul(&a) * 0.5;
        let (_, s, _) = product.svd(true, false);
        for (k, values) in ours.by_matrix.iter().enumerate() {
            assert_eq!(values.len(), 30);
            assert!(values[..25].iter().all(|&v| v == 0.0));
            let mut theirs: Vec<f64> = Vec::<f64>::try_from(s.get(k as i64))
                .unwrap()
                .iter()
                .map(|s| s * s)
                .collect();
            theirs.sort_by(f64::total_cmp);
            for (ours, theirs) in values[25..].iter().zip(&theirs[25..]) {
                assert!((ours - theirs).abs() < 1e-12 * theirs, "{ours} vs {theirs}");
            }
        }
        let entries = &product;
        let variance = f64::try_from(entries.var(false)).unwrap();
        assert!((ours.entry_variance - variance).abs() < 1e-12 * variance);
    }
}
