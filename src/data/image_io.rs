//! Decoding images and label maps, with errors that name the file.

use crate::{Error, Result};
use image::{GrayImage, RgbImage};
use std::path::Path;

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.to_path_buf(), source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()) }
}

/// Reads an RGB image (PNG or JPEG; grey or RGBA images are converted).
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    let reader = image::ImageReader::open(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let reader = reader.with_guessed_format().map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let img = reader.decode().map_err(|e| io(path, format!("cannot decode image: {e}")))?;
    Ok(img.to_rgb8())
}

/// Reads a label map: an 8-bit PNG, grey or palette-indexed, whose stored values *are* the
/// labels (the palette of an indexed PNG, as in GTA5, is ignored rather than expanded).
pub fn read_labels(path: &Path) -> Result<GrayImage> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| io(path, format!("cannot read PNG header: {e}")))?;
    let (color, depth) = reader.output_color_type();
    if depth != png::BitDepth::Eight || !matches!(color, png::ColorType::Grayscale | png::ColorType::Indexed) {
        return Err(io(
            path,
            format!("label maps must be 8-bit grey or indexed PNGs, got {color:?} with {depth:?} bits"),
        ));
    }
    let size = reader.output_buffer_size().ok_or_else(|| io(path, "label map too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| io(path, format!("cannot decode label map (truncated or corrupt?): {e}")))?;
    buf.truncate(info.buffer_size());
    let (w, h) = (info.width, info.height);
    let stride = info.line_size;
    let data: Vec<u8> =
        if stride == w as usize { buf } else { buf.chunks(stride).flat_map(|r| r[..w as usize].to_vec()).collect() };
    GrayImage::from_raw(w, h, data).ok_or_else(|| io(path, "label map has fewer bytes than its size"))
}
