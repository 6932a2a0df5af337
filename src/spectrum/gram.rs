//! The Gram matrices WᵀW of a stack of weight matrices, formed in bands without overflow or a
//! full f64 copy, and their eigensolve on one thread.
use tch::{Kind, Tensor};

use super::memory::{check_memory, eigensolver_bytes, WorkingSet};
use super::{Precision, RightSingularVectors, Spectrum};
use crate::error::{Error, Result};

/// The Gram matrices of a stack with all that its spectrum needs of the stack itself: once
/// they are formed the stack may be freed, before the eigensolve needs as much memory again.
pub(crate) struct Gram {
    /// Labels errors.
    name: String,
    /// Lower triangles of WᵀW scaled by 2^−2e, [slices, M, M].
    lower: Tensor,
    /// e of the exact power-of-two scaling (see [`SAFE_EXPONENT`]).
    exponent: i32,
    entry_variance: f64,
}

impl Gram {
    /// Forms the Gram matrices of `matrices` ([slices, N, M], N ≥ M) in the arithmetic of
    /// `precision` on `device`; refused when they would not fit in memory.
    pub(crate) fn of(
        name: &str,
        matrices: &Tensor,
        device: tch::Device,
        precision: Precision,
    ) -> Result<Self> {
        Self::of_source(name, &Rows::Stack(matrices), device, precision)
    }

    /// [`Gram::of`] of one N × M matrix (N ≥ M) given as its rows, made a band at a time by
    /// `band(start, count)` (a quantised layer decoded band by band: never whole in memory
    /// as floats). The same bands as [`Gram::of`] of the whole matrix, so the same numbers.
    pub(crate) fn of_bands(
        name: &str,
        (n, m): (i64, i64),
        band: &dyn Fn(i64, i64) -> Result<Tensor>,
        device: tch::Device,
        precision: Precision,
    ) -> Result<Self> {
        Self::of_source(name, &Rows::Bands { n, m, band }, device, precision)
    }

    fn of_source(
        name: &str,
        rows: &Rows<'_>,
        device: tch::Device,
        precision: Precision,
    ) -> Result<Self> {
        let _no_grad = tch::no_grad_guard();
        let kind = match precision {
            Precision::F64 => Kind::Double,
            Precision::Fast => Kind::Float,
        };
        let (lower, row_sums, exponent) = checked_gram(name, rows, device, kind)?;
        let (scale, scale2) = (2f64.powi(exponent), 4f64.powi(exponent));
        let [slices, n, m] = rows.shape();
        let count = (slices * n * m) as f64;
        // Row sums added here in order: a whole-tensor sum splits by thread count, and its last
        // bits with it.
        let mean = row_sums.iter().sum::<f64>() / count * scale;
        let sum_of_squares =
            f64::try_from(lower.f_diagonal(0, 1, 2)?.f_sum(Kind::Double)?)? * scale2;
        Ok(Self {
            name: name.to_string(),
            lower,
            exponent,
            entry_variance: (sum_of_squares / count - mean * mean).max(0.0),
        })
    }

    /// The Gram matrix of the difference `minuend − subtrahend` of two [n, p] weights (stored
    /// dtypes) as [`crate::model::layers::as_matrices`] orients it (XXᵀ when n < p, else XᵀX),
    /// formed in f64 a band at a time ([`GRAM_CHUNK_BYTES`]): the difference is never whole
    /// in memory. What `compare` reads an update's spectrum from. f64 products of float
    /// weights cannot overflow; a non-finite entry is an error, as in [`Gram::of`].
    pub(crate) fn of_difference(
        name: &str,
        minuend: &Tensor,
        subtrahend: &Tensor,
        device: tch::Device,
    ) -> Result<Self> {
        let _no_grad = tch::no_grad_guard();
        let (n, p) = (minuend.size()[0], minuend.size()[1]);
        let wide = n < p;
        let (length, m) = if wide { (p, n) } else { (n, p) };
        check_memory(
            name,
            WorkingSet::of(1.0, length as f64, m as f64, false).forming,
            device,
        )?;
        let band_rows = (GRAM_CHUNK_BYTES / (8 * m).max(1)).clamp(1, length.max(1));
        let mut lower = Tensor::f_zeros([1, m, m], (Kind::Double, device))?;
        let mut sum = Tensor::f_zeros([], (Kind::Double, device))?;
        for start in (0..length).step_by(band_rows as usize) {
            let rows = band_rows.min(length - start);
            let band = |t: &Tensor| -> Result<Tensor> {
                let band = if wide {
                    t.f_narrow(1, start, rows)?.f_tr()?
                } else {
                    t.f_narrow(0, start, rows)?
                };
                Ok(band.f_to_device(device)?.f_to_kind(Kind::Double)?)
            };
            let difference = band(minuend)?.f_sub(&band(subtrahend)?)?;
            sum = sum.f_add(&difference.f_sum(Kind::Double)?)?;
            add_gram_lower(
                &mut lower,
                &blas_readable(difference.f_unsqueeze(0)?, Kind::Double)?,
            )?;
        }
        if !all_finite(&lower)? {
            return Err(non_finite_error(name, &[minuend, subtrahend])?);
        }
        let entries = (n * p) as f64;
        let mean = f64::try_from(sum)? / entries;
        let sum_of_squares = f64::try_from(lower.f_diagonal(0, 1, 2)?.f_sum(Kind::Double)?)?;
        Ok(Self {
            name: name.to_string(),
            lower,
            exponent: 0,
            entry_variance: (sum_of_squares / entries - mean * mean).max(0.0),
        })
    }

    /// The Gram matrix of the stack's first matrix, whole and symmetric, in f64 at its true
    /// scale (for statistics that read WᵀW itself, such as CKA).
    pub(crate) fn symmetric(&self) -> Result<Tensor> {
        let lower = self.lower.f_get(0)?.f_to_kind(Kind::Double)?.f_tril(0)?;
        let full = lower.f_add(&lower.f_tril(-1)?.f_tr()?)?;
        Ok(full.f_mul_scalar(4f64.powi(self.exponent))?)
    }

    /// The spectrum ([`spectrum`]).
    pub(crate) fn spectrum(self) -> Result<Spectrum> {
        Ok(self.decompose(false)?.0)
    }

    /// The spectrum and the right singular vectors ([`spectrum_with_vectors`]).
    pub(crate) fn spectrum_with_vectors(self) -> Result<(Spectrum, Vec<RightSingularVectors>)> {
        let (spectrum, vectors) = self.decompose(true)?;
        let Some(vectors) = vectors else {
            return Ok((spectrum, Vec::new()));
        };
        // Columns of each matrix's eigenvector block are the eigenvectors: transpose so that
        // each row is one.
        let rows = vectors
            .f_transpose(1, 2)?
            .f_contiguous()?
            .f_to_kind(Kind::Double)?
            .f_to_device(tch::Device::Cpu)?;
        let decompositions = spectrum
            .by_matrix
            .iter()
            .enumerate()
            .map(|(index, values)| {
                Ok(RightSingularVectors {
                    squared_singular_values: values.clone(),
                    vectors: Vec::<Vec<f64>>::try_from(rows.f_get(index as i64)?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((spectrum, decompositions))
    }

    /// The spectrum, and the eigenvectors of the Gram matrices ([slices, M, M], columns) when
    /// `vectors` is asked for.
    fn decompose(self, vectors: bool) -> Result<(Spectrum, Option<Tensor>)> {
        let _no_grad = tch::no_grad_guard();
        let Self {
            name,
            lower,
            exponent,
            entry_variance,
        } = self;
        let m = lower.size()[2];
        let gram_bytes = 8.0 * (lower.numel() as f64);
        check_memory(
            &name,
            eigensolver_bytes(gram_bytes, vectors),
            lower.device(),
        )?;
        let (eigenvalues, eigenvectors) = eigensolve_on_one_thread(&lower, || {
            Ok(if vectors {
                let (values, vectors) = lower.f_linalg_eigh("L")?;
                (values, Some(vectors))
            } else {
                (lower.f_linalg_eigvalsh("L")?, None)
            })
        })?;
        drop(lower);
        let scale2 = 4f64.powi(exponent);
        let eigenvalues = (eigenvalues.f_to_kind(Kind::Double)?.f_clamp_min(0.0)? * scale2)
            .f_to_kind(Kind::Double)?;
        let mut host = Vec::<f64>::try_from(
            eigenvalues
                .f_flatten(0, -1)?
                .f_to_device(tch::Device::Cpu)?,
        )?;
        let beyond = |v: &f64| !v.is_finite() || (exponent < 0 && *v < f64::MIN_POSITIVE);
        if exponent != 0 && (host.iter().all(beyond) || host.iter().any(|v| !v.is_finite())) {
            return Err(Error::OutOfRange { name, exponent });
        }
        let m = m.max(1) as usize;
        let by_matrix = host.chunks(m).map(<[f64]>::to_vec).collect();
        host.sort_by(f64::total_cmp);
        let spectrum = Spectrum {
            squared_singular_values: host,
            by_matrix,
            entry_variance,
        };
        Ok((spectrum, eigenvectors))
    }
}

/// Runs `solve`, an eigensolve of `matrix`, with libtorch on one thread when the matrix is on
/// the CPU. LAPACK's threaded reduction to tridiagonal form adds in an order set by the thread
/// count, so the same matrix gives eigenvalues that differ in the last bits at 1 and 2 threads,
/// and fits on flat likelihoods magnify that; on one thread every `--threads` (and `zoo`,
/// which shares the cores out) gives the same numbers. While any such solve runs, libtorch's
/// thread count is 1 for the whole process (it is global): the first to enter sets it, the
/// last to leave restores it, so solves on concurrent threads stay deterministic too.
pub(crate) fn eigensolve_on_one_thread<T>(
    matrix: &Tensor,
    solve: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if matrix.device() != tch::Device::Cpu {
        return solve();
    }
    static SOLVING: std::sync::Mutex<(usize, i32)> = std::sync::Mutex::new((0, 1));
    struct OneThread;
    impl Drop for OneThread {
        fn drop(&mut self) {
            let mut state = SOLVING.lock().unwrap_or_else(|poison| poison.into_inner());
            state.0 -= 1;
            if state.0 == 0 {
                tch::set_num_threads(state.1);
            }
        }
    }
    let guard = {
        let mut state = SOLVING.lock().unwrap_or_else(|poison| poison.into_inner());
        if state.0 == 0 {
            state.1 = tch::get_num_threads();
            tch::set_num_threads(1);
        }
        state.0 += 1;
        OneThread
    };
    let result = solve();
    drop(guard);
    result
}

/// Entries of a layer whose largest magnitude lies outside [2⁻⁴⁰, 2⁴⁰] are scaled by a power of
/// two (exactly) before WᵀW is formed, so that the Gram product neither underflows nor
/// overflows; the eigenvalues are scaled back.
const SAFE_EXPONENT: i32 = 40;

/// The lower triangle of the Gram matrices of the stack W, scaled by 2^−e, in `kind` on `device`,
/// the sum of each of W's rows (slice-major, for the entry mean) and e; refused when it would
/// not fit in memory or holds non-finite entries.
///
/// W is converted to `kind` a band of rows at a time ([`GRAM_CHUNK_BYTES`]) and the bands' Gram
/// matrices summed in order, so that a layer costs its stored bytes plus one band, never a full
/// f64 copy: a 32000 × 2048 bfloat16 embedding is 131 MB as stored and would be 524 MB in f64.
/// The bands depend on the shape alone, so the numbers do not depend on the thread count.
///
/// Call it under `tch::no_grad_guard()`: parameters loaded from TorchScript require grad, and
/// with autograd on eigvalsh computes eigenvectors for the backward pass, four times slower.
fn checked_gram(
    name: &str,
    rows: &Rows<'_>,
    device: tch::Device,
    kind: Kind,
) -> Result<(Tensor, Vec<f64>, i32)> {
    if let Rows::Stack(matrices) = rows {
        if matrices.dim() != 3 {
            return Err(Error::InvalidInput(format!(
                "layer '{name}': expected a stack of matrices, got shape {:?}",
                matrices.size()
            )));
        }
    }
    let [slices, n, m] = rows.shape();
    check_memory(
        name,
        WorkingSet::of(slices as f64, n as f64, m as f64, false).forming,
        device,
    )?;
    let band_rows = (GRAM_CHUNK_BYTES / (slices * m * kind.elt_size_in_bytes() as i64).max(1))
        .clamp(1, n.max(1));
    let stored = match rows {
        Rows::Stack(matrices) => Some(matrices.f_to_device(device)?),
        Rows::Bands { .. } => None,
    };
    // A band of the stored rows on the device: a view of the stack, or decoded now.
    let band_at = |start: i64| -> Result<Tensor> {
        let count = band_rows.min(n - start);
        match (&stored, rows) {
            (Some(stored), _) => Ok(stored.f_narrow(1, start, count)?),
            (None, Rows::Bands { band, .. }) => {
                Ok(band(start, count)?.f_unsqueeze(0)?.f_to_device(device)?)
            }
            (None, Rows::Stack(_)) => unreachable!("a stack is on the device"),
        }
    };
    let largest_of = |t: &Tensor| -> Result<f64> {
        Ok(extremes(t)?.map_or(0.0, |(min, max)| max.abs().max(min.abs())))
    };
    let largest = match &stored {
        Some(stored) => largest_of(stored)?,
        None => {
            // The extremes band by band, folded as max (NaN, which extremes carry, kept).
            let mut largest = 0.0f64;
            for start in (0..n.max(1)).step_by(band_rows as usize) {
                let value = largest_of(&band_at(start)?)?;
                largest = if value.is_nan() || largest.is_nan() {
                    f64::NAN
                } else {
                    largest.max(value)
                };
            }
            largest
        }
    };
    let exponent = if largest > 0.0 && largest.is_finite() {
        let exponent = largest.log2().round() as i32;
        if exponent.abs() > SAFE_EXPONENT {
            exponent
        } else {
            0
        }
    } else {
        0
    };
    let mut gram = Tensor::f_zeros([slices, m, m], (kind, device))?;
    let mut row_sums = Vec::new();
    for start in (0..n.max(1)).step_by(band_rows as usize) {
        let band = band_at(start)?;
        let band = if exponent == 0 {
            band
        } else {
            // In f64 first: the scaled values may not exist in the stored type.
            band.f_to_kind(Kind::Double)? * 2f64.powi(-exponent)
        };
        let band = blas_readable(band, kind)?;
        add_gram_lower(&mut gram, &band)?;
        // In the Gram precision: an f64 accumulation of f32 data takes a slow path, 1 s for
        // 100M entries, and an f32 mean's error is negligible beside the variance.
        row_sums.push(band.f_sum_dim_intlist(-1, false, kind)?);
    }
    // A non-finite entry makes its Gram row non-finite: test the small matrix, count on failure.
    if !all_finite(&gram)? {
        return Err(match &stored {
            Some(stored) => non_finite_error(name, &[stored])?,
            None => {
                let bands = (0..n.max(1))
                    .step_by(band_rows as usize)
                    .map(band_at)
                    .collect::<Result<Vec<_>>>()?;
                non_finite_error(name, &bands.iter().collect::<Vec<_>>())?
            }
        });
    }
    let row_sums = Vec::<f64>::try_from(
        Tensor::f_cat(&row_sums, 1)?
            .f_flatten(0, -1)?
            .f_to_kind(Kind::Double)?
            .f_to_device(tch::Device::Cpu)?,
    )?;
    Ok((gram, row_sums, exponent))
}

/// Where a Gram matrix's rows come from: a stack in memory, or one matrix made band by band.
enum Rows<'a> {
    /// A stack [slices, N, M].
    Stack(&'a Tensor),
    /// One N × M matrix, `band(start, count)` giving rows start..start + count as [count, M].
    Bands {
        n: i64,
        m: i64,
        band: &'a dyn Fn(i64, i64) -> Result<Tensor>,
    },
}

impl Rows<'_> {
    /// [slices, N, M].
    fn shape(&self) -> [i64; 3] {
        match self {
            Self::Stack(matrices) => {
                let size = matrices.size();
                [size[0], size[1], size[2]]
            }
            Self::Bands { n, m, .. } => [1, *n, *m],
        }
    }
}

/// The smallest and largest entries of `t` (NaN when it holds one: libtorch's extremes carry
/// NaN), in one pass in memory order; `None` when it is empty.
fn extremes(t: &Tensor) -> Result<Option<(f64, f64)>> {
    if t.numel() == 0 {
        return Ok(None);
    }
    let (min, max) = in_memory_order(t)?.f_aminmax(None, false)?;
    let value = |t: Tensor| -> Result<f64> { Ok(f64::try_from(t.f_to_kind(Kind::Double)?)?) };
    Ok(Some((value(min)?, value(max)?)))
}

/// Whether every entry of `t` is finite: then so are its extremes. One pass and no temporaries,
/// where an elementwise test makes four passes and three temporaries (nearly half the time
/// ResNet50's Gram matrices took to form).
fn all_finite(t: &Tensor) -> Result<bool> {
    Ok(extremes(t)?.is_none_or(|(min, max)| min.is_finite() && max.is_finite()))
}

/// `t` as a view whose dimensions run in decreasing stride, so that a reduction over every entry
/// walks memory in order: libtorch reduces in the view's own order, and the maximum of a
/// transposed 4096 × 9216 layer took 0.41 s that way against 8 ms in memory order.
fn in_memory_order(t: &Tensor) -> Result<Tensor> {
    let strides = t.stride();
    let mut order: Vec<i64> = (0..strides.len() as i64).collect();
    order.sort_by_key(|&dim| std::cmp::Reverse(strides[dim as usize]));
    Ok(t.f_permute(order)?)
}

/// `band` in `kind`, each matrix row- or column-major as BLAS reads it: as it is when it already
/// is, else copied into row-major matrices (a convolution's slices are a view whose rows and
/// columns are both strided, which libtorch would otherwise copy for every product).
pub(super) fn blas_readable(band: Tensor, kind: Kind) -> Result<Tensor> {
    let strides = band.stride();
    if band.kind() == kind && (strides[2] == 1 || strides[1] == 1) {
        return Ok(band);
    }
    let mut converted = Tensor::f_empty(band.size(), (kind, band.device()))?;
    converted.f_copy_(&band)?;
    Ok(converted)
}

/// Bytes of W converted to the Gram precision at once (see [`checked_gram`]): large enough that
/// each band's product runs at full BLAS speed.
pub(super) const GRAM_CHUNK_BYTES: i64 = 32 << 20;

/// Columns per block of the triangular Gram product on the CPU (twice as many on a GPU); a
/// matrix narrower than two blocks takes one full product.
const GRAM_BLOCK: i64 = 256;

/// Adds the lower triangle (diagonal included) of WᵀW to `gram`, for each matrix of the stack;
/// the strict upper triangle is left alone, since the eigensolver reads only the lower one.
///
/// Row block i of G needs only columns 0..(i+1)·b, so with k blocks the products cost
/// N·M²·(1 + 1/k) flops instead of 2·N·M², the saving a BLAS `syrk` would give. On the CPU the
/// blocks are products of their own, shared out over rayon's threads one libtorch thread each:
/// a large layer's Gram product then uses every core even when it is the only layer left in
/// flight. Each block is one product whatever thread computes it, so the sums do not depend
/// on the thread count.
pub(super) fn add_gram_lower(gram: &mut Tensor, w: &Tensor) -> Result<()> {
    use rayon::prelude::*;
    let m = w.size()[2];
    let on_cpu = w.device() == tch::Device::Cpu;
    // A GPU runs one wide product faster than many narrow ones.
    let block = if on_cpu { GRAM_BLOCK } else { 2 * GRAM_BLOCK };
    let blocks: Vec<(i64, i64, i64)> = if m < 2 * block {
        vec![(0, m, m)]
    } else {
        (0..m)
            .step_by(block as usize)
            .map(|start| (start, block.min(m - start), (start + block).min(m)))
            .collect()
    };
    // The widest blocks first, so that the last ones to finish are short.
    let products = blocks
        .into_iter()
        .rev()
        .map(|(start, width, end)| {
            Ok((
                gram.f_narrow(1, start, width)?.f_narrow(2, 0, end)?,
                w.f_narrow(2, start, width)?.f_transpose(1, 2)?,
                w.f_narrow(2, 0, end)?,
            ))
        })
        .collect::<Result<Vec<(Tensor, Tensor, Tensor)>>>()?;
    let add = |(mut block, rows, columns): (Tensor, Tensor, Tensor)| -> Result<()> {
        _ = block.f_baddbmm_(&rows, &columns)?;
        Ok(())
    };
    if on_cpu && products.len() > 1 {
        products.into_par_iter().try_for_each(|product| {
            // The thread's own count comes back: `zoo` sets one per model on its threads.
            let threads = tch::get_num_threads();
            tch::set_num_threads(1);
            let added = add(product);
            tch::set_num_threads(threads);
            added
        })
    } else {
        products.into_iter().try_for_each(add)
    }
}

/// The error for a Gram matrix (or spectrum) that is not finite: NaN/Inf entries among the
/// `tensors` it was formed from, or else an overflow of WᵀW.
pub(super) fn non_finite_error(name: &str, tensors: &[&Tensor]) -> Result<Error> {
    let mut count = 0;
    for tensor in tensors {
        count += i64::try_from(tensor.f_isfinite()?.f_logical_not()?.f_sum(Kind::Int64)?)?;
    }
    Ok(if count > 0 {
        Error::NonFinite {
            name: name.to_string(),
            count,
        }
    } else {
        Error::Overflow {
            name: name.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectrum::spectrum;

    /// The blocked lower triangle, summed over two bands and spread over threads, is WᵀW's
    /// (blocks of 256, 256 and 88 columns, two matrices in the stack).
    #[test]
    fn blocked_gram_products_sum_to_the_lower_triangle() {
        tch::manual_seed(3);
        let w = Tensor::randn([2, 700, 600], (Kind::Double, tch::Device::Cpu));
        let mut gram = Tensor::zeros([2, 600, 600], (Kind::Double, tch::Device::Cpu));
        for (start, rows) in [(0, 300), (300, 400)] {
            add_gram_lower(&mut gram, &w.narrow(1, start, rows)).unwrap();
        }
        let full = w.transpose(1, 2).matmul(&w);
        let lower = |t: &Tensor| t.tril(0);
        let error = f64::try_from((lower(&gram) - lower(&full)).abs().max()).unwrap();
        let scale = f64::try_from(full.abs().max()).unwrap();
        assert!(error <= 1e-13 * scale, "{error} against {scale}");
    }

    /// A convolution's slice view (both strides > 1) is copied into row-major matrices of the
    /// Gram precision; a band already readable by BLAS is used as it is, not copied.
    #[test]
    fn bands_are_copied_only_when_blas_cannot_read_them() {
        let kernel = Tensor::randn([8, 6, 3, 3], (Kind::Float, tch::Device::Cpu));
        let slices = kernel.permute([2, 3, 0, 1]).reshape([9, 8, 6]);
        assert!(slices.stride()[1] > 1 && slices.stride()[2] > 1);
        let copied = blas_readable(slices.shallow_clone(), Kind::Double).unwrap();
        assert_eq!(copied.stride(), vec![48, 6, 1]);
        assert!(copied.to_kind(Kind::Float).equal(&slices));
        let ready = Tensor::randn([2, 5, 4], (Kind::Double, tch::Device::Cpu));
        let transposed = ready.transpose(1, 2);
        for band in [ready.narrow(1, 1, 3), transposed] {
            let pointer = band.data_ptr();
            assert_eq!(
                blas_readable(band, Kind::Double).unwrap().data_ptr(),
                pointer
            );
        }
    }

    /// A transposed layer and a convolution's slice stack are seen in memory order, contiguous
    /// views of their own storage with the same entries.
    #[test]
    fn full_reductions_walk_memory_in_order() {
        let layer = Tensor::randn([7, 5], (Kind::Float, tch::Device::Cpu));
        let kernel = Tensor::randn([8, 6, 3, 3], (Kind::Float, tch::Device::Cpu));
        for view in [
            layer.transpose(0, 1).unsqueeze(0),
            kernel.permute([2, 3, 0, 1]).reshape([9, 8, 6]),
        ] {
            let ordered = in_memory_order(&view).unwrap();
            assert!(ordered.is_contiguous(), "{:?}", ordered.stride());
            assert_eq!(ordered.data_ptr(), view.data_ptr());
            let sorted = |t: &Tensor| t.reshape([-1]).sort(0, false).0;
            assert!(sorted(&ordered).equal(&sorted(&view)));
        }
    }

    #[test]
    fn finiteness_is_decided_by_the_extremes_nan_included() {
        assert!(all_finite(&Tensor::from_slice(&[3e38f32, -3e38, 3e38])).unwrap());
        assert!(all_finite(&Tensor::from_slice(&[1f64, -2.0])).unwrap());
        assert!(all_finite(&Tensor::from_slice::<f64>(&[])).unwrap());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            // NaN between ordinary entries, where a comparison-based extreme would skip it.
            assert!(!all_finite(&Tensor::from_slice(&[1f32, bad, -3e38])).unwrap());
            assert!(!all_finite(&Tensor::from_slice(&[-1f64, 2.0, bad as f64, 0.5])).unwrap());
        }
    }

    /// A bfloat16 stack of several Gram bands whose spectrum is known exactly: row i of slice s
    /// is (s + 1)(j + 1)·e_j with j = i mod M, so WᵀW = diag(count_j (s + 1)²(j + 1)²), every
    /// entry an integer that f64 holds exactly.
    #[test]
    fn gram_summed_over_bands_is_exact() {
        let (slices, n, m) = (2_usize, 70_001_usize, 64_usize);
        let mut entries = vec![0.0; slices * n * m];
        for s in 0..slices {
            for i in 0..n {
                entries[(s * n + i) * m + i % m] = ((s + 1) * (i % m + 1)) as f64;
            }
        }
        let matrices = Tensor::from_slice(&entries)
            .reshape([slices as i64, n as i64, m as i64])
            .to_kind(Kind::BFloat16);
        let bands = GRAM_CHUNK_BYTES / (slices * m * 8) as i64;
        assert!((n as i64) > 2 * bands, "the test must span several bands");
        let result = spectrum("bands", &matrices, tch::Device::Cpu, Precision::F64).unwrap();
        for (s, values) in result.by_matrix.iter().enumerate() {
            let mut expected: Vec<f64> = (0..m)
                .map(|j| {
                    let count = (n - 1 - j) / m + 1;
                    (count * (s + 1).pow(2) * (j + 1).pow(2)) as f64
                })
                .collect();
            expected.sort_by(f64::total_cmp);
            assert_eq!(values, &expected);
        }
        let count = (slices * n * m) as f64;
        let mean = entries.iter().sum::<f64>() / count;
        let variance = entries.iter().map(|v| v * v).sum::<f64>() / count - mean * mean;
        assert!((result.entry_variance - variance).abs() <= 1e-12 * variance);
    }
}
