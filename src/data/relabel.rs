//! Label spaces: a mapping of one class set onto another, applied to label maps, to datasets
//! and to ground matrices — so that a source domain labelled in Cityscapes' 19 classes (the
//! simulator, GTA5) trains a segmenter evaluated in CamVid's 11 (self-training, Table III).
//!
//! [`LabelMapping::cityscapes_to_camvid`] is the mapping used here:
//!
//! | Cityscapes | CamVid | why |
//! |---|---|---|
//! | road, sidewalk, building, fence, pole, sky, car | the same | |
//! | wall | building | CamVid's 11-class version folds walls into *Building* |
//! | traffic light, traffic sign | sign | CamVid's *SignSymbol* holds both |
//! | vegetation, terrain | tree | CamVid's *Tree* holds *VegetationMisc* too |
//! | person | pedestrian | |
//! | rider, motorcycle, bicycle | bicyclist | CamVid's *Bicyclist* is the rider with the bike |
//! | truck, bus, train | car | CamVid's *Car* holds every motor vehicle |
//!
//! The void label of the source maps to the void label of the target.

use super::{Dataset, Sample};
use crate::classes::{ClassSet, CAMVID, CITYSCAPES};
use crate::{Error, GroundMatrix, Result};
use std::sync::Arc;

/// A total map from the classes of `source` to the classes of `target`: `map[s]` is the
/// target class of source class `s`. Several source classes may share a target class; every
/// target class must receive at least one source class (else the target class could never be
/// learned from the source, and its row of a mapped ground matrix would be undefined).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelMapping {
    source: &'static ClassSet,
    target: &'static ClassSet,
    map: Vec<u32>,
}

impl LabelMapping {
    /// A mapping from `(source name, target name)` pairs, one per source class.
    ///
    /// # Errors
    /// A name that is not a class of its set, a source class given twice or not at all, and a
    /// target class that no source class maps to: each named.
    pub fn new<'a>(
        source: &'static ClassSet,
        target: &'static ClassSet,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let mut map: Vec<Option<u32>> = vec![None; source.len()];
        for (s, t) in pairs {
            let si = source
                .index_of(s)
                .ok_or_else(|| Error::invalid("label mapping", s, format!("is not a class of {}", source.name)))?;
            let ti = target
                .index_of(t)
                .ok_or_else(|| Error::invalid("label mapping", t, format!("is not a class of {}", target.name)))?;
            if map[si].replace(ti as u32).is_some() {
                return Err(Error::invalid("label mapping", s, "is mapped twice"));
            }
        }
        let map = map
            .iter()
            .enumerate()
            .map(|(s, t)| {
                t.ok_or_else(|| {
                    Error::invalid(
                        "label mapping",
                        source.names[s],
                        format!("{} class has no {} class to map to", source.name, target.name),
                    )
                })
            })
            .collect::<Result<Vec<u32>>>()?;
        if let Some(t) = (0..target.len() as u32).find(|t| !map.contains(t)) {
            return Err(Error::invalid(
                "label mapping",
                target.names[t as usize],
                format!("no {} class maps to this {} class", source.name, target.name),
            ));
        }
        Ok(LabelMapping { source, target, map })
    }

    /// Cityscapes' 19 train ids onto CamVid's 11 classes (the table in the module docs).
    pub fn cityscapes_to_camvid() -> Self {
        let pairs = [
            ("road", "road"),
            ("sidewalk", "sidewalk"),
            ("building", "building"),
            ("wall", "building"),
            ("fence", "fence"),
            ("pole", "pole"),
            ("traffic light", "sign"),
            ("traffic sign", "sign"),
            ("vegetation", "tree"),
            ("terrain", "tree"),
            ("sky", "sky"),
            ("person", "pedestrian"),
            ("rider", "bicyclist"),
            ("car", "car"),
            ("truck", "car"),
            ("bus", "car"),
            ("train", "car"),
            ("motorcycle", "bicyclist"),
            ("bicycle", "bicyclist"),
        ];
        Self::new(&CITYSCAPES, &CAMVID, pairs).expect("the built-in mapping is total")
    }

    /// The mapping from `source` to `target` by name: the identity when they are the same set,
    /// [`Self::cityscapes_to_camvid`] for Cityscapes → CamVid.
    ///
    /// # Errors
    /// Any other pair of class sets (build it with [`Self::new`]).
    pub fn between(source: &'static ClassSet, target: &'static ClassSet) -> Result<Self> {
        if source.name == target.name {
            let pairs: Vec<(&str, &str)> = source.names.iter().map(|n| (*n, *n)).collect();
            return Self::new(source, target, pairs);
        }
        if source.name == CITYSCAPES.name && target.name == CAMVID.name {
            return Ok(Self::cityscapes_to_camvid());
        }
        Err(Error::invalid(
            "label mapping",
            format!("{} -> {}", source.name, target.name),
            "has no built-in mapping; build one with LabelMapping::new",
        ))
    }

    /// The source class set.
    pub fn source(&self) -> &'static ClassSet {
        self.source
    }

    /// The target class set.
    pub fn target(&self) -> &'static ClassSet {
        self.target
    }

    /// The target class of source class `s` (`None` for an id outside the source set, the
    /// void label included).
    pub fn target_of(&self, s: u32) -> Option<u32> {
        self.map.get(s as usize).copied()
    }

    /// The source classes that map to target class `t`.
    pub fn sources_of(&self, t: u32) -> Vec<usize> {
        (0..self.map.len()).filter(|&s| self.map[s] == t).collect()
    }

    /// A label map in source ids as target ids, in place: every id outside the source classes
    /// (void) becomes the target's void label.
    pub fn apply(&self, labels: &mut [u8]) {
        let void = self.target.ignore_index.min(255) as u8;
        for v in labels {
            *v = self.target_of(*v as u32).map_or(void, |t| t as u8);
        }
    }

    /// A ground matrix over the source classes as one over the target classes: off the
    /// diagonal, `D'[a][b]` is the mean of `D[i][j]` over the source classes `i → a`, `j → b`;
    /// `D'[a][a] = 0` (a mistake between two classes that merge is no mistake any more).
    ///
    /// # Errors
    /// `ground`'s class names are not the source set's, in order.
    pub fn ground(&self, ground: &GroundMatrix) -> Result<GroundMatrix> {
        if ground.names().iter().map(String::as_str).ne(self.source.names.iter().copied()) {
            return Err(Error::invalid(
                "ground matrix",
                ground.names().join(", "),
                format!("is not over the {} classes the label mapping starts from", self.source.name),
            ));
        }
        let n = self.target.len();
        let mut rows = vec![vec![0.0; n]; n];
        for (a, row) in rows.iter_mut().enumerate() {
            for (b, v) in row.iter_mut().enumerate() {
                if a == b {
                    continue;
                }
                let (ia, ib) = (self.sources_of(a as u32), self.sources_of(b as u32));
                let sum: f64 = ia.iter().flat_map(|&i| ib.iter().map(move |&j| ground.get(i, j))).sum();
                *v = sum / (ia.len() * ib.len()) as f64;
            }
        }
        GroundMatrix::from_rows(self.target.names.iter().copied(), rows)
    }
}

/// A dataset whose labels are mapped into another class set by a [`LabelMapping`]: e.g. the
/// simulator (Cityscapes' classes) as a source domain for a CamVid segmenter.
#[derive(Clone)]
pub struct Relabeled {
    inner: Arc<dyn Dataset>,
    mapping: LabelMapping,
}

impl Relabeled {
    /// `inner` with its labels mapped by `mapping`.
    ///
    /// # Errors
    /// `inner`'s class set is not the mapping's source.
    pub fn new(inner: Arc<dyn Dataset>, mapping: LabelMapping) -> Result<Self> {
        if inner.classes().name != mapping.source().name {
            return Err(Error::invalid(
                "label mapping",
                format!("{} -> {}", mapping.source().name, mapping.target().name),
                format!("does not start from the classes of {} ({})", inner.describe(), inner.classes().name),
            ));
        }
        Ok(Relabeled { inner, mapping })
    }

    /// The mapping applied.
    pub fn mapping(&self) -> &LabelMapping {
        &self.mapping
    }
}

impl Dataset for Relabeled {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let mut s = self.inner.get(index)?;
        let mut raw = std::mem::take(&mut s.label).into_raw();
        self.mapping.apply(&mut raw);
        let (w, h) = s.image.dimensions();
        s.label = image::GrayImage::from_raw(w, h, raw).expect("same size");
        Ok(s)
    }

    fn classes(&self) -> &'static ClassSet {
        self.mapping.target()
    }

    fn describe(&self) -> String {
        format!("{} as {}", self.inner.describe(), self.mapping.target().name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cityscapes_to_camvid_covers_every_class_once() {
        let m = LabelMapping::cityscapes_to_camvid();
        // Every CamVid class is reached; the merged ones from the documented sources.
        let names = |t: &str| -> Vec<&str> {
            m.sources_of(CAMVID.index_of(t).unwrap() as u32).iter().map(|&s| CITYSCAPES.names[s]).collect()
        };
        assert_eq!(names("car"), ["car", "truck", "bus", "train"]);
        assert_eq!(names("bicyclist"), ["rider", "motorcycle", "bicycle"]);
        assert_eq!(names("sign"), ["traffic light", "traffic sign"]);
        assert_eq!(names("tree"), ["vegetation", "terrain"]);
        assert_eq!(names("building"), ["building", "wall"]);
        assert_eq!(names("pedestrian"), ["person"]);
        let total: usize = (0..11).map(|t| m.sources_of(t).len()).sum();
        assert_eq!(total, 19);
    }

    #[test]
    fn labels_map_and_void_stays_void() {
        let m = LabelMapping::cityscapes_to_camvid();
        let mut l = vec![0u8, 11, 14, 255, 7, 19];
        m.apply(&mut l);
        // road→road(3), person→pedestrian(9), bus→car(8), void→void(11), sign→sign(6), 19 (not a class)→void.
        assert_eq!(l, [3, 9, 8, 11, 6, 11]);
    }

    #[test]
    fn ground_is_the_block_mean_with_a_zero_diagonal() {
        let m = LabelMapping::cityscapes_to_camvid();
        // D[i][j] = i + j/100 off the diagonal: the block mean is known in closed form.
        let n = 19;
        let rows: Vec<Vec<f64>> =
            (0..n).map(|i| (0..n).map(|j| if i == j { 0.0 } else { i as f64 + j as f64 / 100.0 }).collect()).collect();
        let d = GroundMatrix::from_rows(CITYSCAPES.names.iter().copied(), rows).unwrap();
        let g = m.ground(&d).unwrap();
        let (car, ped) = (CAMVID.index_of("car").unwrap(), CAMVID.index_of("pedestrian").unwrap());
        // car ← {13, 14, 15, 16}; pedestrian ← {11}: mean of i over the car block = 14.5, j = 11.
        assert!((g.get(car, ped) - (14.5 + 0.11)).abs() < 1e-12);
        assert!((g.get(ped, car) - (11.0 + 0.145)).abs() < 1e-12);
        assert_eq!(g.get(car, car), 0.0);
        // The wrong class set is refused, naming it.
        let camvid = GroundMatrix::severity(&CAMVID);
        let err = m.ground(&camvid).unwrap_err().to_string();
        assert!(err.contains("cityscapes"), "{err}");
    }

    #[test]
    fn incomplete_mappings_are_named() {
        let err = LabelMapping::new(&CITYSCAPES, &CAMVID, [("road", "road")]).unwrap_err().to_string();
        assert!(err.contains("sidewalk") && err.contains("no camvid class"), "{err}");
        let pairs: Vec<(&str, &str)> = CITYSCAPES.names.iter().map(|n| (*n, "road")).collect();
        let err = LabelMapping::new(&CITYSCAPES, &CAMVID, pairs).unwrap_err().to_string();
        assert!(err.contains("sky") && err.contains("no cityscapes class maps"), "{err}");
        let err = LabelMapping::new(&CITYSCAPES, &CAMVID, [("lamp", "road")]).unwrap_err().to_string();
        assert!(err.contains("lamp"), "{err}");
        let err = LabelMapping::new(&CITYSCAPES, &CAMVID, [("road", "road"), ("road", "sky")]).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
        assert!(LabelMapping::between(&CAMVID, &CITYSCAPES).is_err());
        assert_eq!(LabelMapping::between(&CAMVID, &CAMVID).unwrap().target_of(4), Some(4));
    }
}
