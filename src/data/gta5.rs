//! GTA5 (Richter et al. 2016, "Playing for Data"): synthetic frames labelled with Cityscapes'
//! label ids, the source domain of the paper's GTA5 → Cityscapes adaptation (Table III).

use super::cityscapes::{is_label_id, read_dir_sorted};
use super::{check_pairs, load_pair, locate, read_pair_list, Dataset, Sample, Split};
use crate::classes::{ClassSet, CITYSCAPES};
use crate::data::CITYSCAPES_LABEL_TO_TRAIN;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// GTA5 in its download layout, `images/NNNNN.png` and `labels/NNNNN.png` (palette-indexed
/// PNGs whose indices are Cityscapes label ids), mapped to Cityscapes' 19 train ids.
///
/// Splits: the paper trains on all 24,966 frames, so [`Split::Train`] is every frame unless a
/// list file `train.txt` (lines `images/NNNNN.png labels/NNNNN.png`) is present; `val` and
/// `test` need `val.txt` / `test.txt`.
#[derive(Clone, Debug)]
pub struct Gta5 {
    root: PathBuf,
    split: Split,
    pairs: Vec<(PathBuf, PathBuf)>,
}

impl Gta5 {
    /// Number of frames in the full dataset.
    pub const FRAMES: usize = 24_966;

    /// Opens a split of the GTA5 folder `root`.
    pub fn new(root: impl AsRef<Path>, split: Split) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let hint = "run data-scripts/gta5.sh to download GTA5 (10 parts) and check it with --verify";
        let list = root.join(format!("{split}.txt"));
        let pairs = if list.is_file() {
            read_pair_list(&root, &list)?
        } else if split == Split::Train {
            read_dir_sorted(&root.join("images"), hint)?
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "png"))
                .map(|img| {
                    let lab = root.join("labels").join(img.file_name().unwrap_or_default());
                    (img, lab)
                })
                .collect()
        } else {
            return Err(Error::invalid(
                "split",
                format!("gta5/{split}"),
                format!("GTA5 has no official {split} split: write {} with `IMAGE LABEL` lines", list.display()),
            ));
        };
        check_pairs(&format!("gta5/{split}"), &pairs, hint)?;
        Ok(Gta5 { root, split, pairs })
    }

    /// Opens a split from the located GTA5 folder (see [`super::locate`]).
    pub fn locate(split: Split) -> Result<Self> {
        Self::new(locate("gta5", None)?, split)
    }

    /// The dataset folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Dataset for Gta5 {
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let (img, lab) = self.pairs.get(index).ok_or_else(|| {
            Error::invalid("index", index, format!("gta5/{} has {} images", self.split, self.pairs.len()))
        })?;
        load_pair(img, lab, is_label_id, Some(&CITYSCAPES_LABEL_TO_TRAIN))
    }

    fn classes(&self) -> &'static ClassSet {
        &CITYSCAPES
    }

    fn describe(&self) -> String {
        format!("gta5/{} ({} images)", self.split, self.pairs.len())
    }
}
