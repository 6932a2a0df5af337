//! The loss Hessian's spectrum for people and machines.
use super::table::Table;
use super::{format_number, Render};
use crate::error::Result;
use crate::stats::rmt::bulk_outliers::{BulkFit, BulkOutliers, BulkShape, FITS_WITHIN};
use crate::workflows::hessian::HessianAnalysis;

/// The top eigenvalues, trace, density and bulk of a loss Hessian.
impl Render for HessianAnalysis {
    fn table(&self) -> String {
        let mut lines = vec![format!(
            "{}: Hessian of the {} loss ({}) over {} parameters in {} tensors, {} samples{} on {}, {}",
            self.model,
            self.loss,
            format_number(self.loss_value),
            self.dimension,
            self.parameters.len(),
            self.samples,
            if self.batch_size < self.samples {
                format!(" in mini-batches of {}", self.batch_size)
            } else {
                String::new()
            },
            self.device,
            self.dtype,
        )];
        if !self.top.is_empty() {
            let mut top = Table::new(["rank", "eigenvalue", "residual"]);
            for (rank, pair) in self.top.iter().enumerate() {
                top.push(vec![
                    (rank + 1).to_string(),
                    format_number(pair.eigenvalue),
                    format!("{:.1e}", pair.residual),
                ]);
            }
            lines.push(format!(
                "top eigenvalues: {} Lanczos steps, {}\n\n{}",
                self.lanczos_iterations,
                if self.converged {
                    format!(
                        "converged: every residual ≤ {:e}·|λ| or at the precision of {} products",
                        self.tolerance, self.dtype
                    )
                } else {
                    format!(
                        "NOT converged to {:e}·|λ| (raise --max-iterations)",
                        self.tolerance
                    )
                },
                top.render()
            ));
        }
        if let Some(trace) = self.trace {
            lines.push(format!(
                "trace: {} ± {} (Hutchinson, {} vectors)",
                format_number(trace),
                self.trace_stderr
                    .map_or_else(|| "-".to_string(), format_number),
                self.trace_samples
            ));
        }
        if let Some(density) = &self.density {
            let nodes = density.nodes.iter().flatten();
            let (low, high) = nodes.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
            lines.push(format!(
                "density: {} runs of stochastic Lanczos quadrature, nodes in [{}, {}] (JSON: density)",
                density.nodes.len(),
                format_number(low),
                format_number(high)
            ));
        }
        if let Some(bulk) = &self.bulk {
            lines.push(bulk_lines(bulk));
        }
        lines.extend(reading(self));
        lines.push(format!(
            "{} Hessian-vector products, {} s each",
            self.products,
            format_number(self.timing.seconds_per_product)
        ));
        lines.join("\n") + "\n"
    }

    /// One row per top eigenvalue: its rank, value and residual.
    fn csv_rows(&self) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .top
            .iter()
            .enumerate()
            .map(|(rank, pair)| {
                serde_json::json!({
                    "rank": rank + 1,
                    "eigenvalue": pair.eigenvalue,
                    "residual": pair.residual,
                })
            })
            .collect())
    }
}

/// One plain sentence on what the sharpness (and a negative share of the spectrum) says for
/// training: gradient descent on a quadratic is stable for learning rates below 2/λmax, and
/// training tends to sharpen until λmax ≈ 2/η (Cohen et al. 2021, the edge of stability).
fn reading(analysis: &HessianAnalysis) -> Option<String> {
    let sharpness = analysis.top_eigenvalues.first().copied()?;
    let mut text = if sharpness > 0.0 {
        format!(
            "reading: the sharpness λmax = {} bounds stable gradient descent to learning rates \
             below 2/λmax = {} (training tends to sharpen until λmax ≈ 2/η: Cohen et al. 2021)",
            format_number(sharpness),
            format_number(2.0 / sharpness)
        )
    } else {
        "reading: no positive curvature was found among the top eigenvalues: the loss does not \
         bend upward here (a maximum or a flat region, not a minimum)"
            .to_string()
    };
    if let Some(bulk) = analysis.bulk.as_ref().filter(|b| b.negative_mass > 0.01) {
        text.push_str(&format!(
            "; a share {} of the spectrum lies below 0: a saddle, not a minimum",
            format_number(bulk.negative_mass)
        ));
    }
    Some(text)
}

/// One sentence on what the bulk is: the closer law fits, neither fits, or it sits at 0.
fn bulk_shape(bulk: &BulkOutliers) -> String {
    let best = bulk.best();
    match bulk.shape {
        BulkShape::Fitted => format!(
            "bulk: {} fits (Kolmogorov distance {} ≤ {FITS_WITHIN})",
            best.law,
            format_number(best.ks_distance)
        ),
        BulkShape::NoLawFits => format!(
            "bulk: neither law fits (Kolmogorov distances {}{} > {FITS_WITHIN}): the edge and the \
             outliers below are the closer law's, indicative only",
            format_number(bulk.semicircle.ks_distance),
            bulk.marchenko_pastur.map_or_else(String::new, |mp| format!(
                " and {}",
                format_number(mp.ks_distance)
            )),
        ),
        BulkShape::AtZero => format!(
            "bulk: it sits at 0 — {:.4} % of the spectrum is numerically zero (flat \
             directions: the operator is of low rank here), so the curvature is the top \
             eigenvalues, every positive one an outlier",
            100.0 * best.atom
        ),
    }
}

/// The bulk's two fits, the outliers above the better one's edge and the negative mass.
fn bulk_lines(bulk: &BulkOutliers) -> String {
    let describe = |fit: &BulkFit| {
        let parameters = match fit.q {
            Some(q) => format!(
                "Q {}, σ² {}, atom {} at 0",
                format_number(q),
                format_number(fit.sigma2),
                format_number(fit.atom)
            ),
            None => format!(
                "centre {}, σ² {}",
                format_number(fit.center),
                format_number(fit.sigma2)
            ),
        };
        format!(
            "{}{}: {parameters}, support {}[{}, {}], Kolmogorov distance {}",
            fit.law,
            if fit.law == bulk.law { " (closer)" } else { "" },
            if fit.atom > 0.0 { "{0} ∪ " } else { "" },
            format_number(fit.edges.0),
            format_number(fit.edges.1),
            format_number(fit.ks_distance)
        )
    };
    let mut lines = vec![format!("bulk fits:\n  {}", describe(&bulk.semicircle))];
    if let Some(fit) = &bulk.marchenko_pastur {
        lines.push(format!("  {}", describe(fit)));
    }
    lines.push(bulk_shape(bulk));
    let outliers: Vec<String> = bulk.outliers.iter().map(|&v| format_number(v)).collect();
    lines.push(format!(
        "outliers above the bulk edge {}: {}{}{}",
        format_number(bulk.bulk_edge),
        bulk.outliers.len(),
        if outliers.is_empty() {
            String::new()
        } else {
            format!(" ({})", outliers.join(", "))
        },
        if bulk.more_outliers_possible {
            " — every top eigenvalue is one: raise --top-k to find them all"
        } else {
            ""
        }
    ));
    lines.push(format!(
        "negative mass (share of the spectrum below 0): {}",
        format_number(bulk.negative_mass)
    ));
    lines.join("\n")
}
