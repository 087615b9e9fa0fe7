//! Grouped bar charts: class frequencies, the confusion statistics of Fig. 5, loss
//! comparisons.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Bars for each category (x axis), one bar per series within a category, with a legend.
///
/// ```
/// use rwt::plot::BarChart;
/// let chart = BarChart::new("pixels per class", "share")
///     .categories(["road", "car"])
///     .series("train", [0.3, 0.05]);
/// assert!(chart.to_svg().contains("road"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    /// Title above the chart.
    pub title: String,
    /// Caption of the value axis.
    pub y_label: String,
    /// Category names along the x axis.
    pub categories: Vec<String>,
    /// `(name, one value per category)`.
    pub series: Vec<(String, Vec<f64>)>,
    /// Optional RGB colour per category, used when there is a single series.
    pub category_colors: Option<Vec<[u8; 3]>>,
    /// Logarithmic value axis.
    pub log_y: bool,
    /// Size in pixels.
    pub size: (u32, u32),
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

impl BarChart {
    /// An empty chart.
    pub fn new(title: &str, y_label: &str) -> Self {
        BarChart {
            title: title.into(),
            y_label: y_label.into(),
            categories: Vec::new(),
            series: Vec::new(),
            category_colors: None,
            log_y: false,
            size: (720, 400),
        }
    }

    /// Sets the category names.
    pub fn categories<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.categories = names.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a series (one value per category).
    pub fn series(mut self, name: &str, values: impl IntoIterator<Item = f64>) -> Self {
        self.series.push((name.into(), values.into_iter().collect()));
        self
    }

    /// Colours each category's bar (single-series charts), e.g. with a class palette.
    pub fn colors(mut self, colors: &[[u8; 3]]) -> Self {
        self.category_colors = Some(colors.to_vec());
        self
    }

    /// Uses a logarithmic value axis.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Sets the size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Renders the SVG document.
    pub fn to_svg(&self) -> String {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            let _ = root.fill(&WHITE);
            // With several series the legend gets a band of its own under the chart, so it
            // never hides a bar.
            let entries: Vec<(&str, RGBColor)> = match self.series.len() {
                0 | 1 => Vec::new(),
                _ => self.series.iter().enumerate().map(|(k, s)| (s.0.as_str(), COLORS[k % COLORS.len()])).collect(),
            };
            let names: Vec<&str> = entries.iter().map(|e| e.0).collect();
            let band = super::key::height(&names, self.size.0).min(self.size.1 / 2);
            let (plot, legend) = root.split_vertically(self.size.1 - band);
            let _ = self.draw(&plot);
            let _ = super::key::draw(&legend, &entries, super::key::Swatch::Box);
            let _ = root.present();
        }
        out
    }

    fn draw(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    ) -> Result<(), Box<dyn std::error::Error + '_>> {
        let values = || self.series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
        let hi = values().fold(0.0f64, f64::max);
        if self.log_y {
            let lo = values().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
            let lo = if lo.is_finite() { lo / 2.0 } else { 1e-3 };
            self.draw_on(root, (lo..hi.max(lo) * 2.0).log_scale(), lo)
        } else {
            self.draw_on(root, 0.0..(hi * 1.1).max(1e-12), 0.0)
        }
    }

    fn draw_on<Y>(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        y: Y,
        floor: f64,
    ) -> Result<(), Box<dyn std::error::Error + '_>>
    where
        Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        let nc = self.categories.len().max(1);
        let ns = self.series.len().max(1);
        let longest = self.categories.iter().map(|s| s.chars().count()).max().unwrap_or(1) as u32;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title.as_str(), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(20 + 7 * longest)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..nc as f64, y)?;
        chart.configure_mesh().disable_x_mesh().x_labels(0).y_desc(self.y_label.as_str()).draw()?;
        // Category names run downwards from below each bar group's centre.
        let style = TextStyle::from(("sans-serif", 11).into_font().transform(FontTransform::Rotate90))
            .pos(Pos::new(HPos::Left, VPos::Center));
        let bottom = chart.plotting_area().get_pixel_range().1.end;
        let (left, top) = root.get_base_pixel();
        for (i, name) in self.categories.iter().enumerate() {
            let (x, _) = chart.backend_coord(&(i as f64 + 0.5, floor));
            root.draw(&Text::new(name.as_str(), (x - left, bottom - top + 6), style.clone()))?;
        }
        let width = 0.8 / ns as f64;
        for (si, (_, vals)) in self.series.iter().enumerate() {
            let color = COLORS[si % COLORS.len()];
            let bars = vals.iter().enumerate().filter(|(_, v)| v.is_finite() && **v > floor).map(move |(ci, &v)| {
                let x0 = ci as f64 + 0.1 + si as f64 * width;
                let fill = match (&self.category_colors, ns) {
                    (Some(c), 1) => c.get(ci).map_or(color, |c| RGBColor(c[0], c[1], c[2])),
                    _ => color,
                };
                Rectangle::new([(x0, floor), (x0 + width, v)], fill.filled())
            });
            chart.draw_series(bars)?;
        }
        Ok(())
    }

    /// Shows the chart inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        super::display_svg(&self.to_svg());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rect_per_positive_value() {
        let c = BarChart::new("t", "v")
            .categories(["a", "b", "c"])
            .series("x", [1.0, 0.0, 2.0])
            .series("y", [0.5, 0.5, 0.5]);
        let s = c.to_svg();
        assert!(s.contains("\na\n") && s.contains("\nc\n"), "{s}");
        // 5 bars + legend swatches + background rects.
        assert!(s.matches("<rect").count() >= 5 + 2);
    }
}
