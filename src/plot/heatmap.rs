//! A labelled matrix heatmap with a colour bar.

use ndarray::Array2;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A matrix shown as coloured cells, row labels on the left (top to bottom), column labels
/// along the bottom, the values written in the cells when the matrix is small, and a colour
/// bar.
///
/// ```
/// use rwt::plot::Heatmap;
/// let h = Heatmap::new("D", ndarray::array![[0.0, 1.0], [0.5, 0.0]], vec!["a".into(), "b".into()], vec!["a".into(), "b".into()]);
/// assert!(h.to_svg().contains("<svg"));
/// ```
#[derive(Clone, Debug)]
pub struct Heatmap {
    /// Title above the plot.
    pub title: String,
    /// The values, `rows × cols`.
    pub values: Array2<f64>,
    /// Labels of the rows, top to bottom.
    pub row_labels: Vec<String>,
    /// Labels of the columns, left to right.
    pub col_labels: Vec<String>,
    /// Caption of the column axis.
    pub x_label: String,
    /// Caption of the row axis.
    pub y_label: String,
    /// Colour range; `None` uses the data's min and max.
    pub range: Option<(f64, f64)>,
    /// Write each value in its cell (default: when the matrix has at most 20 columns).
    pub annotate: bool,
    /// Digits after the decimal point of the annotations.
    pub precision: usize,
}

impl Heatmap {
    /// A heatmap of `values` with the given labels.
    pub fn new(title: &str, values: Array2<f64>, row_labels: Vec<String>, col_labels: Vec<String>) -> Self {
        let annotate = values.ncols() <= 20;
        Heatmap {
            title: title.to_string(),
            values,
            row_labels,
            col_labels,
            x_label: String::new(),
            y_label: String::new(),
            range: None,
            annotate,
            precision: 2,
        }
    }

    /// Sets the axis captions.
    pub fn axis_labels(mut self, x: &str, y: &str) -> Self {
        self.x_label = x.to_string();
        self.y_label = y.to_string();
        self
    }

    /// Fixes the colour range.
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }

    /// Sets the number of digits of the cell annotations.
    pub fn precision(mut self, digits: usize) -> Self {
        self.precision = digits;
        self
    }

    /// Renders the SVG document.
    pub fn to_svg(&self) -> String {
        let (rows, cols) = self.values.dim();
        let cell = (560.0 / cols.max(rows).max(1) as f64).clamp(14.0, 44.0);
        let longest = |v: &[String]| v.iter().map(|s| s.chars().count()).max().unwrap_or(1) as f64;
        let layout = Layout {
            cell,
            left: 34.0 + 6.2 * longest(&self.row_labels),
            top: 36.0,
            label_h: 12.0 + 6.2 * longest(&self.col_labels),
        };
        let width = (layout.left + cell * cols as f64 + 110.0) as u32;
        let height = (layout.top + cell * rows as f64 + layout.label_h + 30.0) as u32;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
            // Drawing into a String cannot fail; errors would only come from the backend's IO.
            let _ = self.draw(&root, &layout);
            let _ = root.present();
        }
        out
    }

    fn range_or_data(&self) -> (f64, f64) {
        self.range.unwrap_or_else(|| {
            let finite = || self.values.iter().copied().filter(|v| v.is_finite());
            let lo = finite().fold(f64::INFINITY, f64::min);
            let hi = finite().fold(f64::NEG_INFINITY, f64::max);
            if lo.is_finite() {
                (lo, hi)
            } else {
                (0.0, 1.0)
            }
        })
    }

    fn draw(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        l: &Layout,
    ) -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let (rows, cols) = self.values.dim();
        let (lo, hi) = self.range_or_data();
        let span = if hi > lo { hi - lo } else { 1.0 };
        let px = |v: f64| v.round() as i32;
        let (x0, y0) = (l.left, l.top);
        let (w, _) = root.dim_in_pixel();
        let title = TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(self.title.as_str(), (px(x0 + l.cell * cols as f64 / 2.0), 8), title))?;
        for r in 0..rows {
            for c in 0..cols {
                let v = self.values[[r, c]];
                let t = ((v - lo) / span).clamp(0.0, 1.0);
                let fill = if v.is_finite() { ViridisRGB::get_color(t as f32) } else { RGBColor(220, 220, 220) };
                let (cx, cy) = (x0 + l.cell * c as f64, y0 + l.cell * r as f64);
                root.draw(&Rectangle::new([(px(cx), px(cy)), (px(cx + l.cell), px(cy + l.cell))], fill.filled()))?;
                if self.annotate {
                    let prec = self.precision;
                    let ink: &'static RGBColor = if t > 0.6 { &BLACK } else { &WHITE };
                    let style = TextStyle::from(("sans-serif", 10).into_font())
                        .color(ink)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    root.draw(&Text::new(
                        format!("{v:.prec$}"),
                        (px(cx + l.cell / 2.0), px(cy + l.cell / 2.0)),
                        style,
                    ))?;
                }
            }
        }
        let label = TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        for (r, name) in self.row_labels.iter().enumerate().take(rows) {
            root.draw(&Text::new(name.as_str(), (px(x0 - 5.0), px(y0 + l.cell * (r as f64 + 0.5))), label.clone()))?;
        }
        // Column labels run downwards from just below the matrix.
        let below = y0 + l.cell * rows as f64 + 5.0;
        let col_style = TextStyle::from(("sans-serif", 11).into_font().transform(FontTransform::Rotate90))
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (c, name) in self.col_labels.iter().enumerate().take(cols) {
            root.draw(&Text::new(name.as_str(), (px(x0 + l.cell * (c as f64 + 0.5)), px(below)), col_style.clone()))?;
        }
        let caption = TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            self.x_label.as_str(),
            (px(x0 + l.cell * cols as f64 / 2.0), px(below + l.label_h)),
            caption,
        ))?;
        let ycap = TextStyle::from(("sans-serif", 12).into_font().transform(FontTransform::Rotate270))
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(self.y_label.as_str(), (6, px(y0 + l.cell * rows as f64 / 2.0)), ycap))?;
        // Colour bar.
        let bx = w as i32 - 90;
        let (top, bot) = (px(y0), px(y0 + l.cell * rows as f64));
        let steps = 64;
        for k in 0..steps {
            let ya = bot - (bot - top) * k / steps;
            let yb = bot - (bot - top) * (k + 1) / steps;
            let c = ViridisRGB::get_color(k as f32 / (steps - 1) as f32);
            root.draw(&Rectangle::new([(bx, yb), (bx + 16, ya)], c.filled()))?;
        }
        let tick = TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(format!("{hi:.3}"), (bx + 20, top), tick.clone()))?;
        root.draw(&Text::new(format!("{lo:.3}"), (bx + 20, bot), tick))?;
        Ok(())
    }

    /// Shows the heatmap inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        super::display_svg(&self.to_svg());
    }
}

/// Pixel geometry of a heatmap.
struct Layout {
    cell: f64,
    left: f64,
    top: f64,
    label_h: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_values_are_in_the_svg() {
        let h = Heatmap::new(
            "test <map>",
            ndarray::array![[0.0, 0.25], [0.5, 0.0]],
            vec!["car".into(), "road".into()],
            vec!["car".into(), "road".into()],
        );
        let s = h.to_svg();
        assert!(s.contains("test &lt;map&gt;"), "title escaped: {s}");
        assert!(s.contains("\ncar\n") && s.contains("\nroad\n"));
        assert!(s.contains("\n0.25\n") && s.contains("\n0.50\n"));
        assert!(s.matches("<rect").count() >= 4);
    }
}
