//! Drawing helpers every figure shares: palette, densities, frames, bars, legends, axes and
//! tick labels.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, Pen};

/// Colours shared by every figure: data, theory, the alternative law, a baseline, markers.
pub(crate) mod palette {
    use plotters::style::RGBColor;

    /// Measured values.
    pub const DATA: RGBColor = RGBColor(31, 119, 180);
    /// The random-matrix prediction.
    pub const THEORY: RGBColor = RGBColor(214, 39, 40);
    /// The alternative (Poisson, uncorrelated) law.
    pub const ALTERNATIVE: RGBColor = RGBColor(44, 160, 44);
    /// A second model (initialisation) overlaid.
    pub const BASELINE: RGBColor = RGBColor(255, 127, 14);
    /// Thresholds and edges.
    pub const MARKER: RGBColor = RGBColor(90, 90, 90);
    /// A third curve.
    pub const EXTRA: RGBColor = RGBColor(148, 103, 189);
}

/// Histogram of `values` on [lo, hi) as (left, right, density) bars, the density normalised by
/// the count of all values so that the bars and a probability density share one scale.
pub(crate) fn density_bars(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64, f64)> {
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values {
        if v >= lo && v < hi {
            let bin = (((v - lo) / width) as usize).min(bins - 1);
            counts[bin] += 1;
        }
    }
    let total = values.len().max(1) as f64;
    counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| {
            let left = lo + i as f64 * width;
            (left, left + width, count as f64 / (total * width))
        })
        .collect()
}

/// The density histogram of `values` as a curve through the bars' midpoints (for overlaying
/// several distributions on one chart).
pub(crate) fn density_curve(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64)> {
    density_bars(values, lo, hi, bins)
        .into_iter()
        .map(|(left, right, density)| ((left + right) / 2.0, density))
        .collect()
}

/// The frame every chart starts from: its caption and the room for tick and axis labels.
pub(crate) fn chart_frame<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    pen: Pen,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, pen.font(17))
        .margin(pen.px(12))
        .x_label_area_size(pen.px(42))
        .y_label_area_size(pen.px(64));
    builder
}

/// Density bars in the data colour, an entry of `legend`, which keeps clear of them.
pub(crate) fn draw_bars<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    bars: &[(f64, f64, f64)],
    label: String,
    legend: &mut Legend,
    pen: Pen,
) -> DrawResult<DB> {
    legend.avoid_bars(bars);
    let label = legend.entry(label);
    chart
        .draw_series(bars.iter().map(|&(left, right, density)| {
            Rectangle::new(
                [(left, 0.0), (right, density)],
                palette::DATA.mix(0.5).filled(),
            )
        }))?
        .label(label)
        .legend(legend_box(palette::DATA, pen));
    Ok(())
}

/// `points` evenly spaced samples of `f` on [lo, hi], each value capped at `cap` so curves that
/// diverge (Marchenko-Pastur at λ₋ = 0) stay inside the chart.
pub(crate) fn sampled_curve(
    f: impl Fn(f64) -> f64,
    lo: f64,
    hi: f64,
    points: usize,
    cap: f64,
) -> Vec<(f64, f64)> {
    (0..=points)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / points as f64;
            (x, f(x).min(cap))
        })
        .collect()
}

/// A legend entry's sample: a short horizontal line in `color`.
pub(crate) fn legend_line(
    color: RGBColor,
    pen: Pen,
) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + pen.offset(18), y)], pen.line(color, 2))
}

/// A legend entry's sample: a filled square in `color`.
pub(crate) fn legend_box(
    color: RGBColor,
    pen: Pen,
) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| {
        Rectangle::new(
            [
                (x, y - pen.offset(5)),
                (x + pen.offset(12), y + pen.offset(5)),
            ],
            color.mix(0.5).filled(),
        )
    }
}

/// A figure's legend: its entries, counted as they are added, and the data it must not cover,
/// so that it is drawn where it hides no point, bar or line of the chart.
#[derive(Debug, Default)]
pub(crate) struct Legend {
    entries: usize,
    longest: usize,
    data: Vec<(f64, f64)>,
}

impl Legend {
    /// `label` as an entry of the legend (pass it to `.label()`).
    pub(crate) fn entry(&mut self, label: impl Into<String>) -> String {
        let label = label.into();
        self.entries += 1;
        self.longest = self.longest.max(label.chars().count());
        label
    }

    /// Points of the chart, in its coordinates, the legend must leave visible.
    pub(crate) fn avoid(&mut self, points: impl IntoIterator<Item = (f64, f64)>) {
        self.data.extend(points);
    }

    /// A vertical line at `x` from `y0` to `y1` the legend must leave visible.
    pub(crate) fn avoid_vertical(&mut self, x: f64, (y0, y1): (f64, f64)) {
        self.avoid((0..=24).map(|k| (x, y0 + (y1 - y0) * f64::from(k) / 24.0)));
    }

    /// Bars `(left, right, height)` from 0, bodies included.
    pub(crate) fn avoid_bars(&mut self, bars: &[(f64, f64, f64)]) {
        for &(left, right, height) in bars {
            for k in 0..=6 {
                let y = height * f64::from(k) / 6.0;
                self.avoid([(left, y), ((left + right) / 2.0, y), (right, y)]);
            }
        }
    }

    /// The legend's box in pixels drawn, an estimate on the generous side: a line of the
    /// 13-pixel font per entry, its sample and the longest label's width.
    fn size(&self, pen: Pen) -> (i32, i32) {
        (
            pen.offset(44 + 13 * self.longest as i32 / 2),
            pen.offset(14 + 17 * self.entries as i32),
        )
    }

    /// Where the legend hides the fewest of the chart's points: the first of the corners and
    /// the top and bottom middles that hides none (upper right first), else the one hiding
    /// fewest.
    fn position<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
        &self,
        chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
        pen: Pen,
    ) -> SeriesLabelPosition {
        let (x_pixels, y_pixels) = chart.plotting_area().get_pixel_range();
        let (width, height) = self.size(pen);
        let margin = pen.offset(10);
        let (left, right) = (x_pixels.start + margin, x_pixels.end - margin);
        let (top, bottom) = (y_pixels.start + margin, y_pixels.end - margin);
        let middle = (x_pixels.start + x_pixels.end - width) / 2;
        let candidates = [
            (SeriesLabelPosition::UpperRight, right - width, top),
            (SeriesLabelPosition::UpperLeft, left, top),
            (SeriesLabelPosition::UpperMiddle, middle, top),
            (
                SeriesLabelPosition::LowerRight,
                right - width,
                bottom - height,
            ),
            (SeriesLabelPosition::LowerLeft, left, bottom - height),
            (SeriesLabelPosition::LowerMiddle, middle, bottom - height),
        ];
        let pixels: Vec<(i32, i32)> = self
            .data
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&point| chart.backend_coord(&point))
            .collect();
        let hidden = |x0: i32, y0: i32| {
            pixels
                .iter()
                .filter(|&&(x, y)| x >= x0 && x <= x0 + width && y >= y0 && y <= y0 + height)
                .count()
        };
        candidates
            .into_iter()
            .map(|(position, x0, y0)| (hidden(x0, y0), position))
            .min_by_key(|(count, _)| *count)
            .map_or(SeriesLabelPosition::UpperRight, |(_, position)| position)
    }

    /// Draws the series labels in a translucent box where they hide least.
    pub(crate) fn draw<'a, DB, X, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
        pen: Pen,
    ) -> DrawResult<DB>
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let position = self.position(chart, pen);
        chart
            .configure_series_labels()
            .position(position)
            .margin(pen.px(10))
            .legend_area_size(pen.px(30))
            .label_font(pen.font(13))
            .background_style(WHITE.mix(0.85))
            .border_style(pen.line(palette::MARKER.mix(0.5), 1))
            .draw()
    }
}

/// How ticks are labelled: at whole numbers only (layer indices, steps, counts), or on the x
/// axis by name (x = 0, 1, … is `x_names[x]`: layers), rotated to read upwards.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TickLabels<'n> {
    pub whole_x: bool,
    pub whole_y: bool,
    pub x_names: &'n [String],
}

/// Names on an axis at most: more are thinned to every k-th.
const NAMED_TICKS: usize = 40;
/// Characters of a tick name at most: longer ones keep their end ("…layer4.1.conv2.weight").
const NAME_CHARACTERS: usize = 22;

impl TickLabels<'_> {
    /// Pixels below the x axis for its labels: rotated names need their length.
    pub(crate) fn x_label_area(&self) -> u32 {
        let longest = self
            .x_names
            .iter()
            .map(|name| name.chars().count().min(NAME_CHARACTERS + 1))
            .max()
            .unwrap_or(0);
        if longest == 0 {
            42
        } else {
            30 + 7 * longest as u32
        }
    }
}

/// A tick name within [`NAME_CHARACTERS`]: without `.weight`, then from its block number on
/// (`…11.attention.output.dense`), then with its middle cut (`…11.atte…output.dense`), so
/// that the block a layer sits in stays readable.
fn short_name(name: &str) -> String {
    let name = name.strip_suffix(".weight").unwrap_or(name);
    let chars = |text: &str| text.chars().count();
    if chars(name) <= NAME_CHARACTERS {
        return name.to_string();
    }
    let segments: Vec<&str> = name.split('.').collect();
    let from_block = segments
        .iter()
        .rposition(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .map(|at| segments[at..].join("."));
    match from_block {
        Some(rest) if chars(&rest) < NAME_CHARACTERS => format!("…{rest}"),
        Some(rest) => {
            let block = rest.split('.').next().unwrap_or_default();
            let keep = NAME_CHARACTERS.saturating_sub(chars(block) + 3);
            let tail: String = rest.chars().skip(chars(&rest) - keep).collect();
            format!("…{block}.…{tail}")
        }
        None => {
            let tail: String = name.chars().skip(chars(name) - NAME_CHARACTERS).collect();
            format!("…{tail}")
        }
    }
}

/// Writes `names[i]` under x = i of `chart` (drawn on `area`, the chart's whole panel), rotated
/// to read upwards and ending just below the axis (plotters centres rotated tick labels on the
/// axis, half inside the chart); every k-th name when there are more than 40.
pub(crate) fn draw_x_names<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    names: &[String],
    pen: Pen,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = TextStyle::from(pen.font(12).transform(FontTransform::Rotate270))
        .pos(Pos::new(HPos::Right, VPos::Center));
    let (base_x, base_y) = area.get_base_pixel();
    let bottom = chart.y_range().start;
    let every = names.len().div_ceil(NAMED_TICKS).max(1);
    for (index, name) in names.iter().enumerate().step_by(every) {
        let (x, y) = chart.backend_coord(&(index as f64, bottom));
        area.draw_text(
            &short_name(name),
            &style,
            (x - base_x, y - base_y + pen.offset(8)),
        )?;
    }
    Ok(())
}

/// The axes of every figure: ticks, no grid, labels with units, labelled as `ticks` says.
pub(crate) fn draw_axes<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    ticks: TickLabels,
    pen: Pen,
) -> DrawResult<DB>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let whole_label = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            tick_label(x)
        } else {
            String::new()
        }
    };
    let mut mesh = plain_mesh(chart, pen, (13, 15));
    mesh.x_desc(x_desc).y_desc(y_desc);
    let unlabelled = |_: &f64| String::new();
    if !ticks.x_names.is_empty() {
        // Ticks at the names' positions; the names themselves are drawn by [`draw_x_names`].
        mesh.x_labels(ticks.x_names.len().min(NAMED_TICKS))
            .x_label_formatter(&unlabelled);
    } else if ticks.whole_x {
        mesh.x_label_formatter(&whole_label);
    }
    if ticks.whole_y {
        mesh.y_label_formatter(&whole_label);
    }
    mesh.draw()
}

/// Every chart's mesh: no grid; axes, tick marks and text sized by `pen`, tick labels at
/// `sizes.0` pixels and axis descriptions at `sizes.1`, numbers as [`tick_label`] writes them.
pub(crate) fn plain_mesh<'a, 'b, DB, X, Y>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    pen: Pen,
    (label, description): (u32, u32),
) -> plotters::chart::MeshStyle<'a, 'b, X, Y, DB>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh()
        .set_all_tick_mark_size(pen.px(5))
        .axis_style(pen.line(BLACK, 1))
        .label_style(pen.font(label))
        .axis_desc_style(pen.font(description))
        .x_label_formatter(&tick_label)
        .y_label_formatter(&tick_label);
    mesh
}

/// A tick label: at most four significant digits, no trailing zeros, powers of ten as 1e-5.
pub(super) fn tick_label(value: &f64) -> String {
    let value = *value;
    let magnitude = value.abs();
    // Ticks are multiples of a step, and 0 comes out as ±2e-16.
    if magnitude < 1e-12 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&magnitude) {
        let text = format!("{value:.1e}");
        return text.replace(".0e", "e");
    }
    let decimals = (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::{short_name, NAME_CHARACTERS};

    /// Long names keep their block number and their end, and stay distinct.
    #[test]
    fn short_names_keep_the_block() {
        assert_eq!(short_name("fc1.weight"), "fc1");
        let names: Vec<String> = (0..12)
            .map(|block| {
                short_name(&format!(
                    "encoder.layer.{block}.attention.output.dense.weight"
                ))
            })
            .collect();
        for (block, name) in names.iter().enumerate() {
            assert!(name.chars().count() <= NAME_CHARACTERS + 1, "{name}");
            assert!(name.contains(&format!("…{block}.")), "{name}");
            assert!(name.ends_with("dense"), "{name}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 12);
        assert_eq!(
            short_name("model.layers.7.self_attn.q_proj.weight"),
            "…7.self_attn.q_proj"
        );
        assert!(short_name("a_very_long_layer_name_without_any_number.weight").starts_with('…'));
    }
}
