//! Lanczos iteration with full reorthogonalisation on a symmetric operator known only by its
//! products A·v (Golub & Van Loan 2013, §10.1), and what is read from its tridiagonal matrix T:
//! the largest eigenvalues with residual bounds, repeated ones found by deflation (`top`),
//! and the spectral density by stochastic Lanczos quadrature (`density`).
mod density;
mod top;

use std::ops::Range;

use rayon::prelude::*;

use tch::{Device, Kind, Tensor};

pub use density::{spectral_density, Density, DensityOptions};
pub use top::{top_eigenpairs, Eigenpair, TopEigenpairs, TopOptions};

use crate::error::Result;
use crate::option_names::option_names;
use crate::random::SeededNormal;

/// How a Lanczos run keeps its vectors orthogonal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reorthogonalisation {
    /// Every new vector against every earlier one: two passes over the basis per step.
    Full,
    /// Simon's (1984) partial reorthogonalisation: the loss of orthogonality ω_{jk} ≈ q_jᵀq_k is
    /// estimated by its recurrence from T's entries (no pass over the basis), and the newest
    /// vector, with the one before it, is orthogonalised only when some |ω| exceeds √ε (ε the
    /// vectors' round-off, or the operator's own error when larger), and then only against
    /// the runs of rows with |ω| > ε^¾. The vectors stay semi-orthogonal, |q_jᵀq_k| ≲ √ε, which keeps T the
    /// projection of the operator onto their span to O(ε‖A‖) (Simon 1984, Theorem 4): the Ritz
    /// values are as accurate as with full reorthogonalisation, at a fraction of its passes.
    #[default]
    Partial,
}

option_names!(Reorthogonalisation, "reorthogonalisation", { Full => "full", Partial => "partial" });

/// A symmetric linear operator known by its products A·v: a loss Hessian, JᵀJ or JJᵀ of a
/// Jacobian. Vectors are flat tensors of [`vector_kind`]`(self.kind())` on [`Self::device`].
pub trait SymmetricOperator {
    /// Its order.
    fn dimension(&self) -> usize;
    /// Where its vectors live.
    fn device(&self) -> Device;
    /// The dtype its products are computed in (their precision bounds the residuals).
    fn kind(&self) -> Kind;
    /// Writes A·v into `out` (v's shape and dtype, on the device): callers keep their
    /// buffers, so a product allocates no vector of the operator's order.
    fn apply(&mut self, v: &Tensor, out: &mut Tensor) -> Result<()>;
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
    /// Steps whose new vector was orthogonalised against the basis (all of it under full
    /// reorthogonalisation, the rows it drifted towards under partial).
    pub orthogonalisations: usize,
    /// Basis rows read by those orthogonalisations, each pass counted: their cost in vectors.
    pub basis_rows_read: usize,
}

/// `operator`'s products as [`lanczos`] takes them, each reported to `on_product` with the
/// count so far.
fn counting_products<'a>(
    operator: &'a mut impl SymmetricOperator,
    on_product: &'a mut impl FnMut(usize),
) -> impl FnMut(&Tensor, &mut Tensor) -> Result<()> + 'a {
    move |v, out| {
        operator.apply(v, out)?;
        on_product(operator.products());
        Ok(())
    }
}

/// Relative size of ‖r‖ below which the Krylov space counts as invariant.
const BREAKDOWN: f64 = 1e-12;

/// Runs at most `steps` Lanczos steps of `apply` (which writes A·v into its second argument)
/// from `start` (any nonzero vector), keeping the vectors orthogonal as `reorthogonalisation`
/// says, so the Ritz values carry no ghost copies. The rows of `locked` (orthonormal vectors in
/// `storage`, or none) are projected out of the start and of every new vector: the run sees the
/// operator deflated by them, (I − LLᵀ)A(I − LLᵀ). After each step `stop(T, β)` may end it.
///
/// The vectors and the basis, one [rows, N] matrix, are in `storage` ([`vector_kind`]), and
/// each orthogonalisation two matrix-vector products against the basis (classical
/// Gram-Schmidt), repeated once when it removed most of the vector (the Daniel-Gragg-Kaufman-
/// Stewart criterion: "twice is enough"). qⱼ and qⱼ₋₁ are the basis's own rows and r one
/// buffer updated in place: on ResNet18's 11.7 M parameters every fresh 47 MB vector costs
/// tens of milliseconds in page faults alone, and every copy a pass over memory.
pub fn lanczos(
    apply: &mut impl FnMut(&Tensor, &mut Tensor) -> Result<()>,
    start: &Tensor,
    steps: usize,
    storage: Kind,
    reorthogonalisation: Reorthogonalisation,
    locked: Option<&Tensor>,
    mut stop: impl FnMut(&Tridiagonal, f64) -> Result<bool>,
) -> Result<LanczosRun> {
    let mut tridiagonal = Tridiagonal::default();
    let size = start.numel() as i64;
    let first = locked.map_or(0, |rows| rows.size()[0]);
    let basis = Tensor::f_empty(
        [first + steps.max(1) as i64, size],
        (storage, start.device()),
    )?;
    if let Some(rows) = locked {
        basis.f_narrow(0, 0, first)?.f_copy_(rows)?;
    }
    let mut projector = Projector::new(size, storage, start.device())?;
    // qⱼ is the basis's row j itself (a view), written once per step by the division of r.
    let mut q = basis.f_get(first)?;
    q.f_copy_(start)?;
    if first > 0 {
        projector.orthogonalise(&mut q, &basis.f_narrow(0, 0, first)?)?;
    }
    let _ = q.f_div_scalar_(norm(&q)?)?;
    let mut r = q.f_empty_like()?;
    let mut estimate = OrthogonalityEstimate::new(precision(storage));
    let mut scale: f64 = 0.0;
    let mut last_beta = 0.0;
    let mut taken = 0;
    let mut orthogonalisations = 0;
    for step in 0..steps {
        taken = step + 1;
        apply(&q, &mut r)?;
        // qⱼ₋₁ and qⱼ are adjacent rows of the basis: their overlaps with Aqⱼ in one pass
        // over r, and r − βⱼ₋₁qⱼ₋₁ − αⱼqⱼ in one more.
        let recent = basis.f_narrow(
            0,
            first + step.saturating_sub(1) as i64,
            step.min(1) as i64 + 1,
        )?;
        let overlaps = Vec::<f64>::try_from(recent.f_mv(&r)?.f_to_kind(Kind::Double)?)?;
        let alpha = overlaps[overlaps.len() - 1];
        let mut coefficients = vec![-alpha];
        if let Some(&beta) = tridiagonal.beta.last() {
            // qⱼ₋₁ᵀAqⱼ = βⱼ₋₁ for a symmetric A computed exactly: what differs is the
            // operator's own error (float32 inside a float64 model, say).
            estimate.observe((overlaps[0] - beta).abs());
            coefficients.insert(0, -beta);
        }
        let coefficients = Tensor::f_from_slice(&coefficients)?
            .f_to(q.device())?
            .f_to_kind(storage)?;
        let _ = r.f_addmv_(&recent.f_transpose(0, 1)?, &coefficients)?;
        tridiagonal.alpha.push(alpha);
        let mut beta = norm(&r)?;
        let drifted = match reorthogonalisation {
            Reorthogonalisation::Full => Some(std::iter::once(0..taken).collect()),
            Reorthogonalisation::Partial => estimate
                .lost(&tridiagonal, beta)
                .then(|| estimate.drifted()),
        };
        let own_row = first + step as i64;
        let held = held_runs(first, drifted.as_deref().unwrap_or_default());
        for run in &held {
            let rows = basis.f_narrow(0, run.start, run.end - run.start)?;
            if reorthogonalisation == Reorthogonalisation::Partial && drifted.is_some() {
                // Simon (1984): qⱼ too, whose own loss the recurrence would carry into qⱼ₊₂,
                // in the same passes over the basis (qⱼ is its row: corrected where it is kept).
                let own = run.contains(&own_row).then_some(own_row - run.start);
                projector.orthogonalise_pair(&mut q, &mut r, &rows, own)?;
            } else {
                projector.orthogonalise(&mut r, &rows)?;
            }
        }
        if !held.is_empty() {
            beta = norm(&r)?;
        }
        if let Some(drifted) = &drifted {
            orthogonalisations += 1;
            if reorthogonalisation == Reorthogonalisation::Partial {
                estimate.reset(drifted);
            }
        }
        scale = scale.max(alpha.abs()).max(beta);
        last_beta = beta;
        if beta <= BREAKDOWN * scale || step + 1 == steps || stop(&tridiagonal, beta)? {
            break;
        }
        tridiagonal.beta.push(beta);
        let next = basis.f_get(first + taken as i64)?;
        let _ = r.f_div_scalar_out(&next, beta)?;
        q = next;
    }
    Ok(LanczosRun {
        tridiagonal,
        basis: basis.f_narrow(0, first, taken as i64)?,
        last_beta,
        orthogonalisations,
        basis_rows_read: projector.rows_read,
    })
}

/// The runs of basis rows to orthogonalise against: the locked ones (the first `locked`) and
/// the `drifted` runs of the run's own rows (counted from its first vector), adjacent runs
/// merged so each is one matrix product.
fn held_runs(locked: i64, drifted: &[Range<usize>]) -> Vec<Range<i64>> {
    let mut runs: Vec<Range<i64>> = Vec::new();
    let shifted = drifted
        .iter()
        .map(|run| run.start as i64 + locked..run.end as i64 + locked);
    for run in (locked > 0).then_some(0..locked).into_iter().chain(shifted) {
        match runs.last_mut() {
            Some(last) if last.end == run.start => last.end = run.end,
            _ => runs.push(run),
        }
    }
    runs
}

/// Simon's (1984) recurrence for the loss of orthogonality of the Lanczos vectors: from
/// A qₖ = βₖ₋₁qₖ₋₁ + αₖqₖ + βₖqₖ₊₁ and A's symmetry,
/// βⱼ ωⱼ₊₁,ₖ = βₖ ωⱼ,ₖ₊₁ + (αₖ − αⱼ) ωⱼ,ₖ + βₖ₋₁ ωⱼ,ₖ₋₁ − βⱼ₋₁ ωⱼ₋₁,ₖ,
/// with ωₖ,ₖ = 1, each new ωⱼ₊₁,ⱼ at the local error level ε‖A‖/βⱼ and ε‖A‖ of error added
/// to every term, on the side that makes |ω| grow: an overestimate, so the test |ω| > √ε errs
/// towards orthogonalising. ε is the storage's unit round-off or, when larger, the operator's
/// own error as observed at every step (|qⱼ₋₁ᵀAqⱼ − βⱼ₋₁| / ‖A‖): a float64 model computing
/// in float32 inside (normalisations, rotary embeddings) has products only that exact and
/// that symmetric, and its vectors are kept orthogonal to that level's square root.
struct OrthogonalityEstimate {
    /// The storage's unit round-off.
    round_off: f64,
    /// The largest |qⱼ₋₁ᵀAqⱼ − βⱼ₋₁| observed.
    observed: f64,
    /// ωⱼ₋₁,ₖ for k < j (and ωⱼ₋₁,ⱼ₋₁ = 1 last).
    previous: Vec<f64>,
    /// ωⱼ,ₖ for k ≤ j.
    current: Vec<f64>,
    /// The largest |αₖ| + βₖ + βₖ₋₁ seen: an estimate of ‖A‖.
    norm: f64,
}

impl OrthogonalityEstimate {
    fn new(round_off: f64) -> Self {
        Self {
            round_off,
            observed: 0.0,
            previous: Vec::new(),
            current: vec![1.0],
            norm: 0.0,
        }
    }

    /// Steps the estimate to the next vector r/‖r‖ (T holds α₀…αⱼ and β₀…βⱼ₋₁) and says
    /// whether it must be orthogonalised against the basis.
    fn lost(&mut self, t: &Tridiagonal, beta: f64) -> bool {
        let j = t.alpha.len() - 1;
        let (alpha, betas) = (&t.alpha, &t.beta);
        let before = if j > 0 { betas[j - 1] } else { 0.0 };
        self.norm = self.norm.max(alpha[j].abs() + beta + before);
        if beta <= 0.0 {
            return true;
        }
        // Products summed over a batch round more than one operation: ten units of round-off,
        // to be safe, unless the error observed is larger.
        let noise = (10.0 * self.round_off * self.norm).max(self.observed);
        let mut next = Vec::with_capacity(j + 2);
        for k in 0..j {
            let mut sum = betas[k] * self.current[k + 1] + (alpha[k] - alpha[j]) * self.current[k]
                - before * self.previous[k];
            if k > 0 {
                sum += betas[k - 1] * self.current[k - 1];
            }
            next.push((sum + noise.copysign(sum)) / beta);
        }
        next.push(noise / beta);
        next.push(1.0);
        let largest = next[..=j].iter().fold(0.0_f64, |m, w| m.max(w.abs()));
        self.previous = std::mem::replace(&mut self.current, next);
        largest > self.epsilon().sqrt()
    }

    /// Records the operator's error seen at one step.
    fn observe(&mut self, error: f64) {
        self.observed = self.observed.max(error);
    }

    /// The relative error the vectors' orthogonality is measured against.
    fn epsilon(&self) -> f64 {
        if self.norm > 0.0 {
            self.round_off.max(self.observed / self.norm)
        } else {
            self.round_off
        }
    }

    /// The runs of rows k ≤ j that qⱼ₊₁ or qⱼ has drifted towards, |ω| > ε^¾ (Simon's η):
    /// orthogonalising against these alone keeps the vectors semi-orthogonal (Simon 1984,
    /// as PROPACK does, Larsen 1998). The components along the others stay below ε^¾, and
    /// on a Hessian most of the drift is towards the few early vectors that make up the
    /// converged outliers' Ritz vectors: a fraction of the basis is read.
    fn drifted(&self) -> Vec<Range<usize>> {
        let eta = self.epsilon().powf(0.75);
        let j = self.current.len() - 2;
        let over =
            |k: usize| self.current[k].abs() > eta || (k < j && self.previous[k].abs() > eta);
        let mut runs: Vec<Range<usize>> = Vec::new();
        for k in (0..=j).filter(|&k| over(k)) {
            match runs.last_mut() {
                Some(last) if last.end == k => last.end = k + 1,
                _ => runs.push(k..k + 1),
            }
        }
        runs
    }

    /// After qⱼ₊₁ and qⱼ were orthogonalised against the rows in `runs`: their overlaps with
    /// those are back at the error level.
    fn reset(&mut self, runs: &[Range<usize>]) {
        let level = self.epsilon();
        let (current, previous) = (self.current.len() - 1, self.previous.len() - 1);
        for k in runs.iter().flat_map(|run| run.clone()) {
            if k < current {
                self.current[k] = level;
            }
            if k < previous {
                self.previous[k] = level;
            }
        }
    }
}

/// Classical Gram-Schmidt against the rows of a basis, with reusable buffers of two vectors'
/// size (the pair orthogonalised together, and the correction). A pass is repeated when it
/// removed most of a vector (the Daniel-Gragg-Kaufman-Stewart criterion, "twice is enough"),
/// judged from the overlaps themselves (the rows are orthonormal: what a pass removes has the
/// norm of its overlaps) rather than by another pass over the vector.
struct Projector {
    pair: Tensor,
    correction: Tensor,
    /// Basis rows read so far, each pass counted.
    rows_read: usize,
}

impl Projector {
    fn new(size: i64, storage: Kind, device: Device) -> Result<Self> {
        Ok(Self {
            pair: Tensor::f_empty([2, size], (storage, device))?,
            correction: Tensor::f_empty([2, size], (storage, device))?,
            rows_read: 0,
        })
    }

    /// Removes from `r` (in place, the basis's dtype) its components along the rows of `held`
    /// (orthonormal).
    fn orthogonalise(&mut self, r: &mut Tensor, held: &Tensor) -> Result<()> {
        let correction = self.correction.f_get(0)?;
        let mut squared = dot(r, r)?;
        for _ in 0..2 {
            self.rows_read += held.size()[0] as usize;
            let overlaps = held.f_mv(r)?;
            let _ = held.f_transpose(0, 1)?.f_mv_out(&correction, &overlaps)?;
            let _ = r.f_sub_(&correction)?;
            let removed = dot(&overlaps, &overlaps)?;
            if !mostly_removed(removed, squared) {
                break;
            }
            squared -= removed;
        }
        Ok(())
    }

    /// Orthogonalises `current` (against the rows of `held` but its own, the row `own` when it
    /// is there) and `r` (against every row) together: each pass reads the basis once for
    /// both, as one two-column matrix product (BLAS-3), where one vector after the other
    /// would read it twice as often.
    fn orthogonalise_pair(
        &mut self,
        current: &mut Tensor,
        r: &mut Tensor,
        held: &Tensor,
        own: Option<i64>,
    ) -> Result<()> {
        let mut squared = [dot(current, current)?, dot(r, r)?];
        for _ in 0..2 {
            self.rows_read += held.size()[0] as usize;
            self.pair.f_get(0)?.f_copy_(current)?;
            self.pair.f_get(1)?.f_copy_(r)?;
            // [rows, 2]: each row's overlap with both; the current vector's with itself is
            // not a component to remove.
            let overlaps = held.f_mm(&self.pair.f_transpose(0, 1)?)?;
            if let Some(own) = own {
                let _ = overlaps.f_get(own)?.f_get(0)?.f_zero_()?;
            }
            let _ = overlaps
                .f_transpose(0, 1)?
                .f_mm_out(&self.correction, held)?;
            let _ = current.f_sub_(&self.correction.f_get(0)?)?;
            let _ = r.f_sub_(&self.correction.f_get(1)?)?;
            let removed = Vec::<f64>::try_from(overlaps.f_square()?.f_sum_dim_intlist(
                0,
                false,
                Kind::Double,
            )?)?;
            if !(0..2).any(|i| mostly_removed(removed[i], squared[i])) {
                break;
            }
            for i in 0..2 {
                squared[i] -= removed[i];
            }
        }
        Ok(())
    }
}

/// Whether a pass that removed components of squared norm `removed` from a vector of squared
/// norm `squared` left less than 0.7 of its norm: cancellation then makes what is left
/// inaccurate, and another pass is needed.
fn mostly_removed(removed: f64, squared: f64) -> bool {
    squared - removed < 0.49 * squared
}

/// The dtype of the Lanczos vectors and basis of an operator whose products are computed in
/// `kind`: float32 for float32 (or coarser) products, whose precision it then matches at half
/// the memory traffic of float64 (PyTorch's own eigensolvers on such models work in it too),
/// else float64. T, its eigenvalues and every statistic from them are float64 whatever it is.
pub fn vector_kind(kind: Kind) -> Kind {
    match kind {
        Kind::Double => Kind::Double,
        _ => Kind::Float,
    }
}

/// The relative precision of values computed in `kind`: its unit round-off.
pub(super) fn precision(kind: Kind) -> f64 {
    match kind {
        Kind::Double => f64::EPSILON,
        Kind::Half => 9.8e-4,
        Kind::BFloat16 => 7.8e-3,
        _ => f32::EPSILON as f64,
    }
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(f64::try_from(a.f_dot(b)?.f_to_kind(Kind::Double)?)?)
}

fn norm(a: &Tensor) -> Result<f64> {
    Ok(dot(a, a)?.sqrt())
}

/// A seeded standard normal vector of the operator's order on its device, in its
/// [`vector_kind`]. Drawn in parallel, in blocks of a fixed size each from its own stream
/// (seeded by one draw of `random`), so the vector depends on the seed alone, not on the
/// threads: on 11.7 M parameters one stream took 0.35 s, a Lanczos run's worth of products.
pub fn gaussian_vector(
    operator: &impl SymmetricOperator,
    random: &mut SeededNormal,
) -> Result<Tensor> {
    let tensor = match vector_kind(operator.kind()) {
        Kind::Double => Tensor::from_slice(&blocked_normals(operator.dimension(), random, |x| x)),
        _ => Tensor::from_slice(&blocked_normals(operator.dimension(), random, |x| x as f32)),
    };
    Ok(tensor.f_to_device(operator.device())?)
}

/// `count` standard normals drawn as [`gaussian_vector`] says, converted by `convert`.
fn blocked_normals<T: Send + Default + Clone>(
    count: usize,
    random: &mut SeededNormal,
    convert: impl Fn(f64) -> T + Sync,
) -> Vec<T> {
    const BLOCK: usize = 1 << 16;
    let seeds: Vec<u64> = (0..count.div_ceil(BLOCK)).map(|_| random.bits()).collect();
    let mut values = vec![T::default(); count];
    values
        .par_chunks_mut(BLOCK)
        .zip(seeds)
        .for_each(|(block, seed)| {
            let mut stream = SeededNormal::new(seed);
            for pair in block.chunks_mut(2) {
                let (first, second) = stream.normal_pair();
                pair[0] = convert(first);
                if let Some(last) = pair.get_mut(1) {
                    *last = convert(second);
                }
            }
        });
    values
}

/// A seeded vector of random signs (±1, each with probability ½) of the operator's order, 64
/// signs from each draw of 64 random bits; built on the device from one byte per sign.
pub fn rademacher_vector(
    operator: &impl SymmetricOperator,
    random: &mut SeededNormal,
) -> Result<Tensor> {
    let mut bits = vec![0u8; operator.dimension()];
    for block in bits.chunks_mut(64) {
        let draw = random.bits();
        for (position, bit) in block.iter_mut().enumerate() {
            *bit = (draw >> position & 1) as u8;
        }
    }
    let mut signs = Tensor::from_slice(&bits)
        .f_to_device(operator.device())?
        .f_to_kind(vector_kind(operator.kind()))?;
    // 1 − 2·bit: bit 1 is the sign −1, as before.
    let _ = signs.f_mul_scalar_(-2.0)?.f_add_scalar_(1.0)?;
    Ok(signs)
}

/// Refuses `steps` Lanczos vectors of the operator's order that would not fit in the host's
/// memory (they are kept for reorthogonalisation).
pub fn check_basis_memory(operator: &impl SymmetricOperator, steps: usize) -> Result<()> {
    crate::environment::ensure_host_memory(
        || format!("{steps} Lanczos vectors of order {}", operator.dimension()),
        operator.device(),
        vector_kind(operator.kind()).elt_size_in_bytes() as f64
            * steps as f64
            * operator.dimension() as f64,
    )
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
        let mut apply = |v: &Tensor, out: &mut Tensor| -> Result<()> {
            products += 1;
            out.f_copy_(&(v * &diagonal))?;
            Ok(())
        };
        let start = Tensor::ones([50], (Kind::Double, tch::Device::Cpu));
        let run = lanczos(
            &mut apply,
            &start,
            80,
            Kind::Double,
            Reorthogonalisation::Full,
            None,
            |_, _| Ok(false),
        )
        .unwrap();
        assert_eq!(run.tridiagonal.len(), 50);
        assert!(run.last_beta < 1e-9, "β = {}", run.last_beta);
        let ritz = run.tridiagonal.eigen().unwrap();
        for (i, value) in ritz.values.iter().enumerate() {
            assert!((value - (i + 1) as f64).abs() < 1e-9, "{i}: {value}");
        }
        assert_eq!(products, 50);
    }

    /// The diagonal of a Hessian-like spectrum: `order` eigenvalues, a bulk spread evenly on
    /// [−1, 1] and the `outliers` above it.
    fn bulk_with_outliers(order: usize, outliers: &[f64]) -> Tensor {
        let bulk = order - outliers.len();
        let mut values: Vec<f64> = (0..bulk)
            .map(|i| -1.0 + 2.0 * i as f64 / (bulk - 1) as f64)
            .collect();
        values.extend(outliers);
        Tensor::from_slice(&values)
    }

    /// How many Ritz values lie within 1e-3 of `value`: more than one are ghost copies.
    fn copies_near(ritz: &[f64], value: f64) -> usize {
        ritz.iter().filter(|v| (*v - value).abs() < 1e-3).count()
    }

    /// Partial reorthogonalisation on a Hessian-like spectrum (a bulk on [−1, 1] and three
    /// outliers): the vectors stay semi-orthogonal (|qⱼᵀqₖ| ≤ 10√ε, measured), the outliers
    /// come out to 10ε‖A‖, once each (no ghost copies), and far fewer steps pass over the
    /// basis than with full reorthogonalisation; in float64 and in float32.
    #[test]
    fn partial_reorthogonalisation_keeps_semi_orthogonality_and_the_eigenvalues() {
        let order = 3000;
        let diagonal = bulk_with_outliers(order, &[30.0, 40.0, 50.0]);
        let start = Tensor::from_slice(&SeededNormal::new(3).normals(order));
        for storage in [Kind::Double, Kind::Float] {
            let mut runs = Vec::new();
            for method in [Reorthogonalisation::Full, Reorthogonalisation::Partial] {
                let mut apply = |v: &Tensor, out: &mut Tensor| -> Result<()> {
                    out.f_copy_(&(v * &diagonal))?;
                    Ok(())
                };
                let run = lanczos(&mut apply, &start, 150, storage, method, None, |_, _| {
                    Ok(false)
                })
                .unwrap();
                let q = run.basis.to_kind(Kind::Double);
                let gram =
                    q.mm(&q.transpose(0, 1)) - Tensor::eye(150, (Kind::Double, tch::Device::Cpu));
                let loss = f64::try_from(gram.abs().max()).unwrap();
                let epsilon = precision(storage);
                assert!(
                    loss <= 10.0 * epsilon.sqrt(),
                    "{storage:?} {method}: {loss:e}"
                );
                runs.push((
                    run.tridiagonal.eigen().unwrap().values,
                    run.orthogonalisations,
                    run.basis_rows_read,
                ));
            }
            let (full, partial) = (&runs[0], &runs[1]);
            assert_eq!(full.1, 150);
            // Measured: 36 of 150 steps in float64, 73 in float32 (√ε is nearer its rounding
            // level), each orthogonalising a pair of vectors.
            let most = if storage == Kind::Double { 45 } else { 90 };
            assert!(
                partial.1 < most,
                "{storage:?}: {} orthogonalisations",
                partial.1
            );
            // Measured: 1717 rows of full's 11 325 in float64 (only the drifted runs), 5694 in
            // float32 (its noise level is near ε^¾: most rows drift).
            let share = if storage == Kind::Double { 0.25 } else { 0.6 };
            assert!(
                (partial.2 as f64) < share * full.2 as f64,
                "{storage:?}: {} of {} rows read",
                partial.2,
                full.2
            );
            for outlier in [30.0, 40.0, 50.0] {
                assert_eq!(
                    copies_near(&partial.0, outlier),
                    1,
                    "{storage:?}: ghosts of {outlier}"
                );
                let closest = partial
                    .0
                    .iter()
                    .fold(f64::INFINITY, |m, v| m.min((v - outlier).abs()));
                // Float32 vectors hold the eigenvalues to their own precision, ‖A‖·ε.
                assert!(
                    closest < 10.0 * precision(storage) * 50.0,
                    "{storage:?}: {outlier} off by {closest:e}"
                );
            }
        }
    }

    /// An operator only about 1e-7 exact and symmetric (a float64 model computing in float32
    /// inside): partial reorthogonalisation measures that error and keeps the vectors
    /// orthogonal to its square root, so the outliers still come out once each and right to the
    /// operator's precision (an estimate from float64's round-off alone let them lose it all
    /// and return values above the largest eigenvalue).
    #[test]
    fn partial_reorthogonalisation_keeps_up_with_an_inexact_operator() {
        let order = 600;
        let diagonal = bulk_with_outliers(order, &[5.0, 6.0]);
        let noise = Tensor::from_slice(&SeededNormal::new(5).normals(order * order))
            .reshape([order as i64, order as i64])
            * (1e-7 / (order as f64).sqrt());
        let start = Tensor::from_slice(&SeededNormal::new(6).normals(order));
        let mut apply = |v: &Tensor, out: &mut Tensor| -> Result<()> {
            out.f_copy_(&(v * &diagonal + noise.mv(v)))?;
            Ok(())
        };
        let run = lanczos(
            &mut apply,
            &start,
            200,
            Kind::Double,
            Reorthogonalisation::Partial,
            None,
            |_, _| Ok(false),
        )
        .unwrap();
        let ritz = run.tridiagonal.eigen().unwrap().values;
        for outlier in [5.0, 6.0] {
            assert_eq!(copies_near(&ritz, outlier), 1, "ghosts of {outlier}");
        }
        assert!(
            ritz.iter().all(|v| *v < 6.0 + 1e-6),
            "{:?}",
            &ritz[ritz.len() - 3..]
        );
        assert!(run.orthogonalisations < 200);
    }

    /// The start vector's normals are the same whatever the threads, and standard normal:
    /// mean 0, variance 1, 68.27 % within one standard deviation.
    #[test]
    fn blocked_normals_depend_on_the_seed_alone() {
        let draw = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| blocked_normals(300_001, &mut SeededNormal::new(9), |x| x))
        };
        let (one, two) = (draw(1), draw(2));
        assert_eq!(one, two);
        let count = one.len() as f64;
        let mean = one.iter().sum::<f64>() / count;
        let variance = one.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / count;
        let within = one.iter().filter(|x| x.abs() < 1.0).count() as f64 / count;
        assert!(
            mean.abs() < 0.005 && (variance - 1.0).abs() < 0.01,
            "{mean} {variance}"
        );
        assert!((within - 0.682_689).abs() < 0.003, "{within}");
    }
}
