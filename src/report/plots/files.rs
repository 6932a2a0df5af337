//! Figure files: formats, sizes and scales, the SVG and PNG writers, and the figures each
//! command writes.
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;

use super::{hessian, jacobian, layer, model, text, Figure, Pen, FAMILY, FIGURE_SIZE, FONT};
use crate::analysis::Analysis;
use crate::error::{Error, Result};
use crate::option_names::option_names;
use crate::workflows::jacobian::JacobianAnalysis;

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
    require_figure_data(analysis)?;
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

/// Refuses an analysis that did not keep what its figures draw (each layer's eigenvalues and
/// spacings), which would otherwise give pages of empty panels.
pub fn require_figure_data(analysis: &Analysis) -> Result<()> {
    if analysis.settings.figure_data {
        return Ok(());
    }
    Err(Error::InvalidOption(format!(
        "the figures of {} draw each layer's eigenvalues and spacings, which its analysis did not keep: analyse it with figure_data (Python: analyze(..., figure_data=True); CLI: --figure-data)",
        analysis.model
    )))
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

/// A comparison's figures in `directory`: `compare.EXT` (α before and after, the update's
/// size, against the layers) and each changed layer's update ESD against its Marchenko-Pastur
/// fit, `LLL_NAME_update_esd.EXT` (when the comparison kept the eigenvalues).
pub fn write_compare_figures(
    comparison: &crate::workflows::compare::Comparison,
    directory: &Path,
    files: &FigureFiles,
) -> Result<Vec<PathBuf>> {
    create_directory(directory)?;
    let mut written = write_formats(
        &super::compare::compare_figure(comparison),
        directory,
        "compare",
        files,
    )?;
    for (index, layer) in comparison.layers.iter().enumerate() {
        let Some(update) = &layer.update else {
            continue;
        };
        for figure in layer::layer_figures(update, None) {
            if figure.suffix() != "esd" {
                continue;
            }
            let stem = format!("{index:03}_{}_update_esd", file_stem(&layer.name));
            written.extend(write_formats(&figure, directory, &stem, files)?);
        }
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
