//! CamVid, SegNet's 11-class version (Brostow et al. 2009; Badrinarayanan et al. 2017).

use super::{check_pairs, load_pair, locate, read_pair_list, Dataset, Sample, Split};
use crate::classes::{ClassSet, CAMVID};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// CamVid as prepared for the SegNet tutorial: `train/ trainannot/ val/ valannot/ test/
/// testannot/` with list files `train.txt val.txt test.txt` of `IMAGE LABEL` lines; 360×480
/// RGB frames and 8-bit labels 0–10, 11 = void (ignored).
///
/// ```no_run
/// use rwt::data::{CamVid, Dataset, Split};
/// let train = CamVid::locate(Split::Train)?; // $RWT_DATA/camvid or ../shared/datasets/camvid
/// let sample = train.get(0)?;
/// assert_eq!(sample.image.dimensions(), (480, 360));
/// # Ok::<(), rwt::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CamVid {
    root: PathBuf,
    split: Split,
    pairs: Vec<(PathBuf, PathBuf)>,
}

impl CamVid {
    /// Images per split in the SegNet version: train 367, val 101, test 233.
    pub const SPLIT_SIZES: [(Split, usize); 3] = [(Split::Train, 367), (Split::Val, 101), (Split::Test, 233)];

    /// Opens a split of the CamVid folder `root`; checks that every listed file exists.
    pub fn new(root: impl AsRef<Path>, split: Split) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let list = root.join(format!("{split}.txt"));
        if !list.is_file() {
            return Err(Error::Io {
                path: list,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "CamVid list file missing; run data-scripts/camvid.sh to download CamVid",
                ),
            });
        }
        let pairs = read_pair_list(&root, &list)?;
        check_pairs(
            &format!("camvid/{split}"),
            &pairs,
            "run data-scripts/camvid.sh --verify DIR to check the download",
        )?;
        Ok(CamVid { root, split, pairs })
    }

    /// Opens a split from the located CamVid folder (see [`super::locate`]).
    pub fn locate(split: Split) -> Result<Self> {
        Self::new(locate("camvid", None)?, split)
    }

    /// The dataset folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The split.
    pub fn split(&self) -> Split {
        self.split
    }

    /// The `(image, label)` files of the split.
    pub fn files(&self) -> &[(PathBuf, PathBuf)] {
        &self.pairs
    }
}

impl Dataset for CamVid {
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let (img, lab) = self.pairs.get(index).ok_or_else(|| {
            Error::invalid("index", index, format!("camvid/{} has {} images", self.split, self.pairs.len()))
        })?;
        load_pair(img, lab, |v| v as u32 <= CAMVID.ignore_index, None)
    }

    fn classes(&self) -> &'static ClassSet {
        &CAMVID
    }

    fn describe(&self) -> String {
        format!("camvid/{} ({} images)", self.split, self.pairs.len())
    }
}
