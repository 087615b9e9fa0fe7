//! Augmentation (resize, scale jitter, random crop, horizontal flip) and normalisation.
//! Images are resampled bilinearly, labels by nearest neighbour, so label maps only ever hold
//! values that were in them.

use super::Sample;
use crate::{Error, Result};
use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::Rng;

/// What to do to each training sample, in this order: `resize` to a fixed size, scale by a
/// random factor in `scale`, take a random `crop` (padding with the void label and black
/// pixels when the image is smaller), flip horizontally with probability ½ when `hflip`.
///
/// ```
/// use rwt::data::Augment;
/// let train = Augment { crop: Some((256, 256)), scale: Some((0.75, 1.25)), hflip: true, ..Default::default() };
/// assert!(train.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Augment {
    /// Resize every sample to `(height, width)` first.
    pub resize: Option<(u32, u32)>,
    /// Scale jitter: a factor drawn uniformly from `[min, max]`.
    pub scale: Option<(f64, f64)>,
    /// Random crop `(height, width)`.
    pub crop: Option<(u32, u32)>,
    /// Random horizontal flip.
    pub hflip: bool,
}

impl Augment {
    /// No augmentation (evaluation).
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks the parameters; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("resize", self.resize), ("crop", self.crop)] {
            if let Some((h, w)) = v {
                if h == 0 || w == 0 {
                    return Err(Error::invalid(name, format!("{h}x{w}"), "sizes must be > 0"));
                }
            }
        }
        if let Some((a, b)) = self.scale {
            if !(a.is_finite() && b.is_finite() && a > 0.0 && a <= b) {
                return Err(Error::invalid("scale", format!("({a}, {b})"), "need 0 < min <= max"));
            }
        }
        Ok(())
    }

    /// The output size for an input of `(height, width)` when it is fixed (resize or crop),
    /// `None` when it depends on the input.
    pub fn output_size(&self) -> Option<(u32, u32)> {
        self.crop.or(if self.scale.is_none() { self.resize } else { None })
    }

    /// Applies the augmentation with `rng`; `void` is the label used for padding.
    pub fn apply(&self, s: &Sample, rng: &mut StdRng, void: u8) -> Sample {
        let (mut image, mut label) = (s.image.clone(), s.label.clone());
        if let Some((h, w)) = self.resize {
            (image, label) = resize_pair(&image, &label, w, h);
        }
        if let Some((lo, hi)) = self.scale {
            let f = if hi > lo { rng.random_range(lo..=hi) } else { lo };
            let (w, h) = image.dimensions();
            let (nw, nh) = (((w as f64 * f).round() as u32).max(1), ((h as f64 * f).round() as u32).max(1));
            (image, label) = resize_pair(&image, &label, nw, nh);
        }
        if let Some((ch, cw)) = self.crop {
            let (w, h) = image.dimensions();
            if w < cw || h < ch {
                // Pad to at least the crop size.
                let (pw, ph) = (w.max(cw), h.max(ch));
                let mut pi = RgbImage::from_pixel(pw, ph, Rgb([0, 0, 0]));
                let mut pl = GrayImage::from_pixel(pw, ph, Luma([void]));
                imageops::replace(&mut pi, &image, 0, 0);
                imageops::replace(&mut pl, &label, 0, 0);
                (image, label) = (pi, pl);
            }
            let (w, h) = image.dimensions();
            let x = rng.random_range(0..=w - cw);
            let y = rng.random_range(0..=h - ch);
            image = imageops::crop_imm(&image, x, y, cw, ch).to_image();
            label = imageops::crop_imm(&label, x, y, cw, ch).to_image();
        }
        if self.hflip && rng.random_bool(0.5) {
            image = imageops::flip_horizontal(&image);
            label = imageops::flip_horizontal(&label);
        }
        Sample { image, label, name: s.name.clone() }
    }
}

fn resize_pair(image: &RgbImage, label: &GrayImage, w: u32, h: u32) -> (RgbImage, GrayImage) {
    if image.dimensions() == (w, h) {
        return (image.clone(), label.clone());
    }
    (imageops::resize(image, w, h, FilterType::Triangle), imageops::resize(label, w, h, FilterType::Nearest))
}

/// Per-channel normalisation `(x / 255 − mean) / std` when images become tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    /// Channel means (of `x / 255`).
    pub mean: [f32; 3],
    /// Channel standard deviations.
    pub std: [f32; 3],
}

impl Default for Normalize {
    /// ImageNet statistics, as expected by ImageNet-pretrained encoders.
    fn default() -> Self {
        Normalize { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }
    }
}

impl Normalize {
    /// Writes an image as normalised CHW floats into `out` (`3 × H × W`).
    pub fn write_chw(&self, image: &RgbImage, out: &mut [f32]) {
        let (w, h) = image.dimensions();
        let plane = (w * h) as usize;
        for (i, p) in image.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = (p.0[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
    }

    /// Inverse of [`Normalize::write_chw`] for one image `[3, H, W]`, for display.
    pub fn to_image(&self, chw: &[f32], height: u32, width: u32) -> RgbImage {
        let plane = (height * width) as usize;
        RgbImage::from_fn(width, height, |x, y| {
            let i = (y * width + x) as usize;
            let px =
                |c: usize| ((chw[c * plane + i] * self.std[c] + self.mean[c]) * 255.0).round().clamp(0.0, 255.0) as u8;
            Rgb([px(0), px(1), px(2)])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::seeded;

    fn sample(w: u32, h: u32) -> Sample {
        let image = RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 7]));
        let label = GrayImage::from_fn(w, h, |x, _| Luma([(x % 3) as u8]));
        Sample { image, label, name: "s".into() }
    }

    #[test]
    fn labels_keep_their_values_and_crops_their_size() {
        let a = Augment { scale: Some((0.5, 1.7)), crop: Some((20, 30)), hflip: true, ..Default::default() };
        let mut rng = seeded(1);
        for _ in 0..50 {
            let out = a.apply(&sample(40, 25), &mut rng, 11);
            assert_eq!(out.image.dimensions(), (30, 20));
            assert_eq!(out.label.dimensions(), (30, 20));
            assert!(out.label.pixels().all(|p| p.0[0] <= 2 || p.0[0] == 11), "nearest neighbour keeps values");
        }
    }

    #[test]
    fn flip_mirrors_image_and_label_together() {
        let a = Augment { hflip: true, ..Default::default() };
        let s = sample(8, 4);
        let mut rng = seeded(3);
        let mut flipped = 0;
        for _ in 0..20 {
            let out = a.apply(&s, &mut rng, 11);
            if out.image.get_pixel(0, 0).0[0] == 7 {
                flipped += 1;
                for x in 0..8 {
                    assert_eq!(out.label.get_pixel(x, 1).0[0], s.label.get_pixel(7 - x, 1).0[0]);
                }
            }
        }
        assert!(flipped > 3 && flipped < 17);
    }

    #[test]
    fn padding_uses_the_void_label_and_validation_names_fields() {
        let a = Augment { crop: Some((10, 10)), ..Default::default() };
        let out = a.apply(&sample(4, 4), &mut seeded(0), 11);
        assert_eq!(out.label.pixels().filter(|p| p.0[0] == 11).count(), 100 - 16);
        assert!(Augment { scale: Some((1.5, 0.5)), ..Default::default() }
            .validate()
            .unwrap_err()
            .to_string()
            .contains("scale"));
        assert!(Augment { crop: Some((0, 3)), ..Default::default() }
            .validate()
            .unwrap_err()
            .to_string()
            .contains("crop = 0x3"));
    }

    #[test]
    fn normalisation_round_trips() {
        let n = Normalize::default();
        let img = sample(5, 3).image;
        let mut buf = vec![0f32; 3 * 15];
        n.write_chw(&img, &mut buf);
        assert_eq!(n.to_image(&buf, 3, 5), img);
    }
}
