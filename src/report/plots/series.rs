//! Curves and point sets on shared axes: metrics over training, metrics across layers, theory
//! against simulation. One chart type, linear or logarithmic axes, optionally in a grid.
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::palette::MARKER;
use super::{
    chart_frame, density_bars, draw_axes, draw_bars, draw_x_names, legend_box, legend_line, Legend,
};
use super::{DrawResult, Figure, Pen, TickLabels, FIGURE_SIZE};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A solid line through the points.
    Line,
    /// A dashed line (a second reference curve).
    Dashed,
    /// Filled circles.
    Points,
}

/// A named set of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// The points; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
    /// Line, dashed line or points.
    pub mark: Mark,
    /// Its colour.
    pub color: RGBColor,
}

/// One chart of several series.
#[derive(Debug, Clone, Default)]
pub struct SeriesFigure {
    /// Caption.
    pub title: String,
    /// X-axis label, with units.
    pub x_desc: String,
    /// Y-axis label, with units.
    pub y_desc: String,
    /// The series, drawn in order.
    pub series: Vec<Series>,
    /// Logarithmic x axis (non-positive x skipped).
    pub log_x: bool,
    /// Logarithmic y axis (non-positive y skipped).
    pub log_y: bool,
    /// Tick labels on the x axis at whole numbers only (layer indices, steps).
    pub integer_x: bool,
    /// Names of x = 0, 1, …, written at the ticks instead of the numbers (layer names).
    pub x_names: Vec<String>,
    /// A shaded horizontal band (y from, y to, legend text), e.g. the well-trained α range.
    pub band: Option<(f64, f64, String)>,
    /// Standard errors of simulated points, drawn as vertical bars with caps.
    pub error_bars: Vec<YError>,
}

/// y ± half_width at x: a simulated point's standard error.
#[derive(Debug, Clone, Copy)]
pub struct YError {
    /// Where.
    pub x: f64,
    /// The point.
    pub y: f64,
    /// One standard error.
    pub half_width: f64,
    /// Its series' colour.
    pub color: RGBColor,
}

impl YError {
    /// The bars of `points` ((x, y, standard error) triples) in `color`.
    pub fn of(points: impl IntoIterator<Item = (f64, f64, f64)>, color: RGBColor) -> Vec<Self> {
        points
            .into_iter()
            .map(|(x, y, half_width)| Self {
                x,
                y,
                half_width,
                color,
            })
            .collect()
    }

    /// Its ends, the lower one kept above 0 on a logarithmic axis (at y/10).
    fn ends(&self, log: bool) -> (f64, f64) {
        let low = self.y - self.half_width;
        let low = if log && low <= 0.0 {
            self.y / 10.0
        } else {
            low
        };
        (low, self.y + self.half_width)
    }
}

/// Series colours in order, for figures with one series per layer.
pub const CYCLE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

impl SeriesFigure {
    fn visible(&self, (x, y): (f64, f64)) -> bool {
        x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0)
    }

    fn range(&self, values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if !lo.is_finite() {
            return if log { (0.1, 10.0) } else { (0.0, 1.0) };
        }
        if log {
            let (lo, hi) = if hi > lo {
                (lo, hi)
            } else {
                (lo / 2.0, hi * 2.0)
            };
            let (lo, hi) = (lo / 1.3, hi * 1.3);
            // Ticks sit at powers of ten: an axis within one decade would show one at most.
            if hi / lo < 10.0 {
                (
                    10f64.powf(lo.log10().floor()),
                    10f64.powf(hi.log10().ceil()),
                )
            } else {
                (lo, hi)
            }
        } else {
            let pad = if hi > lo {
                (hi - lo) * 0.06
            } else {
                lo.abs().max(1.0) * 0.1
            };
            (lo - pad, hi + pad)
        }
    }

    /// How its ticks are labelled.
    fn tick_labels(&self) -> TickLabels<'_> {
        TickLabels {
            whole_x: self.integer_x,
            whole_y: self.counts_on_y(),
            x_names: &self.x_names,
        }
    }

    /// Whether every visible y is a whole number (spike counts, ranks): its axis is labelled at
    /// whole numbers only, not every 0.1.
    fn counts_on_y(&self) -> bool {
        let mut values = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|&p| self.visible(p))
            .map(|(_, y)| y)
            .peekable();
        values.peek().is_some() && values.all(|y| y == y.round())
    }

    fn draw_on<DB, X, Y>(
        &self,
        area: &DrawingArea<DB, Shift>,
        x: X,
        y: Y,
        pen: Pen,
    ) -> DrawResult<DB>
    where
        DB: DrawingBackend,
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let ticks = self.tick_labels();
        let mut chart = chart_frame(area, &self.title, pen)
            .x_label_area_size(pen.px(ticks.x_label_area()))
            .build_cartesian_2d(x, y)?;
        draw_axes(&mut chart, &self.x_desc, &self.y_desc, ticks, pen)?;
        if !self.x_names.is_empty() {
            draw_x_names(area, &chart, &self.x_names, pen)?;
        }
        let (x_range, y_range) = (chart.x_range(), chart.y_range());
        let mut legend = Legend::default();
        if let Some((from, to, name)) = &self.band {
            let (from, to) = (from.max(y_range.start), to.min(y_range.end));
            if from < to {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x_range.start, from), (x_range.end, to)],
                        MARKER.mix(0.12).filled(),
                    )))?
                    .label(legend.entry(name.as_str()))
                    .legend(legend_box(MARKER, pen));
            }
        }
        for series in &self.series {
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|&p| self.visible(p))
                .collect();
            legend.avoid(points.iter().copied());
            let color = series.color;
            let drawn = match series.mark {
                Mark::Line => chart.draw_series(LineSeries::new(points, pen.line(color, 2)))?,
                Mark::Dashed => chart.draw_series(DashedLineSeries::new(
                    points,
                    pen.px(6),
                    pen.px(4),
                    pen.line(color, 2),
                ))?,
                Mark::Points => chart.draw_series(
                    points
                        .into_iter()
                        .map(move |p| Circle::new(p, pen.px(4), color.filled())),
                )?,
            };
            if !series.name.is_empty() {
                match series.mark {
                    Mark::Points => drawn
                        .label(legend.entry(series.name.as_str()))
                        .legend(legend_box(color, pen)),
                    _ => drawn
                        .label(legend.entry(series.name.as_str()))
                        .legend(legend_line(color, pen)),
                };
            }
        }
        let bars: Vec<_> = self
            .error_bars
            .iter()
            .filter(|bar| bar.half_width.is_finite() && self.visible((bar.x, bar.y)))
            .collect();
        for bar in &bars {
            let (low, high) = bar.ends(self.log_y);
            legend.avoid([(bar.x, low), (bar.x, high)]);
        }
        chart.draw_series(bars.into_iter().map(|bar| {
            let (low, high) = bar.ends(self.log_y);
            ErrorBar::new_vertical(bar.x, low, bar.y, high, pen.line(bar.color, 1), pen.px(7))
        }))?;
        if self.series.iter().any(|s| !s.name.is_empty()) || self.band.is_some() {
            legend.draw(&mut chart, pen)?;
        }
        Ok(())
    }
}

impl Figure for SeriesFigure {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        let points = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().copied())
                .filter(|&p| self.visible(p))
        };
        let band = self.band.iter().flat_map(|b| [b.0, b.1]);
        let bars = self
            .error_bars
            .iter()
            .filter(|bar| bar.half_width.is_finite() && self.visible((bar.x, bar.y)))
            .flat_map(|bar| {
                let (low, high) = bar.ends(self.log_y);
                [low, high]
            });
        let (x0, x1) = self.range(points().map(|p| p.0), self.log_x);
        let (y0, y1) = self.range(points().map(|p| p.1).chain(band).chain(bars), self.log_y);
        match (self.log_x, self.log_y) {
            (false, false) => self.draw_on(area, x0..x1, y0..y1, pen),
            (true, false) => self.draw_on(area, (x0..x1).log_scale(), y0..y1, pen),
            (false, true) => self.draw_on(area, x0..x1, (y0..y1).log_scale(), pen),
            (true, true) => self.draw_on(area, (x0..x1).log_scale(), (y0..y1).log_scale(), pen),
        }
    }
}

/// Charts in a grid of `columns` columns under one title.
#[derive(Debug, Clone, Default)]
pub struct PanelsFigure {
    /// The title above the grid.
    pub title: String,
    /// The charts, row by row.
    pub panels: Vec<SeriesFigure>,
    /// Charts per row.
    pub columns: usize,
}

impl Figure for PanelsFigure {
    /// Each row is 4/5 of a one-panel figure high, plus what rotated names below its axis need.
    fn size(&self) -> (u32, u32) {
        let columns = self.columns.max(1);
        let rows = self.panels.len().div_ceil(columns).max(1);
        let (width, height) = FIGURE_SIZE;
        let names = self
            .panels
            .iter()
            .map(|panel| panel.tick_labels().x_label_area())
            .max()
            .unwrap_or(0)
            .saturating_sub(TickLabels::default().x_label_area());
        (
            width * columns as u32,
            40 + rows as u32 * (height * 4 / 5 + names),
        )
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        let area = area.titled(&self.title, pen.font(20))?;
        let columns = self.columns.max(1);
        let rows = self.panels.len().div_ceil(columns).max(1);
        for (panel, cell) in self.panels.iter().zip(area.split_evenly((rows, columns))) {
            panel.draw(&cell, pen)?;
        }
        Ok(())
    }
}

/// A density histogram of samples with curves over it (a simulation against its law).
#[derive(Debug, Clone, Default)]
pub struct HistogramFigure {
    /// Caption.
    pub title: String,
    /// X-axis label.
    pub x_desc: String,
    /// Legend text of the bars.
    pub name: String,
    /// The samples.
    pub values: Vec<f64>,
    /// The histogram's range.
    pub range: (f64, f64),
    /// Bars.
    pub bins: usize,
    /// Curves drawn over the bars (their points, already sampled).
    pub curves: Vec<Series>,
}

impl Figure for HistogramFigure {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB> {
        let (lo, hi) = self.range;
        let bars = density_bars(&self.values, lo, hi, self.bins.max(1));
        let tallest = bars
            .iter()
            .map(|b| b.2)
            .chain(
                self.curves
                    .iter()
                    .flat_map(|s| s.points.iter().map(|p| p.1)),
            )
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let y_hi = if tallest > 0.0 { tallest * 1.15 } else { 1.0 };
        let mut chart =
            chart_frame(area, &self.title, pen).build_cartesian_2d(lo..hi, 0.0..y_hi)?;
        draw_axes(
            &mut chart,
            &self.x_desc,
            "density",
            TickLabels::default(),
            pen,
        )?;
        let mut legend = Legend::default();
        draw_bars(&mut chart, &bars, self.name.clone(), &mut legend, pen)?;
        for curve in &self.curves {
            let color = curve.color;
            let points: Vec<(f64, f64)> = curve
                .points
                .iter()
                .map(|&(x, y)| (x, y.min(y_hi)))
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect();
            legend.avoid(points.iter().copied());
            chart
                .draw_series(LineSeries::new(points, pen.line(color, 2)))?
                .label(legend.entry(curve.name.as_str()))
                .legend(legend_line(color, pen));
        }
        legend.draw(&mut chart, pen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers of an SVG's text elements.
    fn numbers(svg: &str) -> Vec<f64> {
        svg.split("<text")
            .skip(1)
            .filter_map(|element| {
                let text = &element[element.find('>')? + 1..element.find("</text>")?];
                text.trim().parse().ok()
            })
            .collect()
    }

    /// Counts on the y axis are labelled at whole numbers only; other values keep decimals.
    #[test]
    fn count_axes_have_whole_ticks() {
        let figure = |ys: [f64; 3]| SeriesFigure {
            series: vec![Series {
                name: "layers".into(),
                points: vec![(10.0, ys[0]), (20.0, ys[1]), (30.0, ys[2])],
                mark: Mark::Points,
                color: CYCLE[0],
            }],
            ..SeriesFigure::default()
        };
        let counts = numbers(&super::super::to_svg(&figure([0.0, 3.0, 1.0])).unwrap());
        assert!(!counts.is_empty());
        assert!(counts.iter().all(|v| v.fract() == 0.0), "{counts:?}");
        let values = numbers(&super::super::to_svg(&figure([0.2, 0.35, 0.3])).unwrap());
        assert!(values.iter().any(|v| v.fract() != 0.0), "{values:?}");
    }
}
