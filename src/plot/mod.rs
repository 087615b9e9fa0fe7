//! Plots for notebooks and reports: each is a value with a pure `to_svg()` (tests call it)
//! and a thin `evcxr_display()` that shows it inline in an evcxr notebook.
//!
//! | plot | used for |
//! |---|---|
//! | [`Heatmap`] | ground matrices (Fig. 2, Fig. 6), confusion matrices, transport plans |
//! | [`LineChart`] | f(d) curves, convergence and training curves |
//! | [`BarChart`] | class frequencies, confusion statistics (Fig. 5) |
//! | [`Table`] | results tables (HTML in notebooks, text elsewhere) |
//! | [`ImageGrid`], [`colorize`], [`overlay`], [`legend`] | images, label maps, overlays (Fig. 7) |
//! | [`Animation`] | anything that moves: the driving agent's episodes (an animated GIF) |

mod animation;
mod bars;
mod heatmap;
mod images;
mod key;
mod lines;
mod table;

pub use animation::Animation;
pub use bars::BarChart;
pub use heatmap::Heatmap;
pub use images::{
    base64, colorize, comparison, heat_image, label_image, legend, overlay, png_bytes, wins_map, ImageGrid,
};
pub use lines::{LineChart, Series};
pub(crate) use table::group_digits;
pub use table::Table;

/// Prints `svg` between evcxr's content markers so the notebook shows it as an image (see
/// [`svg_html`] for the form it takes).
pub fn display_svg(svg: &str) {
    display_html(&svg_html(svg));
}

/// The HTML a notebook shows for an SVG figure: an `<img>` whose source is the SVG as a
/// base64 data URL, at most as wide as the output area (a wider figure is scaled down, never
/// cut; the plots' SVG roots carry a `viewBox`).
///
/// Not raw `image/svg+xml`: JupyterLab renders SVG outputs only in a *trusted* notebook, so a
/// committed notebook opened on another machine would show blank space where every figure is;
/// sanitised `text/html` with an `<img>` is rendered whether the notebook is trusted or not.
///
/// ```
/// let html = rwt::plot::svg_html(r#"<svg width="10" height="10" viewBox="0 0 10 10"/>"#);
/// assert!(html.starts_with(r#"<img src="data:image/svg+xml;base64,"#) && html.contains("max-width:100%"));
/// ```
pub fn svg_html(svg: &str) -> String {
    format!(
        r#"<img src="data:image/svg+xml;base64,{}" alt="figure" style="max-width:100%;height:auto">"#,
        base64(svg.trim().as_bytes())
    )
}

/// Prints `html` between evcxr's content markers so the notebook renders it.
pub fn display_html(html: &str) {
    println!("EVCXR_BEGIN_CONTENT text/html\n{html}\nEVCXR_END_CONTENT");
}

/// An SVG document with an inline notebook display, for plots made of several parts.
#[derive(Clone, Debug, PartialEq)]
pub struct Svg(pub String);

impl Svg {
    /// The SVG text.
    pub fn to_svg(&self) -> String {
        self.0.clone()
    }

    /// Shows the SVG inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        display_svg(&self.0)
    }
}

/// Puts SVG documents side by side in one SVG (each keeps its own size).
pub fn hstack(parts: &[String]) -> Svg {
    let sizes: Vec<(f64, f64)> = parts.iter().map(|s| svg_size(s)).collect();
    let width: f64 = sizes.iter().map(|s| s.0).sum();
    let height = sizes.iter().map(|s| s.1).fold(0.0, f64::max);
    let mut out = format!(
        r#"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">"#
    );
    let mut x = 0.0;
    for (part, (w, _)) in parts.iter().zip(&sizes) {
        let inner = part.trim_start_matches(|c| c != '<');
        let inner = inner.strip_prefix("<?xml").map_or(inner, |r| &r[r.find("?>").map_or(0, |i| i + 2)..]);
        out.push_str(&format!(r#"<g transform="translate({x},0)">{}</g>"#, inner.trim()));
        x += w;
    }
    out.push_str("</svg>");
    Svg(out)
}

/// Width and height attributes of an SVG root element (0 when absent).
fn svg_size(svg: &str) -> (f64, f64) {
    let attr = |name: &str| -> f64 {
        let key = format!("{name}=\"");
        svg.find(&key)
            .and_then(|i| svg[i + key.len()..].split('"').next())
            .and_then(|v| v.trim_end_matches("px").parse().ok())
            .unwrap_or(0.0)
    };
    (attr("width"), attr("height"))
}

/// Escapes text for HTML and SVG.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hstack_adds_widths() {
        let a = r#"<svg width="100" height="50" xmlns="http://www.w3.org/2000/svg"><rect/></svg>"#.to_string();
        let b = r#"<svg width="30" height="80" xmlns="http://www.w3.org/2000/svg"><circle/></svg>"#.to_string();
        let s = hstack(&[a, b]).to_svg();
        assert!(s.starts_with(r#"<svg width="130" height="80""#), "{s}");
        assert!(s.contains(r#"translate(100,0)"#) && s.contains("<circle/>"));
    }
}
