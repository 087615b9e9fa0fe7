//! Class sets: names, colour palettes, the paper's importance groups and the severity
//! categories used by the severity-aware ground-matrix presets.
//!
//! Two sets ship with the crate, [`CAMVID`] (11 classes, SegNet version, void = 11) and
//! [`CITYSCAPES`] (the 19 train ids, void = 255).
//!
//! # Importance groups (Section II of the paper)
//!
//! The paper lists Cityscapes' groups as G4 = {person, rider, car, truck, bus, motorcycle,
//! bicycle, …}, G3 = {road, sidewalk, train}, G2 = {building, wall, fence, vegetation, terrain},
//! G1 = {sky}, and Table II puts CamVid's *sign* in group 3 beside road and sidewalk. Choices
//! for the classes the paper does not list:
//!
//! | class | group | why |
//! |---|---|---|
//! | train (Cityscapes) | 3 | as in the paper's text; Table I's group-4 columns omit it too |
//! | traffic light, traffic sign (Cityscapes) | 3 | CamVid's *SignSymbol* is in group 3 (Table II) |
//! | pole (both) | 2 | static structure like wall and fence; Table II's group 3 has no pole |
//! | tree (CamVid) | 2 | CamVid's name for vegetation |
//!
//! # Severity categories
//!
//! The severity presets ([`crate::ground::severity`]) cost a mistake by what the truth and the
//! prediction *are* for a driving policy; each class belongs to one [`Category`].

use std::fmt;

/// Importance group of a class, 1 (least important) to 4 (most important), as in IAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImportanceGroup {
    /// Group 1: sky.
    G1 = 1,
    /// Group 2: buildings, walls, fences, poles, vegetation, terrain.
    G2 = 2,
    /// Group 3: road, sidewalk, signs (and Cityscapes' train).
    G3 = 3,
    /// Group 4: people and vehicles.
    G4 = 4,
}

impl ImportanceGroup {
    /// All groups, least important first.
    pub const ALL: [ImportanceGroup; 4] = [Self::G1, Self::G2, Self::G3, Self::G4];

    /// The group's number, 1..=4.
    pub fn level(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ImportanceGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group {}", self.level())
    }
}

/// What a class is for a driving policy; the severity presets are a table over these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// Surface the car may drive on (road).
    Drivable,
    /// Ground beside the road where people walk or the car must not go (sidewalk, terrain).
    Walkable,
    /// Static things the car must not hit (building, wall, fence, pole, vegetation).
    Obstacle,
    /// Traffic lights and signs: carry instructions.
    Signal,
    /// Sky: nothing to hit, nothing to drive on.
    Sky,
    /// Cars, trucks, buses, trains.
    Vehicle,
    /// Vulnerable road users: pedestrians, riders, bicycles, motorcycles.
    VulnerableRoadUser,
}

impl Category {
    /// All categories, in the order of the severity table.
    pub const ALL: [Category; 7] = [
        Self::Drivable,
        Self::Walkable,
        Self::Obstacle,
        Self::Signal,
        Self::Sky,
        Self::Vehicle,
        Self::VulnerableRoadUser,
    ];

    /// Position in [`Category::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// A labelled set of segmentation classes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassSet {
    /// Short name of the set (`"camvid"`, `"cityscapes"`).
    pub name: &'static str,
    /// Class names, indexed by train id.
    pub names: &'static [&'static str],
    /// RGB colour of each class in label visualisations.
    pub palette: &'static [[u8; 3]],
    /// Importance group of each class (IAL, Section II).
    pub groups: &'static [ImportanceGroup],
    /// Severity category of each class.
    pub categories: &'static [Category],
    /// The void label, ignored by every loss and metric.
    pub ignore_index: u32,
}

impl ClassSet {
    /// Number of classes (the void label excluded).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: a class set has at least one class.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Index of the class called `name` (case-insensitive).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.eq_ignore_ascii_case(name))
    }

    /// Indices of the classes of one importance group.
    pub fn group_members(&self, group: ImportanceGroup) -> Vec<usize> {
        (0..self.len()).filter(|&c| self.groups[c] == group).collect()
    }

    /// Colour of a label value; the void label and unknown values are black.
    pub fn color(&self, label: u32) -> [u8; 3] {
        self.palette.get(label as usize).copied().unwrap_or([0, 0, 0])
    }
}

use Category::*;
use ImportanceGroup::*;

/// CamVid, SegNet's 11-class version (label 11 = void).
pub const CAMVID: ClassSet = ClassSet {
    name: "camvid",
    names: &["sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car", "pedestrian", "bicyclist"],
    palette: &[
        [128, 128, 128],
        [128, 0, 0],
        [192, 192, 128],
        [128, 64, 128],
        [60, 40, 222],
        [128, 128, 0],
        [192, 128, 128],
        [64, 64, 128],
        [64, 0, 128],
        [64, 64, 0],
        [0, 128, 192],
    ],
    groups: &[G1, G2, G2, G3, G3, G2, G3, G2, G4, G4, G4],
    categories: &[
        Sky,
        Obstacle,
        Obstacle,
        Drivable,
        Walkable,
        Obstacle,
        Signal,
        Obstacle,
        Vehicle,
        VulnerableRoadUser,
        VulnerableRoadUser,
    ],
    ignore_index: 11,
};

/// Cityscapes, the 19 evaluation classes (train ids; 255 = void).
pub const CITYSCAPES: ClassSet = ClassSet {
    name: "cityscapes",
    names: &[
        "road",
        "sidewalk",
        "building",
        "wall",
        "fence",
        "pole",
        "traffic light",
        "traffic sign",
        "vegetation",
        "terrain",
        "sky",
        "person",
        "rider",
        "car",
        "truck",
        "bus",
        "train",
        "motorcycle",
        "bicycle",
    ],
    palette: &[
        [128, 64, 128],
        [244, 35, 232],
        [70, 70, 70],
        [102, 102, 156],
        [190, 153, 153],
        [153, 153, 153],
        [250, 170, 30],
        [220, 220, 0],
        [107, 142, 35],
        [152, 251, 152],
        [70, 130, 180],
        [220, 20, 60],
        [255, 0, 0],
        [0, 0, 142],
        [0, 0, 70],
        [0, 60, 100],
        [0, 80, 100],
        [0, 0, 230],
        [119, 11, 32],
    ],
    groups: &[G3, G3, G2, G2, G2, G2, G3, G3, G2, G2, G1, G4, G4, G4, G4, G4, G3, G4, G4],
    categories: &[
        Drivable,
        Walkable,
        Obstacle,
        Obstacle,
        Obstacle,
        Obstacle,
        Signal,
        Signal,
        Obstacle,
        Walkable,
        Sky,
        VulnerableRoadUser,
        VulnerableRoadUser,
        Vehicle,
        Vehicle,
        Vehicle,
        Vehicle,
        VulnerableRoadUser,
        VulnerableRoadUser,
    ],
    ignore_index: 255,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_sets_are_consistent() {
        for set in [CAMVID, CITYSCAPES] {
            assert_eq!(set.palette.len(), set.len(), "{}", set.name);
            assert_eq!(set.groups.len(), set.len(), "{}", set.name);
            assert_eq!(set.categories.len(), set.len(), "{}", set.name);
            assert!(set.ignore_index as usize >= set.len());
        }
        assert_eq!(CAMVID.len(), 11);
        assert_eq!(CITYSCAPES.len(), 19);
    }

    #[test]
    fn paper_groups() {
        // Table II: CamVid group 3 = road, sidewalk, sign; group 4 = car, pedestrian, bike.
        let g3: Vec<_> = CAMVID.group_members(G3).iter().map(|&c| CAMVID.names[c]).collect();
        assert_eq!(g3, ["road", "sidewalk", "sign"]);
        let g4: Vec<_> = CAMVID.group_members(G4).iter().map(|&c| CAMVID.names[c]).collect();
        assert_eq!(g4, ["car", "pedestrian", "bicyclist"]);
        // Table I: Cityscapes group 4 columns.
        let g4: Vec<_> = CITYSCAPES.group_members(G4).iter().map(|&c| CITYSCAPES.names[c]).collect();
        assert_eq!(g4, ["person", "rider", "car", "truck", "bus", "motorcycle", "bicycle"]);
        assert_eq!(CITYSCAPES.group_members(G1), vec![10]);
    }
}
