//! Favoni, Aarts, Lucini & Park's (2024) teacher-student model y = Z·W·x: a student W learns a teacher W* through a fixed
//! hidden layer Z by minibatch SGD on noisy labels. Near the teacher, SGD noise makes the
//! eigenvalues of X = WᵀW a Dyson-Brownian gas:
//!
//! 1. two degenerate teacher singular values split, and their spacing follows the Wigner
//!    surmise (level repulsion), not Poisson;
//! 2. the eigenvalue fluctuations are set by the temperature η/B (linear scaling rule): runs
//!    with equal learning rate / batch size collapse, and 4× the ratio doubles the spread.
//!
//! Pure f64 arithmetic on tiny matrices with a seeded generator, so it runs in seconds.
//! Run: cargo run --release --example teacher_student [-- --samples 2000 --json]
use rmt_torch::random::SeededNormal as Rng;
use rmt_torch::stats::rmt::goodness_of_fit::ks_test;
use rmt_torch::stats::rmt::wigner::SpacingLaw;
use serde::Serialize;

/// Row-major matrix product (a: r×k, b: k×c).
fn matmul(a: &[f64], b: &[f64], r: usize, k: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for l in 0..k {
            let a_il = a[i * k + l];
            for j in 0..c {
                out[i * c + j] += a_il * b[l * c + j];
            }
        }
    }
    out
}

/// Eigenvalues of a symmetric n×n matrix by cyclic Jacobi rotations, ascending.
fn symmetric_eigenvalues(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut values: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    values.sort_by(f64::total_cmp);
    values
}

/// A teacher-student run: SGD with learning rate `lr` and batch `batch` from the teacher,
/// returning the eigenvalues of WᵀW sampled every `every` steps after `burn_in`.
struct Setup {
    n: usize,
    hidden: usize,
    z: Vec<f64>,
    teacher: Vec<f64>,
    label_noise: f64,
}

impl Setup {
    fn new(n: usize, hidden: usize, singular_values: &[f64], rng: &mut Rng) -> Self {
        let scale = 1.0 / (hidden as f64).sqrt();
        let z: Vec<f64> = (0..hidden * n).map(|_| rng.normal() * scale).collect();
        // Teacher = diag(singular values) rotated by a random orthogonal matrix (Gram-Schmidt).
        let mut q: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
        for i in 0..n {
            for j in 0..i {
                let dot: f64 = (0..n).map(|k| q[i * n + k] * q[j * n + k]).sum();
                for k in 0..n {
                    q[i * n + k] -= dot * q[j * n + k];
                }
            }
            let norm: f64 = (0..n).map(|k| q[i * n + k].powi(2)).sum::<f64>().sqrt();
            for k in 0..n {
                q[i * n + k] /= norm;
            }
        }
        let teacher = (0..n * n)
            .map(|idx| q[idx] * singular_values[idx / n])
            .collect();
        Self {
            n,
            hidden,
            z,
            teacher,
            label_noise: 0.5,
        }
    }

    fn run(
        &self,
        lr: f64,
        batch: usize,
        samples: usize,
        every: usize,
        rng: &mut Rng,
    ) -> Vec<Vec<f64>> {
        let (n, h) = (self.n, self.hidden);
        let mut w = self.teacher.clone();
        let zt_z = {
            let zt: Vec<f64> = (0..n * h)
                .map(|idx| self.z[(idx % h) * n + idx / h])
                .collect();
            matmul(&zt, &self.z, n, h, n)
        };
        let mut recorded = Vec::new();
        let burn_in = 20 * every;
        let mut step = 0;
        while recorded.len() < samples {
            // ∇ = (2/B) Σ Zᵀ(Z(W − W*)x − ε) xᵀ with Zε the label noise seen through Z.
            let mut gradient = vec![0.0; n * n];
            for _ in 0..batch {
                let x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                let noise: Vec<f64> = (0..h).map(|_| rng.normal() * self.label_noise).collect();
                let delta: Vec<f64> = (0..n * n).map(|i| w[i] - self.teacher[i]).collect();
                let dx = matmul(&delta, &x, n, n, 1);
                let mut residual = matmul(&zt_z, &dx, n, n, 1);
                for (i, r) in residual.iter_mut().enumerate() {
                    *r -= (0..h).map(|k| self.z[k * n + i] * noise[k]).sum::<f64>();
                }
                for i in 0..n {
                    for j in 0..n {
                        gradient[i * n + j] += 2.0 * residual[i] * x[j] / batch as f64;
                    }
                }
            }
            for (wi, gi) in w.iter_mut().zip(&gradient) {
                *wi -= lr * gi;
            }
            step += 1;
            if step > burn_in && step % every == 0 {
                let wt: Vec<f64> = (0..n * n).map(|idx| w[(idx % n) * n + idx / n]).collect();
                recorded.push(symmetric_eigenvalues(matmul(&wt, &w, n, n, n), n));
            }
        }
        recorded
    }
}

#[derive(Debug, Serialize)]
struct Report {
    /// KS p-value of the degenerate pair's spacings against the GOE Wigner surmise.
    surmise_p: f64,
    /// … and against Poisson.
    poisson_p: f64,
    /// (learning rate, batch, mean standard deviation of the eigenvalues over time).
    scaling: Vec<(f64, usize, f64)>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let samples = args
        .windows(2)
        .find(|p| p[0] == "--samples")
        .and_then(|p| p[1].parse().ok())
        .unwrap_or(2000);
    let mut rng = Rng::new(1);

    // 1. A doubly degenerate teacher (N = 2): the split pair's spacing.
    let pair = Setup::new(2, 4, &[1.0, 1.0], &mut rng);
    let levels = pair.run(0.05, 4, samples, 40, &mut rng);
    let spacings: Vec<f64> = levels.iter().map(|l| l[1] - l[0]).collect();
    let mean = spacings.iter().sum::<f64>() / spacings.len() as f64;
    let scaled: Vec<f64> = spacings.iter().map(|s| s / mean).collect();
    let surmise = ks_test(&scaled, |s| SpacingLaw::Goe.cdf(s)).map_or(f64::NAN, |t| t.p_value);
    let poisson = ks_test(&scaled, |s| SpacingLaw::Poisson.cdf(s)).map_or(f64::NAN, |t| t.p_value);

    // 2. The linear scaling rule on a 4×4 student with distinct teacher singular values.
    let student = Setup::new(4, 8, &[0.5, 1.0, 1.5, 2.0], &mut rng);
    let scaling = [(0.01, 4), (0.02, 8), (0.04, 16), (0.04, 4)]
        .into_iter()
        .map(|(lr, batch)| {
            let levels = student.run(lr, batch, samples / 4, 40, &mut rng);
            let n = levels[0].len();
            let spread = (0..n)
                .map(|i| {
                    let values: Vec<f64> = levels.iter().map(|l| l[i]).collect();
                    let m = values.iter().sum::<f64>() / values.len() as f64;
                    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64)
                        .sqrt()
                })
                .sum::<f64>()
                / n as f64;
            (lr, batch, spread)
        })
        .collect();
    let report = Report {
        surmise_p: surmise,
        poisson_p: poisson,
        scaling,
    };
    if args.iter().any(|a| a == "--json") {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("degenerate teacher pair: spacing KS p-value against the GOE surmise {:.3}, against Poisson {:.2e}", report.surmise_p, report.poisson_p);
    println!(
        "\nlinear scaling rule (4×4 student):\n{:>6}  {:>5}  {:>7}  {:>12}",
        "lr", "batch", "lr/B", "eigen spread"
    );
    for (lr, batch, spread) in &report.scaling {
        println!(
            "{lr:>6}  {batch:>5}  {:>7.4}  {spread:>12.5}",
            lr / *batch as f64
        );
    }
    Ok(())
}
