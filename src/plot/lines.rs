//! Line charts: f(d) curves, convergence curves, training curves.

use plotters::prelude::*;

/// One named line of a [`LineChart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points in order.
    pub points: Vec<(f64, f64)>,
}

/// Several lines on shared axes, with a legend; optionally a logarithmic y axis.
///
/// ```
/// use rwt::plot::LineChart;
/// let chart = LineChart::new("f(d)", "d", "f(d)").line("d^2", (0..=10).map(|i| (i as f64 / 10.0, (i * i) as f64 / 100.0)));
/// assert!(chart.to_svg().contains("d^2"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// Title above the chart.
    pub title: String,
    /// Caption of the x axis.
    pub x_label: String,
    /// Caption of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Logarithmic y axis (non-positive values are dropped).
    pub log_y: bool,
    /// Logarithmic x axis (non-positive values are dropped).
    pub log_x: bool,
    /// Size in pixels.
    pub size: (u32, u32),
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

impl LineChart {
    /// An empty chart.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        LineChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            log_y: false,
            log_x: false,
            size: (640, 400),
        }
    }

    /// Adds a line.
    pub fn line(mut self, name: &str, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        self.series.push(Series { name: name.into(), points: points.into_iter().collect() });
        self
    }

    /// Uses a logarithmic y axis.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Uses a logarithmic x axis.
    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    /// Sets the size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| self.keep(*x, *y))
    }

    fn keep(&self, x: f64, y: f64) -> bool {
        x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0) && (!self.log_x || x > 0.0)
    }

    fn bounds(&self) -> ((f64, f64), (f64, f64)) {
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in self.points() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            return ((0.0, 1.0), (0.0, 1.0));
        }
        let pad = |a: f64, b: f64, log: bool| {
            if log {
                (a / 1.5, b * 1.5)
            } else if b > a {
                (a - 0.05 * (b - a), b + 0.05 * (b - a))
            } else {
                (a - 0.5, b + 0.5)
            }
        };
        let (x0, x1) = if x1 > x0 { (x0, x1) } else { pad(x0, x1, self.log_x) };
        ((x0, x1), pad(y0, y1, self.log_y))
    }

    /// Renders the SVG document.
    pub fn to_svg(&self) -> String {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            let _ = root.fill(&WHITE);
            // The legend gets a band of its own under the axes, so it never hides a line.
            let entries = self.legend_entries();
            let names: Vec<&str> = entries.iter().map(|e| e.0).collect();
            let band = super::key::height(&names, self.size.0).min(self.size.1 / 2);
            let (plot, legend) = root.split_vertically(self.size.1 - band);
            let ((x0, x1), (y0, y1)) = self.bounds();
            let _ = match (self.log_x, self.log_y) {
                (false, false) => self.draw(&plot, x0..x1, y0..y1),
                (false, true) => self.draw(&plot, x0..x1, (y0..y1).log_scale()),
                (true, false) => self.draw(&plot, (x0..x1).log_scale(), y0..y1),
                (true, true) => self.draw(&plot, (x0..x1).log_scale(), (y0..y1).log_scale()),
            };
            let _ = super::key::draw(&legend, &entries, super::key::Swatch::Line);
            let _ = root.present();
        }
        out
    }

    fn draw<X, Y>(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        x: X,
        y: Y,
    ) -> Result<(), Box<dyn std::error::Error + '_>>
    where
        X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
        Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(self.title.as_str(), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for (k, s) in self.series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|&(x, y)| self.keep(x, y)).collect();
            chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))?;
        }
        Ok(())
    }

    /// `(name, colour)` of each line for the legend; none for a single unnamed line.
    fn legend_entries(&self) -> Vec<(&str, RGBColor)> {
        if self.series.len() > 1 || self.series.first().is_some_and(|s| !s.name.is_empty()) {
            self.series.iter().enumerate().map(|(k, s)| (s.name.as_str(), COLORS[k % COLORS.len()])).collect()
        } else {
            Vec::new()
        }
    }

    /// Shows the chart inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        super::display_svg(&self.to_svg());
    }
}

/// A short tick label: plain decimals between 1e-3 and 1e4 (trailing zeros dropped, so the
/// rounding noise of log-scale ticks such as 0.09999999 disappears), scientific otherwise.
pub(crate) fn tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&a) {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{v:.0e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.09999999999), "0.1");
        assert_eq!(tick(10.0), "10");
        assert_eq!(tick(3.1e-6), "3e-6");
        assert_eq!(tick(0.0012), "0.0012");
        assert_eq!(tick(0.0), "0");
    }

    #[test]
    fn legend_sits_below_the_plotting_area() {
        let names = ["CE", "W uniform", "W importance", "W severity, d", "W severity, d²", "W severity, Huber"];
        let mut c = LineChart::new("mIoU", "epoch", "mIoU (%)").size(330, 260);
        for (k, n) in names.iter().enumerate() {
            c = c.line(n, [(1.0, k as f64), (2.0, k as f64 + 1.0)]);
        }
        let s = c.to_svg();
        let band = 260 - crate::plot::key::height(&names, 330) as i32;
        // Every legend name is written below the top of the band, i.e. under the x axis.
        for n in names {
            let at = s.find(&format!(">\n{n}\n</text>")).unwrap_or_else(|| panic!("{n} missing in {s}"));
            let tag = &s[s[..at].rfind("<text").unwrap()..at];
            let y: f64 = tag.split("y=\"").nth(1).and_then(|v| v.split('"').next()).unwrap().parse().unwrap();
            assert!(y > band as f64, "{n} at y = {y}, band starts at {band}");
        }
    }

    #[test]
    fn log_axis_drops_non_positive_values() {
        let c = LineChart::new("t", "x", "y").line("a", [(0.0, 0.0), (1.0, 1.0), (2.0, 10.0)]).log_y();
        assert_eq!(c.bounds().1 .0, 1.0 / 1.5);
        let s = c.to_svg();
        assert!(s.contains("<polyline") || s.contains("<path"), "{s}");
    }
}
