//! Spectra of variants of a stack: its entries shuffled, its symmetric parts.
use tch::{Kind, Tensor};

use super::gram::{eigensolve_on_one_thread, non_finite_error};
use super::memory::{check_memory, full_copy_working_set_bytes};
use crate::error::Result;

/// The stack with the entries of each matrix shuffled (a uniform random permutation per
/// matrix, as WeightWatcher's `randomize` does), on the CPU in the stored dtype.
///
/// The permutations come from a generator of their own seeded with `seed` (Fisher-Yates), so
/// the result depends on the seed alone and libtorch's global generator, which a training loop
/// under the monitor relies on, is left untouched.
pub fn shuffled(matrices: &Tensor, seed: u64) -> Result<Tensor> {
    let _no_grad = tch::no_grad_guard();
    let mut random = crate::random::SeededNormal::new(seed);
    let size = matrices.size();
    let flat = matrices.f_reshape([size[0], -1])?;
    let entries = flat.size()[1];
    let rows = (0..size[0])
        .map(|i| {
            let mut permutation: Vec<i64> = (0..entries).collect();
            for last in (1..permutation.len()).rev() {
                let pick = ((random.uniform() * (last + 1) as f64) as usize).min(last);
                permutation.swap(last, pick);
            }
            flat.f_get(i)?
                .f_index_select(0, &Tensor::from_slice(&permutation))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Tensor::f_stack(&rows, 0)?.f_reshape(&size)?)
}

/// Eigenvalues of the symmetric parts (W + Wᵀ)/√2 of a stack of square matrices, pooled and
/// ascending, in f64: for i.i.d. entries of variance σ² they follow the semicircle of radius
/// 2σ√N. `None` when the matrices are not square.
pub fn symmetric_part_eigenvalues(
    name: &str,
    matrices: &Tensor,
    device: tch::Device,
) -> Result<Option<Vec<f64>>> {
    let size = matrices.size();
    if size.len() != 3 || size[1] != size[2] {
        return Ok(None);
    }
    let _no_grad = tch::no_grad_guard();
    check_memory(name, full_copy_working_set_bytes(matrices), device)?;
    let w = matrices.f_to_device(device)?.f_to_kind(Kind::Double)?;
    let symmetric = (&w + w.f_transpose(1, 2)?) / std::f64::consts::SQRT_2;
    let values = eigensolve_on_one_thread(&symmetric, || Ok(symmetric.f_linalg_eigvalsh("L")?))?;
    let mut host = Vec::<f64>::try_from(values.f_flatten(0, -1)?.f_to_device(tch::Device::Cpu)?)?;
    if host.iter().any(|v| !v.is_finite()) {
        return Err(non_finite_error(name, &[matrices])?);
    }
    host.sort_by(f64::total_cmp);
    Ok(Some(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_seeded_permutations_that_leave_libtorch_alone() {
        let matrices =
            Tensor::arange(2 * 6 * 4, (Kind::Double, tch::Device::Cpu)).reshape([2, 6, 4]);
        let first = shuffled(&matrices, 7).unwrap();
        assert!(first.equal(&shuffled(&matrices, 7).unwrap()));
        assert!(!first.equal(&shuffled(&matrices, 8).unwrap()));
        for i in 0..2 {
            let sorted = first.get(i).reshape([-1]).sort(0, false).0;
            assert!(sorted.equal(&matrices.get(i).reshape([-1])));
        }
        tch::manual_seed(11);
        let expected = Tensor::rand([4], (Kind::Double, tch::Device::Cpu));
        tch::manual_seed(11);
        let _ = shuffled(&matrices, 3).unwrap();
        let drawn = Tensor::rand([4], (Kind::Double, tch::Device::Cpu));
        assert!(drawn.equal(&expected), "the global generator moved");
    }
}
