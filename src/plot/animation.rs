//! Animated figures: frames encoded as an animated GIF (the `gif` crate, NeuQuant palettes)
//! and shown inline as an `<img>` with a data URL, which JupyterLab renders in trusted and
//! untrusted notebooks alike.

use super::images::base64;
use crate::{Error, Result};
use image::RgbImage;
use std::path::Path;

/// A sequence of equally sized RGB frames played in a loop.
///
/// ```
/// use rwt::plot::Animation;
/// let mut a = Animation::new("two frames", 100);
/// a.push(image::RgbImage::from_pixel(4, 2, image::Rgb([255, 0, 0])))?;
/// a.push(image::RgbImage::from_pixel(4, 2, image::Rgb([0, 0, 255])))?;
/// let gif = a.to_gif()?;
/// assert_eq!(&gif[..6], b"GIF89a");
/// # Ok::<(), rwt::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Animation {
    /// Shown above the animation.
    pub title: String,
    /// Milliseconds per frame (GIF resolution: 10 ms).
    pub frame_ms: u32,
    /// A line shown below it (what the panels are).
    pub caption: String,
    frames: Vec<RgbImage>,
}

impl Animation {
    /// An empty animation playing `frame_ms` milliseconds per frame.
    pub fn new(title: &str, frame_ms: u32) -> Self {
        Animation { title: title.into(), frame_ms, caption: String::new(), frames: vec![] }
    }

    /// The same with a caption.
    pub fn with_caption(mut self, caption: &str) -> Self {
        self.caption = caption.into();
        self
    }

    /// Appends a frame. Errors: a frame of another size than the first, an empty frame, or one
    /// larger than GIF's 65 535 × 65 535.
    pub fn push(&mut self, frame: RgbImage) -> Result<()> {
        let (w, h) = frame.dimensions();
        if w == 0 || h == 0 || w > u16::MAX as u32 || h > u16::MAX as u32 {
            return Err(Error::shape("animation frame", "1..=65535 pixels each side", format!("{w}x{h}")));
        }
        if let Some(first) = self.frames.first() {
            if first.dimensions() != (w, h) {
                return Err(Error::shape(
                    format!("animation frame {}", self.frames.len()),
                    format!("{:?} (as frame 0)", first.dimensions()),
                    format!("{w}x{h}"),
                ));
            }
        }
        self.frames.push(frame);
        Ok(())
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there is no frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames.
    pub fn frames(&self) -> &[RgbImage] {
        &self.frames
    }

    /// The animated GIF (looping forever). Errors: no frames.
    pub fn to_gif(&self) -> Result<Vec<u8>> {
        let Some(first) = self.frames.first() else {
            return Err(Error::invalid("animation", &self.title, "has no frames"));
        };
        let (w, h) = (first.width() as u16, first.height() as u16);
        let gif_err = |e: gif::EncodingError| Error::invalid("animated GIF", &self.title, e.to_string());
        let mut out = Vec::new();
        {
            let mut enc = gif::Encoder::new(&mut out, w, h, &[]).map_err(gif_err)?;
            enc.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?;
            let delay = (self.frame_ms / 10).clamp(1, u16::MAX as u32) as u16;
            for f in &self.frames {
                let mut frame = gif::Frame::from_rgb_speed(w, h, f.as_raw(), 10);
                frame.delay = delay;
                enc.write_frame(&frame).map_err(gif_err)?;
            }
        }
        Ok(out)
    }

    /// The HTML a notebook shows: the title, the GIF as an `<img>` (at most the output's
    /// width) and the caption.
    pub fn html(&self) -> Result<String> {
        let gif = self.to_gif()?;
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        Ok(format!(
            r#"<figure style="margin:0"><figcaption><b>{}</b></figcaption><img src="data:image/gif;base64,{}" alt="animation" style="max-width:100%;height:auto;image-rendering:pixelated"><figcaption>{}</figcaption></figure>"#,
            esc(&self.title),
            base64(&gif),
            esc(&self.caption)
        ))
    }

    /// Writes the GIF to `path` atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::write_atomic(path, &self.to_gif()?)
    }

    /// Shows the animation inline in an evcxr notebook (prints an error line instead when it
    /// has no frames).
    pub fn evcxr_display(&self) {
        match self.html() {
            Ok(html) => super::display_html(&html),
            Err(e) => println!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GIF decodes (with the `gif` crate's decoder) to the same number of frames, the
    /// right size and the right delay, and a pure red frame stays red after quantisation.
    #[test]
    fn round_trip_through_a_decoder() {
        let mut a = Animation::new("t", 200);
        for c in [[255, 0, 0], [0, 255, 0], [0, 0, 255]] {
            a.push(RgbImage::from_pixel(6, 4, image::Rgb(c))).unwrap();
        }
        let bytes = a.to_gif().unwrap();
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(std::io::Cursor::new(bytes)).unwrap();
        let mut n = 0;
        while let Some(f) = dec.read_next_frame().unwrap() {
            assert_eq!((f.width, f.height, f.delay), (6, 4, 20));
            if n == 0 {
                let px = &f.buffer[..4];
                assert!(px[0] > 240 && px[1] < 15 && px[2] < 15, "{px:?}");
            }
            n += 1;
        }
        assert_eq!(n, 3);
        assert!(a.html().unwrap().contains("data:image/gif;base64,R0lGOD"));
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut a = Animation::new("t", 100);
        assert!(a.to_gif().unwrap_err().to_string().contains("no frames"));
        a.push(RgbImage::new(4, 4)).unwrap();
        assert!(a.push(RgbImage::new(5, 4)).unwrap_err().to_string().contains("frame 1"));
        assert!(a.push(RgbImage::new(0, 4)).is_err());
    }
}
