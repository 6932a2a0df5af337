//! The largest eigenvalues of a [`SymmetricOperator`] by Lanczos, each with a residual bound,
//! repeated eigenvalues found by restarts on the deflated operator.
use serde::Serialize;
use tch::{Kind, Tensor};

use super::{
    check_basis_memory, counting_products, gaussian_vector, lanczos, precision, vector_kind,
    Reorthogonalisation, RitzValues, SymmetricOperator, Tridiagonal,
};
use crate::error::Result;
use crate::random::SeededNormal;

/// One of the largest eigenvalues, with its Lanczos residual.
#[derive(Debug, Clone, Serialize)]
pub struct Eigenpair {
    /// λ.
    pub eigenvalue: f64,
    /// ‖Hy − λy‖ for its unit Ritz vector y: |λ − λ_true| is at most this.
    pub residual: f64,
    /// y (only when asked for; for a Hessian flattened in the order of its parameters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eigenvector: Option<Vec<f64>>,
}

/// What [`top_eigenpairs`] computes.
#[derive(Debug, Clone, Copy)]
pub struct TopOptions {
    /// How many of the largest eigenvalues.
    pub k: usize,
    /// A Ritz value θ has converged when its residual ≤ this · |θ| (or is at the products'
    /// precision).
    pub tolerance: f64,
    /// Lanczos steps at most per run.
    pub max_iterations: usize,
    /// Keep the eigenvectors.
    pub eigenvectors: bool,
    /// How each run keeps its vectors orthogonal.
    pub reorthogonalisation: Reorthogonalisation,
}

/// The largest eigenvalues found, descending, with the Lanczos steps taken and whether every
/// one converged.
#[derive(Debug, Clone)]
pub struct TopEigenpairs {
    /// The eigenpairs, descending.
    pub pairs: Vec<Eigenpair>,
    /// Lanczos steps over every run (each one product).
    pub steps: usize,
    /// Whether every residual met the tolerance.
    pub converged: bool,
}

/// An eigenvalue found, with its residual bound and unit Ritz vector (on the device).
struct Found {
    value: f64,
    residual: f64,
    vector: Tensor,
}

/// The `top_k` largest eigenvalues, descending, with the Lanczos steps taken and whether all
/// converged.
///
/// Lanczos from one start vector sees one direction of each eigenspace, so a repeated
/// eigenvalue would be found once (a loss Hessian's last-layer block under a squared error over
/// C outputs has every eigenvalue C times). So runs repeat, each from a Gaussian start on the
/// operator deflated by the eigenvectors found so far, (I − YYᵀ)A(I − YYᵀ) (the found vectors
/// are rows its reorthogonalisation projects out: no extra pass per product), until a run finds
/// nothing above the k-th eigenvalue held, k + 1 runs at most: the second run is the check, and
/// costs little when nothing is repeated (it stops once its largest Ritz value has converged
/// below the k-th). Within a run,
/// a Ritz value θ has converged when its residual bound (see `top_residuals`) ≤
/// tolerance·|θ|, or has reached the products' precision.
pub fn top_eigenpairs(
    operator: &mut impl SymmetricOperator,
    options: TopOptions,
    random: &mut SeededNormal,
    on_product: &mut impl FnMut(usize),
) -> Result<TopEigenpairs> {
    let dimension = operator.dimension();
    let k = options.k.min(dimension);
    let precision = self::precision(operator.kind());
    let storage = vector_kind(operator.kind());
    let tolerance = options.tolerance;
    // At the products' precision a residual can fall no further: converged there too.
    let converged =
        |value: f64, residual: f64, floor: f64| residual <= (tolerance * value.abs()).max(floor);
    let mut found: Vec<Found> = Vec::new();
    let mut steps_taken = 0;
    let mut all_converged = true;
    // Each run that continues adds a value above the k-th held, so k + 1 runs find k copies of
    // one eigenvalue and check; more would only chase unconverged values of a run cut short.
    for _ in 0..=k {
        let free = dimension - found.len();
        let steps = options.max_iterations.min(free);
        if steps == 0 {
            break;
        }
        check_basis_memory(operator, steps + found.len())?;
        // The eigenvectors found, deflated out of this run by Lanczos's reorthogonalisation.
        let locked = if found.is_empty() {
            None
        } else {
            let vectors: Vec<&Tensor> = found.iter().map(|pair| &pair.vector).collect();
            Some(Tensor::f_stack(&vectors, 0)?.f_to_kind(storage)?)
        };
        let start = gaussian_vector(operator, random)?;
        // The k-th eigenvalue held, once k are: a run that cannot beat it may stop.
        let kth = (found.len() >= k).then(|| found[k - 1].value);
        let wanted = k.min(free);
        let stop = |t: &Tridiagonal, beta: f64| -> Result<bool> {
            let ritz = t.eigen()?;
            let floor = precision * largest_magnitude(&ritz);
            let top = top_residuals(&ritz, beta, wanted, floor);
            if let (Some(kth), Some(&(value, residual))) = (kth, top.first()) {
                if converged(value, residual, floor) && value <= kth + residual {
                    return Ok(true);
                }
            }
            Ok(top.len() == wanted && top.iter().all(|&(v, r)| converged(v, r, floor)))
        };
        let run = lanczos(
            &mut counting_products(operator, on_product),
            &start,
            steps,
            storage,
            options.reorthogonalisation,
            locked.as_ref(),
            stop,
        )?;
        steps_taken += run.tridiagonal.len();
        let ritz = run.tridiagonal.eigen()?;
        let count = ritz.values.len();
        let floor = precision * largest_magnitude(&ritz);
        let mut beating = Vec::new();
        for (rank, (value, residual)) in top_residuals(&ritz, run.last_beta, wanted, floor)
            .into_iter()
            .enumerate()
        {
            let beats = match found.get(k.saturating_sub(1)) {
                Some(kth) if found.len() >= k => value > kth.value + residual,
                _ => true,
            };
            if !beats {
                break;
            }
            all_converged &= converged(value, residual, floor);
            beating.push((rank, value, residual));
        }
        let added = !beating.is_empty();
        if added {
            // Every new Ritz vector in one pass over the basis: [new, steps] · [steps, N].
            let coefficients: Vec<f64> = beating
                .iter()
                .flat_map(|&(rank, _, _)| ritz.vectors[count - 1 - rank].iter().copied())
                .collect();
            let vectors = Tensor::from_slice(&coefficients)
                .f_reshape([beating.len() as i64, count as i64])?
                .f_to_device(run.basis.device())?
                .f_to_kind(run.basis.kind())?
                .f_mm(&run.basis)?;
            for (row, &(_, value, residual)) in beating.iter().enumerate() {
                found.push(Found {
                    value,
                    residual,
                    vector: vectors.f_get(row as i64)?,
                });
            }
        }
        found.sort_by(|a, b| b.value.total_cmp(&a.value));
        found.truncate(k);
        if !added || found.len() >= dimension {
            break;
        }
    }
    let pairs = found
        .into_iter()
        .map(|pair| {
            let eigenvector = if options.eigenvectors {
                Some(Vec::<f64>::try_from(
                    pair.vector
                        .f_to_device(tch::Device::Cpu)?
                        .f_to_kind(Kind::Double)?,
                )?)
            } else {
                None
            };
            Ok(Eigenpair {
                eigenvalue: pair.value,
                residual: pair.residual,
                eigenvector,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TopEigenpairs {
        pairs,
        steps: steps_taken,
        converged: all_converged,
    })
}

/// The `k` largest Ritz values, descending, each with its residual bound: β·|sₘ| (sₘ the last
/// component of its T-eigenvector), which holds for the products as computed, and at least
/// `floor`: the products' precision times the largest |θ| (float32 products: 1.2e-7 of it),
/// since the products themselves are only that exact.
fn top_residuals(ritz: &RitzValues, beta: f64, k: usize, floor: f64) -> Vec<(f64, f64)> {
    let count = ritz.values.len();
    (0..k.min(count))
        .map(|rank| {
            let index = count - 1 - rank;
            let last = ritz.vectors[index].last().copied().unwrap_or(0.0);
            (ritz.values[index], (beta * last.abs()).max(floor))
        })
        .collect()
}

/// The largest |θ| of a run: the scale of the operator it has seen.
fn largest_magnitude(ritz: &RitzValues) -> f64 {
    ritz.values.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}
