//! The singular-value density of a batch's input-output Jacobians, with the isometry band
//! |σ − 1| ≤ ε and the statistics of dynamical isometry (Pennington, Schoenholz & Ganguli).
use plotters::coord::Shift;
use plotters::prelude::*;

use super::palette::{MARKER, THEORY};
use super::{
    chart_frame, density_bars, draw_axes, draw_bars, legend_box, legend_line, Legend, TickLabels,
};
use super::{DrawResult, Figure, Pen};
use crate::report::format_number;
use crate::workflows::jacobian::JacobianAnalysis;

/// Histogram of every sample's singular values pooled, with σ = 1 and the isometry band.
pub struct JacobianFigure<'a> {
    /// Caption.
    pub title: String,
    /// The analysis (its samples must keep their singular values).
    pub analysis: &'a JacobianAnalysis,
}

impl Figure for JacobianFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        let analysis = self.analysis;
        let sigmas: Vec<f64> = analysis
            .samples
            .iter()
            .flat_map(|s| s.singular_values.iter().flatten().copied())
            .collect();
        let summary = &analysis.summary;
        let hi = summary.sigma_max.max(1.0 + analysis.isometry_tolerance) * 1.05;
        let bars = density_bars(&sigmas, 0.0, hi, 80);
        let y_hi = bars.iter().map(|b| b.2).fold(0.0, f64::max).max(1e-12) * 1.3;
        let mut chart =
            chart_frame(area, &self.title, pen).build_cartesian_2d(0.0..hi, 0.0..y_hi)?;
        draw_axes(
            &mut chart,
            "singular value σ of ∂f/∂x",
            "density",
            TickLabels::default(),
            pen,
        )?;
        let tolerance = analysis.isometry_tolerance;
        let mut legend = Legend::default();
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [((1.0 - tolerance).max(0.0), 0.0), (1.0 + tolerance, y_hi)],
                MARKER.mix(0.12).filled(),
            )))?
            .label(legend.entry(format!(
                "|σ − 1| ≤ {}: {} of σ",
                format_number(tolerance),
                format_number(summary.isometry_fraction)
            )))
            .legend(legend_box(MARKER, pen));
        draw_bars(
            &mut chart,
            &bars,
            format!(
                "{} samples × {} σ; mean σ² = {}, var σ² = {}",
                summary.samples,
                analysis.setup.outputs.min(analysis.setup.inputs),
                format_number(summary.mean_sigma2),
                format_number(summary.var_sigma2)
            ),
            &mut legend,
            pen,
        )?;
        legend.avoid_vertical(1.0, (0.0, y_hi));
        chart
            .draw_series(LineSeries::new(
                [(1.0, 0.0), (1.0, y_hi)],
                pen.line(THEORY, 2),
            ))?
            .label(legend.entry(match summary.median_condition_number {
                Some(c) => format!("σ = 1 (isometry); median σmax/σmin = {}", format_number(c)),
                None => "σ = 1 (isometry)".to_string(),
            }))
            .legend(legend_line(THEORY, pen));
        legend.draw(&mut chart, pen)
    }
}
