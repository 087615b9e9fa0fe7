//! Images in notebooks: label maps in class colours, overlays, and grids of images with
//! titles (embedded PNGs in one SVG).

use super::escape;
use crate::classes::ClassSet;
use image::{GrayImage, Rgb, RgbImage};

/// A 2-d map of values (`height × width`, row-major) as an image in the viridis colour map,
/// scaled from its minimum (dark blue) to its maximum (yellow); non-finite values are black.
/// For feature maps, saliency, per-pixel losses.
///
/// ```
/// let img = rwt::plot::heat_image(&[0.0, 1.0, 2.0, f32::NAN], 2, 2)?;
/// assert_eq!(img.dimensions(), (2, 2));
/// assert_eq!(img.get_pixel(1, 1).0, [0, 0, 0]);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn heat_image(values: &[f32], width: u32, height: u32) -> crate::Result<RgbImage> {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    if values.len() != (width * height) as usize {
        return Err(crate::Error::shape("heat image values", format!("{height} x {width}"), values.len().to_string()));
    }
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let lo = finite.clone().fold(f32::INFINITY, f32::min);
    let hi = finite.fold(f32::NEG_INFINITY, f32::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    Ok(RgbImage::from_fn(width, height, |x, y| {
        let v = values[(y * width + x) as usize];
        if !v.is_finite() {
            return Rgb([0, 0, 0]);
        }
        let c = ViridisRGB.get_color_normalized((v - lo) / span, 0.0, 1.0);
        Rgb([c.0, c.1, c.2])
    }))
}

/// A label map tensor `[H, W]` (any integer dtype; values above 255 become 255) as an image.
pub fn label_image(labels: &candle_core::Tensor) -> crate::Result<GrayImage> {
    let (h, w) =
        labels.dims2().map_err(|_| crate::Error::shape("label map", "[H, W]", format!("{:?}", labels.dims())))?;
    let v: Vec<u32> = labels.to_dtype(candle_core::DType::U32)?.flatten_all()?.to_vec1()?;
    Ok(GrayImage::from_vec(w as u32, h as u32, v.into_iter().map(|x| x.min(255) as u8).collect())
        .expect("h × w values"))
}

/// A label map in the class set's colours; void and unknown labels are black.
pub fn colorize(label: &GrayImage, classes: &ClassSet) -> RgbImage {
    RgbImage::from_fn(label.width(), label.height(), |x, y| Rgb(classes.color(label.get_pixel(x, y).0[0] as u32)))
}

/// The image with the coloured labels blended on top (`alpha` = weight of the labels); void
/// pixels keep the image.
pub fn overlay(image: &RgbImage, label: &GrayImage, classes: &ClassSet, alpha: f32) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let p = image.get_pixel(x, y).0;
        let l = label.get_pixel(x, y).0[0] as usize;
        match classes.palette.get(l) {
            Some(c) => Rgb(std::array::from_fn(|k| (p[k] as f32 * (1.0 - alpha) + c[k] as f32 * alpha).round() as u8)),
            None => Rgb(p),
        }
    })
}

/// PNG bytes of an image.
pub fn png_bytes(image: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    // Encoding an in-memory RGB buffer as PNG cannot fail.
    image.write_to(&mut out, image::ImageFormat::Png).expect("PNG encoding of an RGB image");
    out.into_inner()
}

/// Standard base64 (RFC 4648) of `bytes`, for data URIs.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                s.push(ABC[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// An image as the smaller of PNG and JPEG (quality 85) when the PNG is large: `(mime, bytes)`.
fn compact_encoding(image: &RgbImage) -> (&'static str, Vec<u8>) {
    let png = png_bytes(image);
    if png.len() < 48 * 1024 {
        return ("image/png", png);
    }
    let mut jpeg = Vec::new();
    let encoded = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85).encode_image(image).is_ok();
    if encoded && jpeg.len() < png.len() {
        ("image/jpeg", jpeg)
    } else {
        ("image/png", png)
    }
}

/// Images in a grid, each with a title, scaled to a common width. Images wider than the cell
/// are downscaled, and large ones embedded as JPEG, to keep notebooks small.
///
/// ```
/// use rwt::plot::ImageGrid;
/// let img = image::RgbImage::new(8, 4);
/// let grid = ImageGrid::new("two images", 2).push("a", &img).push("b", &img);
/// assert_eq!(grid.to_svg().matches("<image").count(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct ImageGrid {
    /// Title above the grid.
    pub title: String,
    /// Images per row.
    pub columns: usize,
    /// Displayed width of each image in pixels.
    pub cell_width: u32,
    /// `(caption, image)`.
    items: Vec<(String, RgbImage)>,
}

impl ImageGrid {
    /// An empty grid with `columns` images per row.
    pub fn new(title: &str, columns: usize) -> Self {
        ImageGrid { title: title.into(), columns: columns.max(1), cell_width: 240, items: Vec::new() }
    }

    /// Sets the displayed width of each image.
    pub fn cell_width(mut self, width: u32) -> Self {
        self.cell_width = width.max(16);
        self
    }

    /// Adds an image with a caption.
    pub fn push(mut self, caption: &str, image: &RgbImage) -> Self {
        self.items.push((caption.into(), image.clone()));
        self
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the grid has no images.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The grid as an SVG document with the images embedded as PNG data URIs.
    pub fn to_svg(&self) -> String {
        let cw = self.cell_width as f64;
        let cell_h = |i: usize| cw * self.items[i].1.height() as f64 / self.items[i].1.width().max(1) as f64;
        let rows: Vec<&[(String, RgbImage)]> = self.items.chunks(self.columns).collect();
        let row_heights: Vec<f64> = (0..rows.len())
            .map(|r| (0..rows[r].len()).map(|c| cell_h(r * self.columns + c)).fold(0.0, f64::max) + 22.0)
            .collect();
        let width = (self.columns.min(self.items.len().max(1)) as f64) * (cw + 8.0) + 8.0;
        let height = 30.0 + row_heights.iter().sum::<f64>();
        let mut s = format!(
            r#"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><rect width="100%" height="100%" fill="white"/><text x="8" y="20" font-family="sans-serif" font-size="15">{}</text>"#,
            escape(&self.title)
        );
        let mut y = 30.0;
        for (r, row) in rows.iter().enumerate() {
            for (c, (caption, img)) in row.iter().enumerate() {
                let x = 8.0 + c as f64 * (cw + 8.0);
                let h = cell_h(r * self.columns + c);
                let shown = if img.width() > self.cell_width {
                    image::imageops::resize(
                        img,
                        self.cell_width,
                        h.round().max(1.0) as u32,
                        image::imageops::FilterType::Triangle,
                    )
                } else {
                    img.clone()
                };
                let (mime, bytes) = compact_encoding(&shown);
                s += &format!(
                    r#"<text x="{x}" y="{}" font-family="sans-serif" font-size="12">{}</text><image x="{x}" y="{}" width="{cw}" height="{h}" preserveAspectRatio="none" href="data:{mime};base64,{}"/>"#,
                    y + 13.0,
                    escape(caption),
                    y + 18.0,
                    base64(&bytes)
                );
            }
            y += row_heights[r];
        }
        s + "</svg>"
    }

    /// Shows the grid inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        super::display_svg(&self.to_svg());
    }
}

/// Where prediction `a` beats prediction `b` (Fig. 7): green where `a` is right and `b` wrong,
/// red where `b` is right and `a` wrong, the image darkened where both agree in being right or
/// wrong, black on void pixels (`label ≥ num_classes`). All maps must have the image's size.
pub fn wins_map(
    image: &RgbImage,
    truth: &GrayImage,
    a: &GrayImage,
    b: &GrayImage,
    num_classes: usize,
) -> crate::Result<RgbImage> {
    for (what, m) in [("ground truth", truth), ("prediction A", a), ("prediction B", b)] {
        if m.dimensions() != image.dimensions() {
            return Err(crate::Error::shape(
                what,
                format!("{:?}", image.dimensions()),
                format!("{:?}", m.dimensions()),
            ));
        }
    }
    Ok(RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let t = truth.get_pixel(x, y).0[0];
        if t as usize >= num_classes {
            return Rgb([0, 0, 0]);
        }
        let (ra, rb) = (a.get_pixel(x, y).0[0] == t, b.get_pixel(x, y).0[0] == t);
        match (ra, rb) {
            (true, false) => Rgb([0, 200, 0]),
            (false, true) => Rgb([220, 0, 0]),
            _ => Rgb(image.get_pixel(x, y).0.map(|v| v / 3)),
        }
    }))
}

/// The paper's Fig. 7 for one image: image | ground truth | prediction of `a` | prediction of
/// `b` | where `a` beats `b` (see [`wins_map`]), labels in the class colours.
pub fn comparison(
    image: &RgbImage,
    truth: &GrayImage,
    a: (&str, &GrayImage),
    b: (&str, &GrayImage),
    classes: &ClassSet,
) -> crate::Result<ImageGrid> {
    let wins = wins_map(image, truth, a.1, b.1, classes.len())?;
    let title =
        format!("{} vs {} (last panel: green where {} is right and {} wrong, red the reverse)", a.0, b.0, a.0, b.0);
    Ok(ImageGrid::new(&title, 5)
        .cell_width(200)
        .push("image", image)
        .push("ground truth", &colorize(truth, classes))
        .push(a.0, &colorize(a.1, classes))
        .push(b.0, &colorize(b.1, classes))
        .push(&format!("{} vs {}", a.0, b.0), &wins))
}

/// A legend of the class colours as an SVG (one swatch and name per class).
pub fn legend(classes: &ClassSet) -> super::Svg {
    let n = classes.len();
    let per_row = 6;
    let rows = n.div_ceil(per_row);
    let (w, h) = (per_row as f64 * 130.0, rows as f64 * 22.0 + 8.0);
    let mut s = format!(
        r#"<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><rect width="100%" height="100%" fill="white"/>"#
    );
    for (k, name) in classes.names.iter().enumerate() {
        let (x, y) = ((k % per_row) as f64 * 130.0 + 6.0, (k / per_row) as f64 * 22.0 + 6.0);
        let c = classes.palette[k];
        s += &format!(
            r#"<rect x="{x}" y="{y}" width="16" height="16" fill="rgb({},{},{})"/><text x="{}" y="{}" font-family="sans-serif" font-size="12">{}</text>"#,
            c[0],
            c[1],
            c[2],
            x + 22.0,
            y + 13.0,
            escape(name)
        );
    }
    super::Svg(s + "</svg>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::CAMVID;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn colours_and_overlay() {
        let label = GrayImage::from_raw(2, 1, vec![3, 11]).unwrap();
        let c = colorize(&label, &CAMVID);
        assert_eq!(c.get_pixel(0, 0).0, [128, 64, 128]);
        assert_eq!(c.get_pixel(1, 0).0, [0, 0, 0], "void is black");
        let img = RgbImage::from_pixel(2, 1, Rgb([0, 0, 0]));
        let o = overlay(&img, &label, &CAMVID, 0.5);
        assert_eq!(o.get_pixel(0, 0).0, [64, 32, 64]);
        assert_eq!(o.get_pixel(1, 0).0, [0, 0, 0]);
        assert!(legend(&CAMVID).to_svg().contains("bicyclist"));
    }
}
