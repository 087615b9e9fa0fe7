//! Cityscapes (Cordts et al. 2016), fine annotations mapped to the 19 evaluation classes.

use super::{check_pairs, load_pair, locate, Dataset, Sample, Split};
use crate::classes::{ClassSet, CITYSCAPES};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Cityscapes `labelIds` (0–33) → train ids (0–18, 255 = ignored), the official table of
/// `cityscapesscripts/helpers/labels.py`. Values that are not label ids map to 255.
pub const CITYSCAPES_LABEL_TO_TRAIN: [u8; 256] = {
    let mut t = [255u8; 256];
    // (id, trainId) for the 19 evaluated classes.
    let pairs: [(usize, u8); 19] = [
        (7, 0),
        (8, 1),
        (11, 2),
        (12, 3),
        (13, 4),
        (17, 5),
        (19, 6),
        (20, 7),
        (21, 8),
        (22, 9),
        (23, 10),
        (24, 11),
        (25, 12),
        (26, 13),
        (27, 14),
        (28, 15),
        (31, 16),
        (32, 17),
        (33, 18),
    ];
    let mut i = 0;
    while i < pairs.len() {
        t[pairs[i].0] = pairs[i].1;
        i += 1;
    }
    t
};

/// A stored Cityscapes/GTA5 label value is a label id 0–33, or 255 (void in converted data).
pub(crate) fn is_label_id(v: u8) -> bool {
    v <= 33 || v == 255
}

/// Cityscapes in its official layout: `leftImg8bit/{split}/{city}/*_leftImg8bit.png` and
/// `gtFine/{split}/{city}/*_gtFine_labelIds.png`, labels mapped to the 19 train ids with
/// [`CITYSCAPES_LABEL_TO_TRAIN`] (void = 255). 2975 / 500 / 1525 images.
#[derive(Clone, Debug)]
pub struct Cityscapes {
    root: PathBuf,
    split: Split,
    pairs: Vec<(PathBuf, PathBuf)>,
}

impl Cityscapes {
    /// Images per split: train 2975, val 500, test 1525 (test labels are withheld by the
    /// benchmark and all void).
    pub const SPLIT_SIZES: [(Split, usize); 3] = [(Split::Train, 2975), (Split::Val, 500), (Split::Test, 1525)];

    /// Opens a split of the Cityscapes folder `root`; every image must have its label file.
    pub fn new(root: impl AsRef<Path>, split: Split) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let hint = "run data-scripts/cityscapes.sh (it needs your Cityscapes login) and check the layout with --verify";
        let images = root.join("leftImg8bit").join(split.as_str());
        let cities = read_dir_sorted(&images, hint)?;
        let mut pairs = vec![];
        for city in cities.iter().filter(|p| p.is_dir()) {
            for img in read_dir_sorted(city, hint)? {
                let name = img.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let Some(stem) = name.strip_suffix("_leftImg8bit.png") else { continue };
                let city_name = city.file_name().unwrap_or_default();
                let lab = root
                    .join("gtFine")
                    .join(split.as_str())
                    .join(city_name)
                    .join(format!("{stem}_gtFine_labelIds.png"));
                pairs.push((img, lab));
            }
        }
        check_pairs(&format!("cityscapes/{split}"), &pairs, hint)?;
        Ok(Cityscapes { root, split, pairs })
    }

    /// Opens a split from the located Cityscapes folder (see [`super::locate`]).
    pub fn locate(split: Split) -> Result<Self> {
        Self::new(locate("cityscapes", None)?, split)
    }

    /// The dataset folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `(image, label)` files of the split.
    pub fn files(&self) -> &[(PathBuf, PathBuf)] {
        &self.pairs
    }
}

/// The entries of a folder, sorted; an error naming the folder if it cannot be read.
pub(crate) fn read_dir_sorted(dir: &Path, hint: &str) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(e.kind(), format!("{e}; {hint}")),
    })?;
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    Ok(v)
}

impl Dataset for Cityscapes {
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let (img, lab) = self.pairs.get(index).ok_or_else(|| {
            Error::invalid("index", index, format!("cityscapes/{} has {} images", self.split, self.pairs.len()))
        })?;
        let mut s = load_pair(img, lab, is_label_id, Some(&CITYSCAPES_LABEL_TO_TRAIN))?;
        s.name = s.name.trim_end_matches("_leftImg8bit").to_string();
        Ok(s)
    }

    fn classes(&self) -> &'static ClassSet {
        &CITYSCAPES
    }

    fn describe(&self) -> String {
        format!("cityscapes/{} ({} images)", self.split, self.pairs.len())
    }
}
