//! Lanczos iteration with full reorthogonalisation on a symmetric operator known only by its
//! products A·v (Golub & Van Loan 2013, §10.1), and the quantities read from its tridiagonal
//! matrix T: Ritz values with their residual bounds, and Gauss quadrature nodes and weights for
//! stochastic Lanczos quadrature (Golub & Meurant 2010; Ubaru, Chen & Saad 2017); and the
//! largest eigenvalues of any [`SymmetricOperator`] with repeated ones found by deflation.
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::theory::random::SeededNormal;

/// A symmetric linear operator known by its products A·v: a loss Hessian, JᵀJ or JJᵀ of a
/// Jacobian. Vectors are flat float64 tensors on [`Self::device`].
pub trait SymmetricOperator {
    /// Its order.
    fn dimension(&self) -> usize;
    /// Where its vectors live.
    fn device(&self) -> Device;
    /// The dtype its products are computed in (their precision bounds the residuals).
    fn kind(&self) -> Kind;
    /// A·v.
    fn apply(&mut self, v: &Tensor) -> Result<Tensor>;
    /// Products computed so far.
    fn products(&self) -> usize;
}

/// The tridiagonal matrix of a Lanczos run: diagonal α and off-diagonal β (one shorter).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tridiagonal {
    /// αⱼ = qⱼᵀ A qⱼ.
    pub alpha: Vec<f64>,
    /// βⱼ = ‖rⱼ‖, the coupling of qⱼ and qⱼ₊₁.
    pub beta: Vec<f64>,
}

/// Eigenvalues of T (ascending) and, for each, its eigenvector's first and last components.
#[derive(Debug, Clone)]
pub struct RitzValues {
    /// θᵢ, ascending.
    pub values: Vec<f64>,
    /// The eigenvectors of T, one per value (length = T's order).
    pub vectors: Vec<Vec<f64>>,
}

impl Tridiagonal {
    /// T's order: the number of Lanczos steps taken.
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    /// Whether no step was taken.
    pub fn is_empty(&self) -> bool {
        self.alpha.is_empty()
    }

    /// Its eigen-decomposition (float64 on the CPU, one thread, so the same on every machine).
    pub fn eigen(&self) -> Result<RitzValues> {
        let order = self.len() as i64;
        let mut dense = vec![0.0; self.len() * self.len()];
        for (i, &a) in self.alpha.iter().enumerate() {
            dense[i * self.len() + i] = a;
        }
        for (i, &b) in self
            .beta
            .iter()
            .enumerate()
            .take(self.len().saturating_sub(1))
        {
            dense[i * self.len() + i + 1] = b;
            dense[(i + 1) * self.len() + i] = b;
        }
        let matrix = Tensor::from_slice(&dense).f_reshape([order, order])?;
        let (values, vectors) =
            crate::spectrum::eigensolve_on_one_thread(&matrix, || Ok(matrix.f_linalg_eigh("L")?))?;
        let values = Vec::<f64>::try_from(values.f_to_kind(Kind::Double)?)?;
        // Columns are eigenvectors: rows of the transpose.
        let vectors = Vec::<Vec<f64>>::try_from(vectors.f_transpose(0, 1)?.f_contiguous()?)?;
        Ok(RitzValues { values, vectors })
    }
}

/// A finished run: T, the orthonormal basis q₀…q_{m−1} (the rows of one matrix, on the
/// operator's device) and the last β (zero when the Krylov space became invariant: T is then
/// exact).
pub struct LanczosRun {
    /// The tridiagonal matrix.
    pub tridiagonal: Tridiagonal,
    /// The Lanczos vectors, one per row.
    pub basis: Tensor,
    /// ‖r_m‖ after the last step.
    pub last_beta: f64,
}

/// Relative size of ‖r‖ below which the Krylov space counts as invariant.
const BREAKDOWN: f64 = 1e-12;

/// Runs at most `steps` Lanczos steps of `apply` from `start` (any nonzero vector), each new
/// vector orthogonalised against all earlier ones, so the Ritz values carry no ghost copies.
/// After each step `stop(T, β)` may end it.
///
/// The basis is one [steps, N] matrix in `storage` (float64, or float32 for an operator whose
/// products are float32: its orthogonality then matches their precision at half the memory
/// traffic), and each reorthogonalisation two matrix-vector products against it (classical
/// Gram-Schmidt), repeated once when it removed most of the vector (the Daniel-Gragg-Kaufman-
/// Stewart criterion: "twice is enough"). On ResNet18's 11.7 M parameters the loop of one dot
/// product and one update per earlier vector cost 6× the Hessian-vector product itself.
pub fn lanczos(
    apply: &mut impl FnMut(&Tensor) -> Result<Tensor>,
    start: &Tensor,
    steps: usize,
    storage: Kind,
    mut stop: impl FnMut(&Tridiagonal, f64) -> Result<bool>,
) -> Result<LanczosRun> {
    let mut tridiagonal = Tridiagonal::default();
    let size = start.numel() as i64;
    let basis = Tensor::f_empty([steps.max(1) as i64, size], (storage, start.device()))?;
    let mut q = start / norm(start)?;
    let mut previous: Option<Tensor> = None;
    let mut scale: f64 = 0.0;
    let mut last_beta = 0.0;
    let mut taken = 0;
    for step in 0..steps {
        basis.f_get(step as i64)?.f_copy_(&q)?;
        taken = step + 1;
        let mut r = apply(&q)?;
        let alpha = dot(&q, &r)?;
        r = r.f_sub(&(&q * alpha))?;
        if let (Some(previous), Some(&beta)) = (&previous, tridiagonal.beta.last()) {
            r = r.f_sub(&(previous * beta))?;
        }
        let held = basis.f_narrow(0, 0, taken as i64)?;
        for _ in 0..2 {
            let before = norm(&r)?;
            let overlaps = held.f_mv(&r.f_to_kind(storage)?)?;
            r = r.f_sub(
                &held
                    .f_transpose(0, 1)?
                    .f_mv(&overlaps)?
                    .f_to_kind(Kind::Double)?,
            )?;
            if norm(&r)? > 0.7 * before {
                break;
            }
        }
        tridiagonal.alpha.push(alpha);
        let beta = norm(&r)?;
        scale = scale.max(alpha.abs()).max(beta);
        last_beta = beta;
        if beta <= BREAKDOWN * scale || step + 1 == steps || stop(&tridiagonal, beta)? {
            break;
        }
        tridiagonal.beta.push(beta);
        previous = Some(q);
        q = r / beta;
    }
    Ok(LanczosRun {
        tridiagonal,
        basis: basis.f_narrow(0, 0, taken as i64)?,
        last_beta,
    })
}

/// Where a Lanczos basis of an operator whose products are computed in `kind` is kept:
/// float32 for float32 (or coarser) products, whose precision it then matches, else float64.
pub fn basis_storage(kind: Kind) -> Kind {
    match kind {
        Kind::Double => Kind::Double,
        _ => Kind::Float,
    }
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(f64::try_from(a.f_dot(b)?.f_to_kind(Kind::Double)?)?)
}

fn norm(a: &Tensor) -> Result<f64> {
    Ok(dot(a, a)?.sqrt())
}

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

/// A seeded standard normal vector of the operator's order on its device.
pub fn gaussian_vector(
    operator: &impl SymmetricOperator,
    random: &mut SeededNormal,
) -> Result<Tensor> {
    let values = random.normals(operator.dimension());
    Ok(Tensor::from_slice(&values).f_to_device(operator.device())?)
}

/// A seeded vector of random signs (±1, each with probability ½) of the operator's order, 64
/// signs from each draw of 64 random bits.
pub fn rademacher_vector(
    operator: &impl SymmetricOperator,
    random: &mut SeededNormal,
) -> Result<Tensor> {
    let mut signs = vec![1.0; operator.dimension()];
    for block in signs.chunks_mut(64) {
        let bits = random.bits();
        for (position, sign) in block.iter_mut().enumerate() {
            if bits >> position & 1 == 1 {
                *sign = -1.0;
            }
        }
    }
    Ok(Tensor::from_slice(&signs).f_to_device(operator.device())?)
}

/// Refuses `steps` Lanczos vectors of the operator's order that would not fit in the host's
/// memory (they are kept for reorthogonalisation).
pub fn check_basis_memory(operator: &impl SymmetricOperator, steps: usize) -> Result<()> {
    crate::environment::ensure_host_memory(
        || format!("{steps} Lanczos vectors of order {}", operator.dimension()),
        operator.device(),
        basis_storage(operator.kind()).elt_size_in_bytes() as f64
            * steps as f64
            * operator.dimension() as f64,
    )
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
/// operator deflated by the eigenvectors found so far, (I − YYᵀ)A(I − YYᵀ), until a run finds
/// nothing above the k-th eigenvalue held, k + 1 runs at most: the second run is the check, and
/// costs little when nothing is repeated (it stops once its largest Ritz value has converged
/// below the k-th). Within a run,
/// a Ritz value θ has converged when its residual bound (see [`top_residuals`]) ≤
/// tolerance·|θ|, or has reached the products' precision.
pub fn top_eigenpairs(
    operator: &mut impl SymmetricOperator,
    options: TopOptions,
    random: &mut SeededNormal,
    on_product: &mut impl FnMut(usize),
) -> Result<TopEigenpairs> {
    let dimension = operator.dimension();
    let k = options.k.min(dimension);
    let precision = product_precision(operator.kind());
    let storage = basis_storage(operator.kind());
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
        let deflate = |v: Tensor| -> Result<Tensor> {
            let mut v = v;
            for _ in 0..2 {
                for y in &found {
                    let overlap = f64::try_from(y.vector.f_dot(&v)?)?;
                    v = v.f_sub(&(&y.vector * overlap))?;
                }
            }
            Ok(v)
        };
        let start = deflate(gaussian_vector(operator, random)?)?;
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
        let mut apply = |v: &Tensor| -> Result<Tensor> {
            let product = deflate(operator.apply(&deflate(v.shallow_clone())?)?)?;
            on_product(operator.products());
            Ok(product)
        };
        let run = lanczos(&mut apply, &start, steps, storage, stop)?;
        steps_taken += run.tridiagonal.len();
        let ritz = run.tridiagonal.eigen()?;
        let count = ritz.values.len();
        let mut added = false;
        let floor = precision * largest_magnitude(&ritz);
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
            let coefficients = Tensor::from_slice(&ritz.vectors[count - 1 - rank])
                .f_to_device(run.basis.device())?
                .f_to_kind(run.basis.kind())?;
            let vector = run
                .basis
                .f_transpose(0, 1)?
                .f_mv(&coefficients)?
                .f_to_kind(Kind::Double)?;
            found.push(Found {
                value,
                residual,
                vector,
            });
            added = true;
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
                    pair.vector.f_to_device(tch::Device::Cpu)?,
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

/// The relative precision of products computed in `kind`: its unit round-off.
fn product_precision(kind: Kind) -> f64 {
    match kind {
        Kind::Double => f64::EPSILON,
        Kind::Half => 9.8e-4,
        Kind::BFloat16 => 7.8e-3,
        _ => f32::EPSILON as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On diag(1, 2, …, 50) Lanczos from a dense start finds the extreme eigenvalues to
    /// round-off within the full space, and breaks down (β = 0) once it is spanned.
    #[test]
    fn recovers_a_known_spectrum_and_stops_when_the_space_is_invariant() {
        let diagonal = Tensor::arange_start(1, 51, (Kind::Double, tch::Device::Cpu));
        let mut products = 0;
        let mut apply = |v: &Tensor| -> Result<Tensor> {
            products += 1;
            Ok(v * &diagonal)
        };
        let start = Tensor::ones([50], (Kind::Double, tch::Device::Cpu));
        let run = lanczos(&mut apply, &start, 80, Kind::Double, |_, _| Ok(false)).unwrap();
        assert_eq!(run.tridiagonal.len(), 50);
        assert!(run.last_beta < 1e-9, "β = {}", run.last_beta);
        let ritz = run.tridiagonal.eigen().unwrap();
        for (i, value) in ritz.values.iter().enumerate() {
            assert!((value - (i + 1) as f64).abs() < 1e-9, "{i}: {value}");
        }
        assert_eq!(products, 50);
    }
}
