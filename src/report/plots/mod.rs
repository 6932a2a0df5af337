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
pub mod compare;
pub mod hessian;
pub mod jacobian;
pub mod layer;
pub mod model;
pub mod series;
pub(crate) mod text;
pub mod theory;
pub mod track;

mod draw;
mod files;

use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) use draw::*;
pub use files::*;

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

#[cfg(test)]
mod tests {
    use super::draw::tick_label;
    use super::*;
    use crate::error::Error;

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
