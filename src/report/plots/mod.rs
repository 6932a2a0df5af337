//! Figures drawn with plotters, as SVG (text kept as `<text>`, for browsers and tests) or PNG
//! (rasterised with the bundled DejaVu Sans, so no fontconfig or system font is needed).
//!
//! Each figure is a plain struct of the numbers it shows and implements [`Figure`]; the same
//! drawing code serves both formats.
//!
//! ```no_run
//! use rmt_torch::report::plots::{write_analysis_figures, FigureFiles, ImageFormat};
//! use rmt_torch::{analyze, AnalysisRequest, Model};
//!
//! let model = Model::load("models/digits_cnn_trained.pt")?;
//! let mut request = AnalysisRequest::default();
//! request.figure_data = true;
//! let analysis = analyze(&model, &request.resolve()?)?;
//! let files = FigureFiles::new(&[ImageFormat::Png]);
//! let written = write_analysis_figures(&analysis, None, "figures".as_ref(), &files)?;
//! println!("{} figures", written.len());
//! # Ok::<(), rmt_torch::Error>(())
//! ```
//!
//! [`layer`] has the per-layer figures of Thamm, Staats & Rosenow (2022) and Aarts (2025),
//! [`model`] the per-model overview, [`jacobian`] the Jacobian spectrum, [`series`] the
//! metric-over-time and theory-versus-simulation curves, [`track`] spectra over training.
pub mod hessian;
pub mod jacobian;
pub mod layer;
pub mod model;
pub mod series;
pub(crate) mod text;
pub mod theory;
pub mod track;

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analysis::Analysis;
use crate::error::{Error, Result};
use crate::option_names::option_names;
use crate::workflows::jacobian::JacobianAnalysis;

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/DejaVuSans-LICENSE.txt`): covers the
/// Greek letters, sub- and superscripts the axis labels use.
pub(crate) const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The font family every figure's text uses.
pub(crate) const FAMILY: &str = "sans-serif";

/// Pixel size of a one-panel figure.
pub const FIGURE_SIZE: (u32, u32) = (720, 440);

/// What drawing a figure returns: plotters' error for the backend in use.
pub type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Something drawable on any plotters backend.
pub trait Figure {
    /// Its layout size in pixels.
    fn size(&self) -> (u32, u32) {
        FIGURE_SIZE
    }

    /// Draws the figure on `area` (already filled white, its layout size at `pen`'s scale),
    /// every length in pixels through `pen`.
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, pen: Pen) -> DrawResult<DB>;
}

/// The scale a figure is drawn at. Every length in pixels a figure sets (text, line widths,
/// markers, margins) goes through it, so that a figure drawn at scale 2 is the same figure
/// with twice the pixels each way, curves drawn at the finer resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pen {
    scale: f64,
}

impl Default for Pen {
    /// Scale 1: a pixel of the layout is a pixel drawn.
    fn default() -> Self {
        Self { scale: 1.0 }
    }
}

impl Pen {
    /// A pen at `scale` (within [`PLOT_SCALES`] for figure files).
    pub fn new(scale: f64) -> Self {
        Self { scale }
    }

    /// `pixels` of the layout in pixels drawn (a nonzero length stays at least one).
    pub(crate) fn px(self, pixels: u32) -> u32 {
        let drawn = (f64::from(pixels) * self.scale).round() as u32;
        drawn.max(pixels.min(1))
    }

    /// A signed offset of `pixels` in pixels drawn.
    pub(crate) fn offset(self, pixels: i32) -> i32 {
        (f64::from(pixels) * self.scale).round() as i32
    }

    /// A layout size in pixels drawn.
    pub(crate) fn size(self, (width, height): (u32, u32)) -> (u32, u32) {
        (self.px(width), self.px(height))
    }

    /// The figures' font at `size` pixels of the layout.
    pub(crate) fn font(self, size: u32) -> FontDesc<'static> {
        (FAMILY, f64::from(size) * self.scale).into_font()
    }

    /// A line of `width` pixels of the layout in `color`.
    pub(crate) fn line<C: Color>(self, color: C, width: u32) -> ShapeStyle {
        color.stroke_width(self.px(width))
    }
}

/// Image formats of figure files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageFormat {
    /// Raster, for viewers and slides.
    #[default]
    Png,
    /// Vector, text kept as text.
    Svg,
}

option_names!(ImageFormat, "image format", { Png => "png", Svg => "svg" });

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font checked in with the sources; a failure here is a
        // build defect, caught by every figure test.
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            panic!("the bundled DejaVu Sans font does not parse");
        }
    });
}

fn draw_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::Plot(format!("{what}: {err}"))
}

/// Scales a figure may be drawn at: a PNG of 720 × 440 at scale 8 is 5760 × 3520 pixels.
pub const PLOT_SCALES: std::ops::RangeInclusive<f64> = 0.25..=8.0;

/// Widths and heights, in pixels, a one-panel figure's layout may have.
pub const PLOT_SIZES: std::ops::RangeInclusive<u32> = 200..=8000;

/// How figure files are written: their formats, the layout size of a one-panel figure (figures
/// of several panels scale with it) and the scale they are drawn at.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureFiles {
    /// One file per format.
    pub formats: Vec<ImageFormat>,
    /// Pixels of a one-panel figure's layout, width × height (default [`FIGURE_SIZE`]): a
    /// larger size gives the data more room, text keeps its size.
    pub panel_size: (u32, u32),
    /// Everything drawn (layout, text, lines) multiplied by this, in [`PLOT_SCALES`] (default
    /// 1): at scale 2 a figure has twice the pixels each way and looks the same, for print (a
    /// 720-pixel figure at scale 2.5 is 6 inches wide at 300 dpi).
    pub scale: f64,
}

impl FigureFiles {
    /// `formats` at the default size and scale.
    pub fn new(formats: &[ImageFormat]) -> Self {
        Self {
            formats: formats.to_vec(),
            panel_size: FIGURE_SIZE,
            scale: 1.0,
        }
    }

    /// Refuses a scale outside [`PLOT_SCALES`] and a panel side outside [`PLOT_SIZES`].
    pub fn check(&self) -> Result<()> {
        let (width, height) = self.panel_size;
        if !PLOT_SCALES.contains(&self.scale) {
            return Err(Error::InvalidOption(format!(
                "plot scale must be within {}–{}, got {}",
                PLOT_SCALES.start(),
                PLOT_SCALES.end(),
                self.scale
            )));
        }
        if !(PLOT_SIZES.contains(&width) && PLOT_SIZES.contains(&height)) {
            return Err(Error::InvalidOption(format!(
                "plot size must be {}–{} pixels each way, got {width}x{height}",
                PLOT_SIZES.start(),
                PLOT_SIZES.end()
            )));
        }
        Ok(())
    }

    /// `figure`'s size in pixels, scaled as the one-panel size is.
    fn size_of(&self, figure: &impl Figure) -> (u32, u32) {
        let (width, height) = figure.size();
        let scale = |value: u32, wanted: u32, default: u32| {
            ((u64::from(value) * u64::from(wanted)).div_ceil(u64::from(default))) as u32
        };
        (
            scale(width, self.panel_size.0, FIGURE_SIZE.0),
            scale(height, self.panel_size.1, FIGURE_SIZE.1),
        )
    }
}

/// The figure as an SVG document, at its own size.
pub fn to_svg(figure: &impl Figure) -> Result<String> {
    svg_of(figure, figure.size(), Pen::default())
}

/// The figure laid out on `size` pixels and drawn with `pen`.
fn svg_of(figure: &impl Figure, size: (u32, u32), pen: Pen) -> Result<String> {
    register_font();
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, pen.size(size)).into_drawing_area();
        area.fill(&WHITE).map_err(|e| draw_error("svg", e))?;
        figure.draw(&area, pen).map_err(|e| draw_error("svg", e))?;
        area.present().map_err(|e| draw_error("svg", e))?;
    }
    Ok(text::svg_scripts(&svg))
}

/// Writes the figure to `directory/stem.ext`, laid out on `size` pixels and drawn with `pen`,
/// and returns the path.
fn write_figure(
    figure: &impl Figure,
    directory: &Path,
    stem: &str,
    format: ImageFormat,
    (size, pen): ((u32, u32), Pen),
) -> Result<PathBuf> {
    // The option names are the file extensions.
    let path = directory.join(format!("{stem}.{format}"));
    let io_error = |source| Error::Write {
        path: path.clone(),
        source,
    };
    match format {
        ImageFormat::Svg => std::fs::write(&path, svg_of(figure, size, pen)?).map_err(io_error)?,
        ImageFormat::Png => {
            register_font();
            let what = path.display().to_string();
            let area = text::TextBackend::new(BitMapBackend::new(&path, pen.size(size)))
                .into_drawing_area();
            area.fill(&WHITE).map_err(|e| draw_error(&what, e))?;
            figure.draw(&area, pen).map_err(|e| draw_error(&what, e))?;
            area.present().map_err(|e| draw_error(&what, e))?;
        }
    }
    Ok(path)
}

/// Writes the figure once per format of `files`; returns the paths written.
pub fn write_formats(
    figure: &impl Figure,
    directory: &Path,
    stem: &str,
    files: &FigureFiles,
) -> Result<Vec<PathBuf>> {
    files.check()?;
    let size = files.size_of(figure);
    files
        .formats
        .iter()
        .map(|&format| {
            write_figure(
                figure,
                directory,
                stem,
                format,
                (size, Pen::new(files.scale)),
            )
        })
        .collect()
}

/// Creates `directory` (and its parents) when missing.
pub fn create_directory(directory: &Path) -> Result<()> {
    std::fs::create_dir_all(directory).map_err(|source| Error::Write {
        path: directory.to_path_buf(),
        source,
    })
}

/// The model overview and every layer's figures in `directory`: `model.EXT`, `blocks.EXT` for
/// a transformer, and `LLL_NAME_KIND.EXT` (LLL the layer index). A baseline analysis overlays the ESDs of its
/// layers with the same names.
pub fn write_analysis_figures(
    analysis: &Analysis,
    baseline: Option<&Analysis>,
    directory: &Path,
    files: &FigureFiles,
) -> Result<Vec<PathBuf>> {
    create_directory(directory)?;
    let mut written = write_formats(&model::model_figure(analysis), directory, "model", files)?;
    if let Some(blocks) = model::blocks_figure(analysis) {
        written.extend(write_formats(&blocks, directory, "blocks", files)?);
    }
    for layer in &analysis.layers {
        let base = baseline.and_then(|b| b.layers.iter().find(|l| l.name == layer.name));
        for figure in layer::layer_figures(layer, base) {
            let stem = format!(
                "{:03}_{}_{}",
                layer.layer_id,
                file_stem(&layer.name),
                figure.suffix()
            );
            written.extend(write_formats(&figure, directory, &stem, files)?);
        }
    }
    Ok(written)
}

/// The singular-value figure of each analysis in `directory`: `jacobian.EXT`, or
/// `jacobian_output_K.EXT` for the outputs of `jacobian --each-output`.
pub fn write_jacobian_figures(
    analyses: &[JacobianAnalysis],
    directory: &Path,
    files: &FigureFiles,
) -> Result<Vec<PathBuf>> {
    create_directory(directory)?;
    let mut written = Vec::new();
    for (output, analysis) in analyses.iter().enumerate() {
        let (stem, title) = if analyses.len() == 1 {
            ("jacobian".to_string(), String::new())
        } else {
            (
                format!("jacobian_output_{output}"),
                format!(", output {output}"),
            )
        };
        let figure = jacobian::JacobianFigure {
            title: format!(
                "{}{title} — Jacobian singular values",
                model_title(&analysis.setup.model)
            ),
            analysis,
        };
        written.extend(write_formats(&figure, directory, &stem, files)?);
    }
    Ok(written)
}

/// The Hessian's density figure (`hessian_density`), when the analysis has a density.
pub fn write_hessian_figures(
    analysis: &crate::workflows::hessian::HessianAnalysis,
    directory: &Path,
    files: &FigureFiles,
) -> Result<Vec<PathBuf>> {
    create_directory(directory)?;
    match hessian::density_figure(analysis) {
        Some(figure) => write_formats(&figure, directory, "hessian_density", files),
        None => Ok(Vec::new()),
    }
}

/// A model as figure titles name it: its file's name, not the path it was read from.
pub(crate) fn model_title(model: &str) -> String {
    Path::new(model).file_name().map_or_else(
        || model.to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// A file-name stem from a tensor name: dots and odd characters become `_`.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

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

/// Density bars in the data colour, labelled for the legend.
pub(crate) fn draw_bars<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    bars: &[(f64, f64, f64)],
    label: String,
    pen: Pen,
) -> DrawResult<DB> {
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

/// The legend of every figure: the series labels in a translucent box at `position`.
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
    pen: Pen,
) -> DrawResult<DB> {
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

/// A tick name shortened to its last characters.
fn short_name(name: &str) -> String {
    let count = name.chars().count();
    if count <= NAME_CHARACTERS {
        return name.to_string();
    }
    let tail: String = name.chars().skip(count - NAME_CHARACTERS).collect();
    format!("…{tail}")
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
fn tick_label(value: &f64) -> String {
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
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        let labels: Vec<String> = [
            0.0,
            45.0,
            0.1,
            0.9000000001,
            2.5,
            1e-5,
            123456.0,
            0.0012,
            -2.2e-16,
        ]
        .iter()
        .map(tick_label)
        .collect();
        assert_eq!(
            labels,
            ["0", "45", "0.1", "0.9", "2.5", "1e-5", "1.2e5", "0.0012", "0"]
        );
    }

    #[test]
    fn density_bars_integrate_to_the_share_inside() {
        let values = [0.1, 0.2, 0.3, 0.9, 1.5, 2.5];
        let bars = density_bars(&values, 0.0, 2.0, 4);
        let area: f64 = bars.iter().map(|(l, r, d)| (r - l) * d).sum();
        assert!((area - 5.0 / 6.0).abs() < 1e-12, "{area}");
        assert_eq!(bars[0].2, 3.0 / (6.0 * 0.5));
    }

    /// A library caller's scale or size outside the ranges is an error before anything is
    /// drawn, never a zero-sized or gigapixel image.
    #[test]
    fn figure_files_outside_the_ranges_are_refused() {
        let directory = std::env::temp_dir().join("rmt_torch_figure_files_refused");
        let figure = series::SeriesFigure::default();
        let refused = |files: FigureFiles| {
            let result = write_formats(&figure, &directory, "refused", &files);
            assert!(
                matches!(result, Err(Error::InvalidOption(_))),
                "{files:?}: {result:?}"
            );
        };
        let files = FigureFiles::new(&[ImageFormat::Png]);
        for scale in [0.0, 0.2, 9.0, f64::NAN, f64::INFINITY] {
            refused(FigureFiles {
                scale,
                ..files.clone()
            });
        }
        for panel_size in [(0, 440), (720, 0), (100, 440), (720, 9000)] {
            refused(FigureFiles {
                panel_size,
                ..files.clone()
            });
        }
        assert!(!directory.exists());
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("features.0/weight:x"), "features_0_weight_x");
    }
}
