//! Tables of results: plain text for terminals and logs, HTML in notebooks.

use super::escape;
use std::fmt;

/// A table of strings with a header row; numbers are formatted by the caller.
///
/// ```
/// use rwt::plot::Table;
/// let t = Table::new(["loss", "value"]).row(["CE", "0.51"]).row(["W", "0.12"]);
/// assert!(t.to_html().contains("<td>0.12</td>"));
/// assert!(t.to_string().contains("CE"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Optional caption.
    pub caption: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Table { caption: String::new(), headers: headers.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Sets the caption.
    pub fn caption(mut self, caption: &str) -> Self {
        self.caption = caption.into();
        self
    }

    /// Adds a row.
    pub fn row<S: Into<String>>(mut self, cells: impl IntoIterator<Item = S>) -> Self {
        self.push(cells);
        self
    }

    /// Adds a row in place.
    pub fn push<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as an HTML `<table>`.
    pub fn to_html(&self) -> String {
        let mut h = String::from("<table>");
        if !self.caption.is_empty() {
            h += &format!("<caption>{}</caption>", escape(&self.caption));
        }
        h += "<thead><tr>";
        for c in &self.headers {
            h += &format!("<th>{}</th>", escape(c));
        }
        h += "</tr></thead><tbody>";
        for r in &self.rows {
            h += "<tr>";
            for c in r {
                h += &format!("<td>{}</td>", escape(c));
            }
            h += "</tr>";
        }
        h + "</tbody></table>"
    }

    /// The table as GitHub Markdown (for RESULTS.md and run folders).
    pub fn to_markdown(&self) -> String {
        let cell = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        if !self.caption.is_empty() {
            out += &format!("{}\n\n", self.caption);
        }
        out += &format!("| {} |\n", self.headers.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | "));
        out += &format!("|{}\n", "---|".repeat(self.headers.len()));
        for r in &self.rows {
            out += &format!("| {} |\n", r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
        }
        out
    }

    /// Shows the table as HTML in an evcxr notebook.
    pub fn evcxr_display(&self) {
        super::display_html(&self.to_html());
    }
}

impl fmt::Display for Table {
    /// Aligned plain text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols = self.headers.len().max(self.rows.iter().map(Vec::len).max().unwrap_or(0));
        let width = |c: usize| {
            std::iter::once(&self.headers)
                .chain(&self.rows)
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        if !self.caption.is_empty() {
            writeln!(f, "{}", self.caption)?;
        }
        for (i, r) in std::iter::once(&self.headers).chain(&self.rows).enumerate() {
            for (c, w) in widths.iter().enumerate() {
                let cell = r.get(c).map(String::as_str).unwrap_or("");
                if c == 0 {
                    write!(f, "{cell:<w$}")?;
                } else {
                    write!(f, "  {cell:>w$}")?;
                }
            }
            writeln!(f)?;
            if i == 0 {
                writeln!(f, "{}", "-".repeat(widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1)))?;
            }
        }
        Ok(())
    }
}

/// `1234567` → `"1,234,567"`: a count with its thousands grouped, for table cells and names.
pub(crate) fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
