//! The figures of one weight layer (Thamm, Staats & Rosenow (2022) and Aarts (2025)): its ESD against Marchenko-Pastur, the
//! power-law tail on log-log axes, unfolded spacings against the Wigner surmise, the number
//! variance against GOE, and Porter-Thomas p-values along the spectrum.
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::palette::{ALTERNATIVE, BASELINE, DATA, EXTRA, MARKER, THEORY};
use super::{chart_frame, density_bars, draw_bars, legend_box, legend_line, sampled_curve};
use super::{draw_axes, plain_mesh, DrawResult, Figure, Legend, Pen, TickLabels};
use crate::analysis::LayerReport;
use crate::report::format_number;
use crate::stats::heavy_tail::power_law::PowerLawFit;
use crate::stats::rmt::marchenko_pastur::MarchenkoPastur;
use crate::stats::rmt::number_variance::{goe_number_variance, NumberVariance};
use crate::stats::rmt::porter_thomas::PorterThomas;
use crate::stats::rmt::wigner::SpacingLaw;
use crate::stats::suite::SpacingReport;

/// Every figure a layer report has the data for, each with the file-name suffix it is saved
/// under. The ESD needs `keep_eigenvalues`, the spacings `keep_spacings`, the number variance
/// and Porter-Thomas figures their options; missing data means a missing figure.
pub fn layer_figures<'a>(
    layer: &'a LayerReport,
    baseline: Option<&'a LayerReport>,
) -> Vec<LayerFigure<'a>> {
    let title = |what: &str| format!("{} — {what}", layer.name);
    let mut figures = Vec::new();
    if let Some(eigenvalues) = layer.eigenvalues.as_deref().filter(|e| !e.is_empty()) {
        let bulk = layer.rmt.bulk.as_ref();
        figures.push(LayerFigure::Esd(EsdFigure {
            title: title("ESD"),
            eigenvalues,
            bulk: bulk.and_then(|b| reported_bulk(layer.q, b.bulk_sigma2, b.bulk_lambda_plus)),
            tw_threshold: bulk.map(|b| (b.tw_threshold, b.num_spikes_tw)),
            baseline: baseline.and_then(|b| b.eigenvalues.as_deref()),
        }));
        // A fit of FARMS's windows is not a fit of this ESD, so it is not drawn over it.
        if let Some(fit) = layer
            .power_law
            .as_ref()
            .filter(|f| f.farms_groups.is_none())
        {
            figures.push(LayerFigure::Tail(TailFigure {
                title: title("power-law tail"),
                eigenvalues,
                fit: fit.clone(),
            }));
        }
    }
    if let (Some(spacings), Some(report)) = (&layer.rmt.unit_spacings, &layer.rmt.spacing) {
        figures.push(LayerFigure::Spacing(SpacingFigure {
            title: title("level spacings"),
            spacings,
            report: report.clone(),
        }));
    }
    if !layer.rmt.number_variance.is_empty() {
        figures.push(LayerFigure::NumberVariance(NumberVarianceFigure {
            title: title("number variance"),
            values: &layer.rmt.number_variance,
        }));
    }
    if let Some(porter_thomas) = &layer.rmt.porter_thomas {
        figures.push(LayerFigure::PorterThomas(PorterThomasFigure {
            title: title("Porter-Thomas"),
            test: porter_thomas,
        }));
    }
    figures
}

/// The Marchenko-Pastur law of the bulk fit in the report's units: σ² rescaled so that its
/// edge lands on the reported λ₊ (the law scales linearly with σ²).
fn reported_bulk(q: f64, sigma2: f64, lambda_plus: f64) -> Option<MarchenkoPastur> {
    let rmt = MarchenkoPastur::new(q, sigma2).ok()?;
    MarchenkoPastur::new(q, sigma2 * lambda_plus / rmt.edges().1).ok()
}

/// One of a layer's figures.
pub enum LayerFigure<'a> {
    /// [`EsdFigure`].
    Esd(EsdFigure<'a>),
    /// [`TailFigure`].
    Tail(TailFigure<'a>),
    /// [`SpacingFigure`].
    Spacing(SpacingFigure<'a>),
    /// [`NumberVarianceFigure`].
    NumberVariance(NumberVarianceFigure<'a>),
    /// [`PorterThomasFigure`].
    PorterThomas(PorterThomasFigure<'a>),
}

impl LayerFigure<'_> {
    /// The suffix of its file name and its anchor in the HTML report.
    pub fn suffix(&self) -> &'static str {
        match self {
            Self::Esd(_) => "esd",
            Self::Tail(_) => "tail",
            Self::Spacing(_) => "spacing",
            Self::NumberVariance(_) => "number_variance",
            Self::PorterThomas(_) => "porter_thomas",
        }
    }
}

impl Figure for LayerFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        match self {
            Self::Esd(f) => f.draw(area, pen),
            Self::Tail(f) => f.draw(area, pen),
            Self::Spacing(f) => f.draw(area, pen),
            Self::NumberVariance(f) => f.draw(area, pen),
            Self::PorterThomas(f) => f.draw(area, pen),
        }
    }
}

/// The ESD as a density histogram with the Marchenko-Pastur density of the bulk fit, its edge
/// λ₊ and the Tracy-Widom spike threshold; a baseline ESD (the model at initialisation)
/// overlaid as an outline when given.
pub struct EsdFigure<'a> {
    /// Caption.
    pub title: String,
    /// Eigenvalues, ascending.
    pub eigenvalues: &'a [f64],
    /// The bulk's law in the same units.
    pub bulk: Option<MarchenkoPastur>,
    /// The Tracy-Widom threshold and the spikes beyond it.
    pub tw_threshold: Option<(f64, usize)>,
    /// The baseline's eigenvalues, ascending.
    pub baseline: Option<&'a [f64]>,
}

/// The main panel ends at this multiple of the bulk's edge (the larger of λ₊ and the
/// Tracy-Widom threshold): the bulk fills most of its width.
const BULK_WIDTHS: f64 = 2.5;
/// Share of the figure's width for the main panel when spikes lie beyond it.
const MAIN_PANEL_SHARE: u32 = 70;

impl Figure for EsdFigure<'_> {
    /// The bulk on a main panel to 2.5 times its edge; eigenvalues beyond it (the spikes, which
    /// would squash the bulk into one bar) on a panel of their own to the right, each a stem,
    /// on a logarithmic axis when they span more than a decade.
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        let largest = |values: &[f64]| values.last().copied().unwrap_or(0.0);
        let baseline = self.baseline.unwrap_or(&[]);
        let data_max = largest(self.eigenvalues).max(largest(baseline));
        let edge = self
            .bulk
            .map(|b| b.edges().1)
            .into_iter()
            .chain(self.tw_threshold.map(|t| t.0))
            .fold(0.0, f64::max);
        let bulk_end = BULK_WIDTHS * edge;
        let split = edge > 0.0 && data_max > bulk_end;
        let hi = if split {
            bulk_end
        } else if data_max > 0.0 {
            data_max * 1.05
        } else {
            1.0
        };
        let (main, right) = if split {
            let (width, _) = area.dim_in_pixel();
            let (left, right) = area.split_horizontally(width * MAIN_PANEL_SHARE / 100);
            (left, Some(right))
        } else {
            (area.clone(), None)
        };
        self.draw_bulk(&main, hi, pen)?;
        if let Some(right) = right {
            let beyond = |values: &[f64]| -> Vec<f64> {
                values.iter().copied().filter(|&l| l > hi).collect()
            };
            let (spikes, base) = (beyond(self.eigenvalues), beyond(baseline));
            let title = format!("{} beyond λ = {}", spikes.len(), format_number(hi));
            let end = data_max * 1.08;
            if data_max / hi > 10.0 {
                draw_beyond(&right, &title, (hi..end).log_scale(), &spikes, &base, pen)?;
            } else {
                draw_beyond(&right, &title, hi..end, &spikes, &base, pen)?;
            }
        }
        Ok(())
    }
}

impl EsdFigure<'_> {
    /// The histogram on [0, hi] with the law, the threshold and the baseline.
    fn draw_bulk<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        hi: f64,
        pen: Pen,
    ) -> DrawResult<DB> {
        let bins = 80;
        let bars = density_bars(self.eigenvalues, 0.0, hi, bins);
        let baseline_bars = self.baseline.map(|b| density_bars(b, 0.0, hi, bins));
        let tallest = bars
            .iter()
            .chain(baseline_bars.iter().flatten())
            .map(|b| b.2)
            .fold(0.0, f64::max);
        // The law's peak shows too (a flat-topped curve reads as a misfit), up to three times
        // the tallest bar: at Q = 1 its density diverges at 0.
        let law_peak = self.bulk.map_or(0.0, |bulk| {
            let (lo, plus) = bulk.edges();
            sampled_curve(|x| bulk.density(x), lo, plus.min(hi), 400, f64::INFINITY)
                .iter()
                .map(|p| p.1)
                .filter(|y| y.is_finite())
                .fold(0.0, f64::max)
        });
        let data_top = if tallest > 0.0 {
            (tallest * 1.25).max(law_peak.min(3.0 * tallest) * 1.1)
        } else {
            1.0
        };
        // A band above the data for the legend, which the threshold line stops short of.
        let y_hi = data_top * 1.35;
        let mut chart =
            chart_frame(area, &self.title, pen).build_cartesian_2d(0.0..hi, 0.0..y_hi)?;
        draw_axes(
            &mut chart,
            "eigenvalue λ",
            "density ρ(λ)",
            TickLabels::default(),
            pen,
        )?;
        let mut legend = Legend::default();
        draw_bars(
            &mut chart,
            &bars,
            format!("ESD, {} eigenvalues", self.eigenvalues.len()),
            &mut legend,
            pen,
        )?;
        if let Some(baseline) = &baseline_bars {
            let outline: Vec<(f64, f64)> = baseline
                .iter()
                .flat_map(|&(left, right, density)| [(left, density), (right, density)])
                .collect();
            legend.avoid(outline.iter().copied());
            chart
                .draw_series(LineSeries::new(outline, pen.line(BASELINE, 2)))?
                .label(legend.entry("baseline ESD"))
                .legend(legend_line(BASELINE, pen));
        }
        if let Some(bulk) = self.bulk {
            let (lo, plus) = bulk.edges();
            let curve = sampled_curve(|x| bulk.density(x), lo, plus.min(hi), 400, data_top);
            legend.avoid(curve.iter().copied());
            chart
                .draw_series(LineSeries::new(curve, pen.line(THEORY, 2)))?
                .label(legend.entry(format!(
                    "Marchenko-Pastur, Q = {}, λ₊ = {}",
                    format_number(bulk.q()),
                    format_number(plus)
                )))
                .legend(legend_line(THEORY, pen));
        }
        if let Some((threshold, spikes)) = self.tw_threshold.filter(|t| t.0 < hi) {
            legend.avoid_vertical(threshold, (0.0, data_top));
            chart
                .draw_series(DashedLineSeries::new(
                    [(threshold, 0.0), (threshold, data_top)],
                    pen.px(6),
                    pen.px(4),
                    pen.line(MARKER, 2),
                ))?
                .label(legend.entry(format!(
                    "Tracy-Widom threshold: {spikes} spike{}",
                    if spikes == 1 { "" } else { "s" }
                )))
                .legend(legend_line(MARKER, pen));
        }
        let beyond = self.eigenvalues.iter().filter(|&&l| l > hi).count();
        if beyond > 0 {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label(legend.entry(format!(
                    "{beyond} beyond the axis (right), λmax = {}",
                    format_number(*self.eigenvalues.last().unwrap_or(&0.0))
                )))
                .legend(|(x, y)| {
                    PathElement::new(
                        vec![
                            (x, y),
                            (x + pen.offset(12), y),
                            (x + pen.offset(8), y - pen.offset(4)),
                        ],
                        pen.line(BLACK, 1),
                    )
                });
        }
        legend.draw(&mut chart, pen)
    }
}

/// The eigenvalues beyond the main panel as stems (the baseline's shorter, in its colour) on
/// the x axis `x`.
fn draw_beyond<DB, X>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x: X,
    spikes: &[f64],
    baseline: &[f64],
    pen: Pen,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = chart_frame(area, title, pen)
        .y_label_area_size(pen.px(8))
        .build_cartesian_2d(x, 0.0..1.0)?;
    plain_mesh(&mut chart, pen, (13, 15))
        .disable_y_axis()
        .x_desc("eigenvalue λ")
        .x_labels(4)
        .draw()?;
    for (values, color, height) in [(baseline, BASELINE, 0.45), (spikes, DATA, 0.8)] {
        chart.draw_series(
            values
                .iter()
                .map(|&l| PathElement::new(vec![(l, 0.0), (l, height)], pen.line(color, 2))),
        )?;
        chart.draw_series(
            values
                .iter()
                .map(|&l| Circle::new((l, height), pen.px(3), color.filled())),
        )?;
    }
    Ok(())
}

/// The empirical complementary CDF of the ESD on log-log axes with the fitted power law from
/// xmin: a straight line of slope 1 − α where the tail is a power law.
pub struct TailFigure<'a> {
    /// Caption.
    pub title: String,
    /// Eigenvalues, ascending.
    pub eigenvalues: &'a [f64],
    /// The fit.
    pub fit: PowerLawFit,
}

/// Points drawn at most, evenly spread over the ranks (the tail in full).
const MAX_POINTS: usize = 600;

impl Figure for TailFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        let positive: Vec<f64> = self
            .eigenvalues
            .iter()
            .copied()
            .filter(|&l| l > 0.0)
            .collect();
        let n = positive.len().max(1) as f64;
        let survival = |i: usize| (positive.len() - i) as f64 / n;
        let lo = positive.first().copied().unwrap_or(1e-3);
        let hi = positive.last().copied().unwrap_or(1.0).max(lo * 10.0);
        let stride = positive.len().div_ceil(MAX_POINTS).max(1);
        let points: Vec<(f64, f64)> = positive
            .iter()
            .enumerate()
            .filter(|&(i, &l)| i % stride == 0 || l >= self.fit.xmin)
            .map(|(i, &l)| (l, survival(i)))
            .collect();
        // Above P = 1 a quarter of the axis (in decades) is left to the legend: the CCDF runs
        // corner to corner, and the xmin marker stops at it.
        let bottom = 0.5 / n;
        let top = (1.0 / bottom).cbrt().max(1.5);
        let mut chart = chart_frame(area, &self.title, pen)
            .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), (bottom..top).log_scale())?;
        draw_axes(
            &mut chart,
            "eigenvalue λ",
            "P(Λ ≥ λ)",
            TickLabels::default(),
            pen,
        )?;
        let mut legend = Legend::default();
        legend.avoid(points.iter().copied());
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, pen.px(2), DATA.mix(0.7).filled())),
            )?
            .label(legend.entry("empirical CCDF"))
            .legend(legend_box(DATA, pen));
        let tail_share = self.fit.num_pl_spikes as f64 / n;
        let (xmin, alpha) = (self.fit.xmin, self.fit.alpha);
        let law: Vec<(f64, f64)> = (0..=100)
            .map(|i| {
                let x = xmin * (self.fit.xmax / xmin).powf(i as f64 / 100.0);
                (x, tail_share * (x / xmin).powf(1.0 - alpha))
            })
            .collect();
        legend.avoid(law.iter().copied());
        let marker_top = tail_share.max(1.0 / n);
        legend.avoid((0..=24).map(|k| {
            (
                xmin,
                bottom * (marker_top / bottom).powf(f64::from(k) / 24.0),
            )
        }));
        chart
            .draw_series(LineSeries::new(law, pen.line(THEORY, 2)))?
            .label(legend.entry(format!(
                "power law α = {} ± {}, D = {}",
                format_number(alpha),
                format_number(self.fit.sigma),
                format_number(self.fit.ks_distance)
            )))
            .legend(legend_line(THEORY, pen));
        chart
            .draw_series(DashedLineSeries::new(
                [(xmin, bottom), (xmin, marker_top)],
                pen.px(6),
                pen.px(4),
                pen.line(MARKER, 2),
            ))?
            .label(legend.entry(format!(
                "xmin = {} ({} in the tail)",
                format_number(xmin),
                self.fit.num_pl_spikes
            )))
            .legend(legend_line(MARKER, pen));
        legend.draw(&mut chart, pen)
    }
}

/// Unfolded nearest-neighbour spacings against the GOE Wigner surmise and Poisson, with the
/// cumulative distributions beside them (where KS distances are read).
pub struct SpacingFigure<'a> {
    /// Caption.
    pub title: String,
    /// Spacings, unit mean.
    pub spacings: &'a [f64],
    /// Their tests.
    pub report: SpacingReport,
}

impl Figure for SpacingFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        let hi = 4.0;
        let bars = density_bars(self.spacings, 0.0, hi, 40);
        let y_hi = bars.iter().map(|b| b.2).fold(1.05, f64::max) * 1.1;
        let (width, _) = area.dim_in_pixel();
        let (main, side) = area.split_horizontally(width * 64 / 100);
        let mut chart =
            chart_frame(&main, &self.title, pen).build_cartesian_2d(0.0..hi, 0.0..y_hi)?;
        draw_axes(
            &mut chart,
            "unfolded spacing s",
            "P(s)",
            TickLabels::default(),
            pen,
        )?;
        let mut legend = Legend::default();
        draw_bars(
            &mut chart,
            &bars,
            format!("{} spacings", self.report.spacing_count),
            &mut legend,
            pen,
        )?;
        let laws = [
            (
                SpacingLaw::Goe,
                THEORY,
                "GOE surmise",
                self.report.spacing_p_goe,
            ),
            (
                SpacingLaw::Poisson,
                ALTERNATIVE,
                "Poisson",
                self.report.spacing_p_poisson,
            ),
        ];
        for (law, color, name, p_value) in laws {
            let curve = sampled_curve(|s| law.density(s), 0.0, hi, 200, y_hi);
            legend.avoid(curve.iter().copied());
            chart
                .draw_series(LineSeries::new(curve, pen.line(color, 2)))?
                .label(legend.entry(format!("{name} (KS p = {})", format_number(p_value))))
                .legend(legend_line(color, pen));
        }
        legend.draw(&mut chart, pen)?;
        self.draw_cumulative(&side, &laws.map(|(law, color, ..)| (law, color)), pen)
    }
}

impl SpacingFigure<'_> {
    fn draw_cumulative<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        laws: &[(SpacingLaw, RGBColor)],
        pen: Pen,
    ) -> DrawResult<DB> {
        let hi = 3.0;
        let mut sorted = self.spacings.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        let stride = sorted.len().div_ceil(MAX_POINTS).max(1);
        let steps: Vec<(f64, f64)> = sorted
            .iter()
            .enumerate()
            .filter(|&(i, &s)| i % stride == 0 && s <= hi)
            .map(|(i, &s)| (s, (i + 1) as f64 / n))
            .collect();
        let mut chart = ChartBuilder::on(area)
            .caption("cumulative", pen.font(14))
            .margin(pen.px(12))
            .x_label_area_size(pen.px(42))
            .y_label_area_size(pen.px(36))
            .build_cartesian_2d(0.0..hi, 0.0..1.0)?;
        plain_mesh(&mut chart, pen, (10, 11))
            .x_labels(4)
            .y_labels(3)
            .x_desc("s")
            .draw()?;
        for &(law, color) in laws {
            chart.draw_series(LineSeries::new(
                sampled_curve(|s| law.cdf(s), 0.0, hi, 100, 1.0),
                pen.line(color, 1),
            ))?;
        }
        chart.draw_series(LineSeries::new(steps, pen.line(DATA, 2)))?;
        Ok(())
    }
}

/// Σ²(L), the variance of the number of unfolded levels in windows of length L, against the
/// exact GOE curve (logarithmic: rigid levels) and Poisson (Σ² = L).
pub struct NumberVarianceFigure<'a> {
    /// Caption.
    pub title: String,
    /// Σ²(L) at each L, with the references.
    pub values: &'a [NumberVariance],
}

impl Figure for NumberVarianceFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        let l_max = self.values.iter().map(|v| v.length).fold(1.0, f64::max);
        let y_hi = self
            .values
            .iter()
            .map(|v| v.value)
            .fold(goe_number_variance(l_max), f64::max)
            * 1.2;
        let mut chart =
            chart_frame(area, &self.title, pen).build_cartesian_2d(0.0..l_max * 1.02, 0.0..y_hi)?;
        draw_axes(
            &mut chart,
            "interval length L (mean spacings)",
            "Σ²(L)",
            TickLabels::default(),
            pen,
        )?;
        let mut legend = Legend::default();
        let goe = sampled_curve(goe_number_variance, 0.05, l_max, 200, y_hi);
        let poisson = sampled_curve(|l| l, 0.0, l_max.min(y_hi), 24, y_hi);
        legend.avoid(goe.iter().chain(&poisson).copied());
        legend.avoid(self.values.iter().map(|v| (v.length, v.value)));
        chart
            .draw_series(LineSeries::new(goe, pen.line(THEORY, 2)))?
            .label(legend.entry("GOE (exact)"))
            .legend(legend_line(THEORY, pen));
        chart
            .draw_series(LineSeries::new(poisson, pen.line(ALTERNATIVE, 2)))?
            .label(legend.entry("Poisson, Σ² = L"))
            .legend(legend_line(ALTERNATIVE, pen));
        chart
            .draw_series(
                self.values
                    .iter()
                    .map(|v| Circle::new((v.length, v.value), pen.px(4), DATA.filled())),
            )?
            .label(legend.entry("layer"))
            .legend(legend_box(DATA, pen));
        legend.draw(&mut chart, pen)
    }
}

/// Porter-Thomas KS p-values of the right singular vectors along the spectrum (ascending
/// eigenvalue), their moving average, and the 5 % level: random vectors scatter uniformly,
/// learned directions (at the top) fall below the line.
pub struct PorterThomasFigure<'a> {
    /// Caption.
    pub title: String,
    /// The test.
    pub test: &'a PorterThomas,
}

impl Figure for PorterThomasFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        let count = self.test.p_values.len().max(1);
        // p-values fill [0, 1] everywhere: the legend gets the band above 1.
        let mut chart =
            chart_frame(area, &self.title, pen).build_cartesian_2d(0.0..count as f64, 0.0..1.45)?;
        draw_axes(
            &mut chart,
            "eigenvector rank (ascending eigenvalue)",
            "KS p-value against N(0, 1/M)",
            TickLabels {
                whole_x: true,
                ..TickLabels::default()
            },
            pen,
        )?;
        let mut legend = Legend::default();
        legend.avoid(
            self.test
                .p_values
                .iter()
                .enumerate()
                .map(|(i, &p)| (i as f64, p)),
        );
        legend.avoid(
            self.test
                .windowed
                .iter()
                .enumerate()
                .map(|(i, &p)| (i as f64, p)),
        );
        chart
            .draw_series(
                self.test
                    .p_values
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.is_finite())
                    .map(|(i, &p)| Circle::new((i as f64, p), pen.px(2), DATA.mix(0.6).filled())),
            )?
            .label(legend.entry(format!("vectors ({} rejected at 5 %)", self.test.rejected)))
            .legend(legend_box(DATA, pen));
        chart
            .draw_series(LineSeries::new(
                self.test
                    .windowed
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| (i as f64, p)),
                pen.line(EXTRA, 2),
            ))?
            .label(legend.entry(format!("moving average over {}", self.test.window)))
            .legend(legend_line(EXTRA, pen));
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.05), (count as f64, 0.05)],
                pen.px(6),
                pen.px(4),
                pen.line(THEORY, 2),
            ))?
            .label(legend.entry("5 % level"))
            .legend(legend_line(THEORY, pen));
        legend.draw(&mut chart, pen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reported_bulk_keeps_the_law_and_moves_its_edge() {
        // Rescaling σ² moves both edges by one factor: λ₋/λ₊ = ((1 − 1/√Q)/(1 + 1/√Q))².
        let (q, lambda_plus) = (4.0, 7.5);
        let law = reported_bulk(q, 0.3, lambda_plus).unwrap();
        let (lo, hi) = law.edges();
        assert!((hi - lambda_plus).abs() < 1e-12);
        assert!((lo / hi - (0.5f64 / 1.5).powi(2)).abs() < 1e-12);
        assert!((law.cdf(hi) - 1.0).abs() < 1e-12);
        // Q < 1 (never a layer's: N ≥ M) keeps its atom 1 − Q at 0 and moves its edge alike.
        let wide = reported_bulk(0.5, 0.3, 1.0).unwrap();
        assert!((wide.edges().1 - 1.0).abs() < 1e-12);
        assert!((wide.atom() - 0.5).abs() < 1e-15);
    }
}
