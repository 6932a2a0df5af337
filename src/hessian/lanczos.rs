//! Lanczos iteration with full reorthogonalisation on a symmetric operator known only by its
//! products A·v (Golub & Van Loan 2013, §10.1), and the quantities read from its tridiagonal
//! matrix T: Ritz values with their residual bounds, and Gauss quadrature nodes and weights for
//! stochastic Lanczos quadrature (Golub & Meurant 2010; Ubaru, Chen & Saad 2017).
use tch::{Kind, Tensor};

use crate::error::Result;

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

/// A finished run: T, the orthonormal basis q₀…q_{m−1} (flat vectors, on the operator's
/// device) and the last β (zero when the Krylov space became invariant: T is then exact).
pub struct LanczosRun {
    /// The tridiagonal matrix.
    pub tridiagonal: Tridiagonal,
    /// The Lanczos vectors.
    pub basis: Vec<Tensor>,
    /// ‖r_m‖ after the last step.
    pub last_beta: f64,
}

/// Relative size of ‖r‖ below which the Krylov space counts as invariant.
const BREAKDOWN: f64 = 1e-12;

/// Runs at most `steps` Lanczos steps of `apply` from `start` (any nonzero vector), each new
/// vector orthogonalised against all earlier ones twice (classical Gram-Schmidt, "twice is
/// enough"), so the Ritz values carry no ghost copies. After each step `stop(T, β)` may end it.
pub fn lanczos(
    apply: &mut impl FnMut(&Tensor) -> Result<Tensor>,
    start: &Tensor,
    steps: usize,
    mut stop: impl FnMut(&Tridiagonal, f64) -> Result<bool>,
) -> Result<LanczosRun> {
    let mut tridiagonal = Tridiagonal::default();
    let mut basis: Vec<Tensor> = Vec::new();
    let mut q = start / norm(start)?;
    let mut scale: f64 = 0.0;
    let mut last_beta = 0.0;
    for step in 0..steps {
        let mut r = apply(&q)?;
        let alpha = dot(&q, &r)?;
        r = r.f_sub(&(&q * alpha))?;
        if let (Some(previous), Some(&beta)) = (basis.last(), tridiagonal.beta.last()) {
            r = r.f_sub(&(previous * beta))?;
        }
        basis.push(q);
        for _ in 0..2 {
            for vector in &basis {
                let overlap = dot(vector, &r)?;
                r = r.f_sub(&(vector * overlap))?;
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
        q = r / beta;
    }
    Ok(LanczosRun {
        tridiagonal,
        basis,
        last_beta,
    })
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(f64::try_from(a.f_dot(b)?.f_to_kind(Kind::Double)?)?)
}

fn norm(a: &Tensor) -> Result<f64> {
    Ok(dot(a, a)?.sqrt())
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
        let run = lanczos(&mut apply, &start, 80, |_, _| Ok(false)).unwrap();
        assert_eq!(run.tridiagonal.len(), 50);
        assert!(run.last_beta < 1e-9, "β = {}", run.last_beta);
        let ritz = run.tridiagonal.eigen().unwrap();
        for (i, value) in ritz.values.iter().enumerate() {
            assert!((value - (i + 1) as f64).abs() < 1e-9, "{i}: {value}");
        }
        assert_eq!(products, 50);
    }
}
