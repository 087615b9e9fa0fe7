//! Datasets: CamVid, Cityscapes and GTA5 behind one small [`Dataset`] trait, the augmentation
//! pipeline, a prefetching batch loader, and hub downloads with an offline cache.
//!
//! | item | paper | file |
//! |---|---|---|
//! | [`CamVid`] (11 classes, 367/101/233) | Table II | `camvid.rs` |
//! | [`Cityscapes`] (19 train ids, 2975/500/1525) | Table I | `cityscapes.rs` |
//! | [`Gta5`] (Cityscapes' 19 classes, 24,966 frames) | Table III (GTA5 → Cityscapes) | `gta5.rs` |
//! | [`Synthetic`] (the driving simulator, 19 train ids, split by town) | Tables IV–VI towns; synthetic source domain | `synthetic.rs` |
//! | [`LabelMapping`], [`Relabeled`] (Cityscapes' 19 classes as CamVid's 11) | Table III (source → target) | `relabel.rs` |
//! | [`Augment`], [`Normalize`] | training protocol | `augment.rs` |
//! | [`Loader`] | batches on any device, decoded in parallel, prefetched | `loader.rs` |
//! | [`hub`] | weights and data on the Hugging Face hub, offline cache | `hub.rs` |
//!
//! # Where the data lives
//!
//! [`locate`] resolves a dataset folder: an explicit path, else `$RWT_DATA/<name>`, else
//! `shared/datasets/<name>` beside the crate (this project's development layout), else an
//! error that says which `data-scripts/` script downloads it.

mod augment;
mod camvid;
mod cityscapes;
mod gta5;
pub mod hub;
mod image_io;
mod loader;
mod relabel;
mod synthetic;

pub use augment::{Augment, Normalize};
pub use camvid::CamVid;
pub use cityscapes::{Cityscapes, CITYSCAPES_LABEL_TO_TRAIN};
pub use gta5::Gta5;
pub use image_io::{read_labels, read_rgb};
pub use loader::{Batch, Loader, LoaderConfig};
pub use relabel::{LabelMapping, Relabeled};
pub use synthetic::{Synthetic, SyntheticConfig};

use crate::classes::ClassSet;
use crate::{Error, Result};
use image::{GrayImage, RgbImage};
use std::path::{Path, PathBuf};

/// One image with its per-pixel labels.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The RGB image.
    pub image: RgbImage,
    /// Train ids, one per pixel, same size as the image (the void label where unlabelled).
    pub label: GrayImage,
    /// A name for the sample (the image file's stem).
    pub name: String,
}

/// A split of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training images.
    Train,
    /// Validation images.
    Val,
    /// Test images.
    Test,
}

impl Split {
    /// `"train"`, `"val"` or `"test"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A segmentation dataset: indexable samples with labels in a known class set.
///
/// `get` decodes from disk on every call; a [`Loader`] calls it from several threads.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples (never, for the datasets of this crate: an empty split is
    /// an error when it is opened).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes sample `index`; errors name the file and the problem.
    fn get(&self, index: usize) -> Result<Sample>;

    /// The class set of the labels.
    fn classes(&self) -> &'static ClassSet;

    /// A short description, e.g. `camvid/train (367 images)`.
    fn describe(&self) -> String;
}

/// Resolves the folder of dataset `name` (e.g. `"camvid"`): `explicit` if given, else
/// `$RWT_DATA/<name>`, else `shared/datasets/<name>` next to the crate or the working
/// directory. The error lists where it looked and which script downloads the data.
pub fn locate(name: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_dir() {
            Ok(p.to_path_buf())
        } else {
            Err(Error::invalid(
                "dataset path",
                p.display(),
                format!("is not a folder; run data-scripts/{name}.sh {} to download it there", p.display()),
            ))
        };
    }
    let mut tried = vec![];
    match std::env::var_os("RWT_DATA") {
        Some(root) => {
            let p = PathBuf::from(root).join(name);
            if p.is_dir() {
                return Ok(p);
            }
            tried.push(p.display().to_string());
        }
        None => tried.push("$RWT_DATA (unset)".to_string()),
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        crate_dir.join("../shared/datasets").join(name),
        PathBuf::from("../shared/datasets").join(name),
        PathBuf::from("../../shared/datasets").join(name),
    ];
    for p in candidates {
        if p.is_dir() {
            return Ok(p.canonicalize().unwrap_or(p));
        }
        tried.push(p.display().to_string());
    }
    Err(Error::invalid(
        "dataset",
        name,
        format!(
            "not found (looked in {}); download it with `data-scripts/{name}.sh DIR` and set RWT_DATA to DIR's parent, or pass the folder explicitly",
            tried.join(", ")
        ),
    ))
}

/// Counts of each label value in a set of samples (index = label value, 256 entries).
pub fn label_histogram(dataset: &dyn Dataset, indices: impl IntoIterator<Item = usize>) -> Result<Vec<u64>> {
    let mut h = vec![0u64; 256];
    for i in indices {
        for p in dataset.get(i)?.label.pixels() {
            h[p.0[0] as usize] += 1;
        }
    }
    Ok(h)
}

/// Reads a list file of `IMAGE LABEL` lines (paths relative to `root`, or absolute paths
/// whose last two components are used — the SegNet tutorial's lists carry absolute paths).
pub(crate) fn read_pair_list(root: &Path, list: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let text = crate::io::read_text(list)?;
    let mut pairs = vec![];
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() != 2 {
            return Err(Error::invalid(
                "list file line",
                format!("{}:{}", list.display(), lineno + 1),
                format!("expected `IMAGE LABEL`, got {line:?}"),
            ));
        }
        let fix = |p: &str| -> PathBuf {
            let path = Path::new(p);
            if path.is_absolute() {
                // Keep the last two components (`train/xxx.png`).
                let comps: Vec<_> = path.components().rev().take(2).collect();
                root.join(comps[1].as_os_str()).join(comps[0].as_os_str())
            } else {
                root.join(path)
            }
        };
        pairs.push((fix(parts[0]), fix(parts[1])));
    }
    Ok(pairs)
}

/// Fails on the first missing file of a split, or on an empty split.
pub(crate) fn check_pairs(what: &str, pairs: &[(PathBuf, PathBuf)], hint: &str) -> Result<()> {
    if pairs.is_empty() {
        return Err(Error::invalid("split", what, format!("has no images; {hint}")));
    }
    for (img, lab) in pairs {
        for p in [img, lab] {
            if !p.is_file() {
                return Err(Error::Io {
                    path: p.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("missing file of {what}; {hint}"),
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Decodes an image/label pair and checks sizes and label values (`valid(v)` for every stored
/// label value, else an error naming the value and the file), then maps stored values to
/// train ids with `map` when given.
pub(crate) fn load_pair(img: &Path, lab: &Path, valid: impl Fn(u8) -> bool, map: Option<&[u8; 256]>) -> Result<Sample> {
    let image = read_rgb(img)?;
    let mut label = read_labels(lab)?;
    if image.dimensions() != label.dimensions() {
        return Err(Error::shape(
            format!("label {} for image {}", lab.display(), img.display()),
            format!("{}x{} (the image's width x height)", image.width(), image.height()),
            format!("{}x{}", label.width(), label.height()),
        ));
    }
    if let Some((i, p)) = label.pixels().enumerate().find(|(_, p)| !valid(p.0[0])) {
        let w = label.width() as usize;
        return Err(Error::invalid(
            "label value",
            p.0[0],
            format!("at pixel (x {}, y {}) of {} is not a class of this dataset", i % w, i / w, lab.display()),
        ));
    }
    if let Some(map) = map {
        for p in label.pixels_mut() {
            p.0[0] = map[p.0[0] as usize];
        }
    }
    let name = img.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Sample { image, label, name })
}
