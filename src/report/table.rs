//! Aligned plain-text tables.
use std::fmt::Write;

/// A table of strings; numeric-looking cells (bounds such as `<1e-4` among them) are
/// right-aligned.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells print empty).
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(
            row.into_iter()
                .map(|cell| super::printable(&cell).into_owned())
                .collect(),
        );
    }

    /// The table as text, columns separated by two spaces, with a rule under the header.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let numeric: Vec<bool> = (0..columns)
            .map(|c| {
                self.rows.iter().all(|row| {
                    row.get(c).is_none_or(|cell| {
                        cell.is_empty()
                            || cell == "-"
                            || cell.trim_start_matches('<').parse::<f64>().is_ok()
                    })
                })
            })
            .collect();
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let rendered: Vec<String> = (0..columns)
                .map(|c| {
                    let cell = cells.get(c).map_or("", String::as_str);
                    let pad = widths[c].saturating_sub(cell.chars().count());
                    if numeric[c] {
                        format!("{}{cell}", " ".repeat(pad))
                    } else {
                        format!("{cell}{}", " ".repeat(pad))
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", rendered.join("  ").trim_end());
        };
        line(&self.headers, &mut out);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "{}", rule.join("  "));
        for row in &self.rows {
            line(row, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let mut table = Table::new(["name", "value"]);
        table.push(vec!["a".into(), "1.5".into()]);
        table.push(vec!["longer".into(), "10.25".into()]);
        assert_eq!(
            table.render(),
            "name    value\n------  -----\na         1.5\nlonger  10.25\n"
        );
    }
}
