//! Text as a reader expects it in a figure: glyphs placed by their metrics, combining accents
//! over their letter, and sub- and superscripts drawn smaller and shifted.
//!
//! Labels mark scripts as `_{…}` and `^{…}` (`‖W‖_{F}^{2}`, `K_{L}`); nothing else is markup, so
//! a layer name with an underscore stays as it is. PNGs are drawn through [`TextBackend`], which
//! lays glyphs out with ab_glyph (plotters' own rasteriser drops each glyph's side bearing:
//! uneven letter spacing, an accent beside its letter instead of over it); SVGs keep their
//! text as text, scripts as `<tspan baseline-shift>` ([`svg_scripts`]), in the bundled font's
//! family with a generic fallback.
use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters_backend::{
    text_anchor::{HPos, VPos},
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// Where a run of text sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    Normal,
    Sub,
    Super,
}

impl Script {
    /// Its size relative to the text's.
    fn scale(self) -> f32 {
        match self {
            Self::Normal => 1.0,
            Self::Sub | Self::Super => 0.7,
        }
    }

    /// Its baseline's shift downwards, in units of the text's size.
    fn shift(self) -> f32 {
        match self {
            Self::Normal => 0.0,
            Self::Sub => 0.22,
            Self::Super => -0.36,
        }
    }
}

/// `text` cut into runs: `_{…}` subscript, `^{…}` superscript, the rest normal. An unclosed
/// brace is text.
pub(crate) fn runs(text: &str) -> Vec<(Script, &str)> {
    let mut runs = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let next = [("_{", Script::Sub), ("^{", Script::Super)]
            .into_iter()
            .filter_map(|(open, script)| {
                let start = rest.find(open)?;
                let end = rest[start..].find('}')? + start;
                Some((start, end, open.len(), script))
            })
            .min_by_key(|&(start, ..)| start);
        let Some((start, end, open, script)) = next else {
            runs.push((Script::Normal, rest));
            break;
        };
        if start > 0 {
            runs.push((Script::Normal, &rest[..start]));
        }
        runs.push((script, &rest[start + open..end]));
        rest = &rest[end + 1..];
    }
    runs
}

/// An SVG document with each label's scripts as `<tspan>`s shifted and smaller, and the
/// bundled font named before the generic family.
pub(crate) fn svg_scripts(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        let Some(open_end) = rest[start..].find('>').map(|i| start + i + 1) else {
            break;
        };
        let Some(close) = rest[open_end..].find("</text>").map(|i| open_end + i) else {
            break;
        };
        out.push_str(&rest[..open_end]);
        for (script, run) in runs(&rest[open_end..close]) {
            match script {
                Script::Normal => out.push_str(run),
                Script::Sub | Script::Super => {
                    let shift = if script == Script::Sub {
                        "sub"
                    } else {
                        "super"
                    };
                    out.push_str(&format!(
                        "<tspan baseline-shift=\"{shift}\" font-size=\"70%\">{run}</tspan>"
                    ));
                }
            }
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    out.replace(
        &format!("font-family=\"{}\"", super::FAMILY),
        &format!("font-family=\"DejaVu Sans, {}\"", super::FAMILY),
    )
}

/// A label as HTML: escaped, its scripts as `<sub>` and `<sup>`.
pub(crate) fn html_scripts(text: &str) -> String {
    runs(text)
        .into_iter()
        .map(|(script, run)| {
            let run = crate::report::escape(run);
            match script {
                Script::Normal => run,
                Script::Sub => format!("<sub>{run}</sub>"),
                Script::Super => format!("<sup>{run}</sup>"),
            }
        })
        .collect()
}

/// A text laid out: its glyphs placed in its box (y down from its top), and the box.
struct Layout {
    glyphs: Vec<ab_glyph::Glyph>,
    width: f32,
    height: f32,
}

/// Whether `c` is a combining mark drawn over the letter before it (U+0300–U+036F).
fn combining(c: char) -> bool {
    ('\u{300}'..='\u{36f}').contains(&c)
}

impl Layout {
    /// `text` at `size` pixels: advances and kerning from the font, combining marks centred
    /// over the previous glyph, scripts smaller and shifted.
    fn of(font: &FontRef<'static>, text: &str, size: f32) -> Self {
        let base = font.as_scaled(PxScale::from(size));
        let ascent = base.ascent();
        let mut glyphs = Vec::new();
        let mut pen = 0.0_f32;
        let mut previous: Option<(ab_glyph::GlyphId, f32, f32)> = None;
        for (script, run) in runs(text) {
            let scale = PxScale::from(size * script.scale());
            let scaled = font.as_scaled(scale);
            let baseline = ascent + size * script.shift();
            for c in run.chars() {
                let id = scaled.glyph_id(c);
                let advance = scaled.h_advance(id);
                if combining(c) {
                    if let Some((_, start, width)) = previous {
                        let at = |x: f32, y: f32| {
                            font.outline_glyph(id.with_scale_and_position(scale, point(x, y)))
                                .map(|outline| outline.px_bounds())
                        };
                        let offset = at(0.0, 0.0).map_or(0.0, |b| (b.min.x + b.max.x) / 2.0);
                        let x = start + width / 2.0 - offset;
                        // Accents are drawn for lower-case height: over a capital (K̃), lift
                        // the mark clear of the letter's top.
                        let letter_top = glyphs
                            .last()
                            .and_then(|glyph: &ab_glyph::Glyph| font.outline_glyph(glyph.clone()))
                            .map(|outline| outline.px_bounds().min.y);
                        let lift = match (at(x, baseline), letter_top) {
                            (Some(mark), Some(top)) => (mark.max.y - (top - 1.0)).max(0.0),
                            _ => 0.0,
                        };
                        glyphs.push(id.with_scale_and_position(scale, point(x, baseline - lift)));
                    }
                    continue;
                }
                if let Some((before, ..)) = previous {
                    pen += scaled.kern(before, id);
                }
                glyphs.push(id.with_scale_and_position(scale, point(pen, baseline)));
                previous = Some((id, pen, advance));
                pen += advance;
            }
        }
        Self {
            glyphs,
            width: pen,
            height: ascent - base.descent(),
        }
    }
}

/// A backend that draws every shape as `B` does and text with [`Layout`].
pub(crate) struct TextBackend<B> {
    inner: B,
    font: FontRef<'static>,
}

impl<B: DrawingBackend> TextBackend<B> {
    /// Wraps `inner`; text in the bundled font.
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner,
            // Checked by `register_font` before any figure is drawn.
            font: FontRef::try_from_slice(super::FONT).expect("the bundled font parses"),
        }
    }
}

impl<B: DrawingBackend> DrawingBackend for TextBackend<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let layout = Layout::of(&self.font, text, style.size() as f32);
        Ok((layout.width.ceil() as u32, layout.height.ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let layout = Layout::of(&self.font, text, style.size() as f32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Right => -layout.width,
            HPos::Center => -layout.width / 2.0,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -layout.height / 2.0,
            VPos::Bottom => -layout.height,
        };
        let transform = style.transform();
        let (width, height) = self.get_size();
        for glyph in layout.glyphs {
            let Some(outline) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|x, y, coverage| pixels.push((x, y, coverage)));
            for (x, y, coverage) in pixels {
                let (x, y) = (
                    (bounds.min.x + x as f32 + dx).round() as i32,
                    (bounds.min.y + y as f32 + dy).round() as i32,
                );
                let (x, y) = transform.transform(x, y);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if coverage > 0.0 && x >= 0 && y >= 0 && x < width as i32 && y < height as i32 {
                    let shade = BackendColor {
                        alpha: color.alpha * f64::from(coverage.min(1.0)),
                        rgb: color.rgb,
                    };
                    self.inner.draw_pixel((x, y), shade)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_marked_with_braces_only() {
        assert_eq!(
            runs("‖W‖_{F}^{2} of conv_1"),
            vec![
                (Script::Normal, "‖W‖"),
                (Script::Sub, "F"),
                (Script::Super, "2"),
                (Script::Normal, " of conv_1"),
            ]
        );
        assert_eq!(runs("a_{b"), vec![(Script::Normal, "a_{b")]);
        assert_eq!(html_scripts("‖W‖²_{F} <"), "‖W‖²<sub>F</sub> &lt;");
        let svg = svg_scripts("<text font-family=\"sans-serif\">K_{L}</text>");
        assert_eq!(
            svg,
            "<text font-family=\"DejaVu Sans, sans-serif\">K<tspan baseline-shift=\"sub\" \
             font-size=\"70%\">L</tspan></text>"
        );
    }

    /// Glyphs advance by the font's widths (a narrow letter does not leave a gap), a
    /// combining accent sits over its letter and adds no width, and a subscript is lower
    /// and smaller than the text.
    #[test]
    fn glyphs_are_placed_by_their_metrics() {
        let font = FontRef::try_from_slice(crate::report::plots::FONT).unwrap();
        let layout = Layout::of(&font, "median", 20.0);
        let xs: Vec<f32> = layout.glyphs.iter().map(|g| g.position.x).collect();
        assert!(xs.windows(2).all(|w| w[1] > w[0]));
        let accented = Layout::of(&font, "α\u{302}", 20.0);
        let plain_alpha = Layout::of(&font, "α", 20.0);
        assert_eq!(accented.width, plain_alpha.width);
        assert_eq!(accented.glyphs.len(), 2);
        let mark = font
            .outline_glyph(accented.glyphs[1].clone())
            .unwrap()
            .px_bounds();
        let letter = font
            .outline_glyph(accented.glyphs[0].clone())
            .unwrap()
            .px_bounds();
        let centre = |b: ab_glyph::Rect| (b.min.x + b.max.x) / 2.0;
        assert!(
            (centre(mark) - centre(letter)).abs() < 2.5,
            "{mark:?} over {letter:?}"
        );
        assert!(
            mark.max.y < letter.min.y + 2.0,
            "the accent is above the letter"
        );
        let capital = Layout::of(&font, "K\u{303}", 20.0);
        let outline = |g: &ab_glyph::Glyph| font.outline_glyph(g.clone()).unwrap().px_bounds();
        let (k, tilde) = (outline(&capital.glyphs[0]), outline(&capital.glyphs[1]));
        assert!(
            tilde.max.y <= k.min.y,
            "the tilde clears the capital: {tilde:?} {k:?}"
        );
        let scripted = Layout::of(&font, "K_{L}", 20.0);
        let (k, l) = (&scripted.glyphs[0], &scripted.glyphs[1]);
        assert!(l.position.y > k.position.y && l.scale.y < k.scale.y);
    }
}
