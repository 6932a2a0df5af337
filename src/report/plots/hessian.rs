//! The loss Hessian's spectral density as PyHessian draws it: the stochastic Lanczos quadrature
//! density on a logarithmic axis, with the top eigenvalues Lanczos resolved marked on it, and
//! the fitted bulk law with its edge.
use super::series::{Mark, Series, SeriesFigure};
use crate::report::format_number;
use crate::stats::rmt::bulk_outliers::{BulkLaw, BulkShape};
use crate::workflows::hessian::HessianAnalysis;

/// Densities below this fraction of the peak are drawn at it: the Gaussians' tails would set
/// the logarithmic axis to hundreds of decades.
const DENSITY_FLOOR: f64 = 1e-6;

/// The density figure, with the top eigenvalues as points on the curve; `None` without a
/// density.
pub fn density_figure(analysis: &HessianAnalysis) -> Option<SeriesFigure> {
    let density = analysis.density.as_ref()?;
    let peak = density.y.iter().copied().fold(0.0, f64::max);
    let floor = peak * DENSITY_FLOOR;
    let at = |x: f64| {
        let index = density.x.partition_point(|&grid| grid < x);
        density.y.get(index).copied().unwrap_or(0.0).max(floor)
    };
    let mut series = vec![Series {
        name: format!("SLQ density ({} runs)", density.nodes.len()),
        points: density
            .x
            .iter()
            .zip(&density.y)
            .map(|(&x, &y)| (x, y.max(floor)))
            .collect(),
        mark: Mark::Line,
        color: super::series::CYCLE[0],
    }];
    if let Some(bulk) = &analysis.bulk {
        let fit = bulk.best();
        series.push(Series {
            name: format!(
                "fitted {} (continuous part){}",
                match fit.law {
                    BulkLaw::Semicircle => "semicircle",
                    BulkLaw::MarchenkoPastur => "Marchenko-Pastur",
                },
                match bulk.shape {
                    BulkShape::Fitted => "",
                    BulkShape::NoLawFits => ": closer, but neither law fits",
                    BulkShape::AtZero => ": the bulk sits at 0",
                }
            ),
            points: density
                .x
                .iter()
                .map(|&x| (x, fit.density(x)))
                .filter(|&(_, y)| y > floor)
                .collect(),
            mark: Mark::Dashed,
            color: super::series::CYCLE[1],
        });
        series.push(Series {
            name: format!(
                "bulk edge {} ({} outlier{} above)",
                format_number(bulk.bulk_edge),
                bulk.outliers.len(),
                if bulk.outliers.len() == 1 { "" } else { "s" }
            ),
            points: vec![(bulk.bulk_edge, floor), (bulk.bulk_edge, peak)],
            mark: Mark::Dashed,
            color: super::series::CYCLE[7],
        });
    }
    if !analysis.top_eigenvalues.is_empty() {
        series.push(Series {
            name: format!(
                "top {} eigenvalues (Lanczos)",
                analysis.top_eigenvalues.len()
            ),
            points: analysis
                .top_eigenvalues
                .iter()
                .map(|&v| (v, at(v)))
                .collect(),
            mark: Mark::Points,
            color: super::series::CYCLE[3],
        });
    }
    let model = super::model_title(&analysis.model);
    Some(SeriesFigure {
        title: format!(
            "{model}: loss Hessian spectral density ({} loss)",
            analysis.loss
        ),
        x_desc: "eigenvalue λ".into(),
        y_desc: "density".into(),
        series,
        log_y: true,
        ..SeriesFigure::default()
    })
}
