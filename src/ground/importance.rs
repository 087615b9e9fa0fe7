//! The importance-aware ground matrix (Fig. 2 right): IAL as a special case of the
//! Wasserstein loss.
//!
//! Importance-aware learning (IAL) weights each pixel's loss by the importance group of its
//! true class. Setting `D[y][p] = w(y)` for every `p ≠ y` makes the exact one-hot Wasserstein
//! loss (Eq. 2) equal to `Σ_p s_p D[y][p] = w(y) (1 − s_y)`, the linearised IAL. The class
//! groups are those of [`ClassSet::groups`].

use crate::classes::{ClassSet, ImportanceGroup};
use crate::{Error, GroundMatrix, Result};

/// The weight of each importance group, group 1 first.
///
/// The default is `[0.25, 0.5, 0.75, 1.0]`: the group number divided by 4, so that the most
/// important group weighs 1 like the largest severity in the presets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImportanceWeights {
    /// Weights of groups 1..=4.
    pub weights: [f64; 4],
}

impl Default for ImportanceWeights {
    fn default() -> Self {
        ImportanceWeights { weights: [0.25, 0.5, 0.75, 1.0] }
    }
}

impl ImportanceWeights {
    /// Weights from group 1 to group 4; each must be finite and `> 0`.
    pub fn new(weights: [f64; 4]) -> Result<Self> {
        for (g, &w) in weights.iter().enumerate() {
            if !(w.is_finite() && w > 0.0) {
                return Err(Error::invalid(
                    "importance weight",
                    w,
                    format!("group {} needs a finite weight > 0", g + 1),
                ));
            }
        }
        Ok(ImportanceWeights { weights })
    }

    /// The weight of one group.
    pub fn of(&self, group: ImportanceGroup) -> f64 {
        self.weights[group.level() - 1]
    }

    /// The weight of each class of `classes`, by its group.
    pub fn class_weights(&self, classes: &ClassSet) -> Vec<f64> {
        classes.groups.iter().map(|&g| self.of(g)).collect()
    }
}

impl GroundMatrix {
    /// The importance-aware matrix: `D[y][p] = w(group(y))` for `p ≠ y`, 0 on the diagonal.
    ///
    /// ```
    /// use rwt::{GroundMatrix, ImportanceWeights, CAMVID};
    /// let d = GroundMatrix::importance_aware(&CAMVID, &ImportanceWeights::default())?;
    /// assert_eq!(d.get(9, 0), 1.0); // pedestrian (group 4) predicted as anything
    /// assert_eq!(d.get(0, 9), 0.25); // sky (group 1) predicted as anything
    /// # Ok::<(), rwt::Error>(())
    /// ```
    pub fn importance_aware(classes: &ClassSet, weights: &ImportanceWeights) -> Result<GroundMatrix> {
        Self::from_class_weights(classes.names.iter().copied(), &weights.class_weights(classes))
    }

    /// `D[y][p] = w[y]` for `p ≠ y`, from one weight per true class.
    pub fn from_class_weights<S: Into<String>>(names: impl IntoIterator<Item = S>, w: &[f64]) -> Result<GroundMatrix> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.len() != w.len() {
            return Err(Error::ClassCount { what: "class weights", expected: names.len(), got: w.len() });
        }
        let n = w.len();
        let values = (0..n * n).map(|k| if k / n == k % n { 0.0 } else { w[k / n] }).collect();
        GroundMatrix::from_flat(names, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::{CAMVID, CITYSCAPES};

    #[test]
    fn rows_are_constant_off_diagonal() {
        let w = ImportanceWeights::new([1.0, 2.0, 3.0, 4.0]).unwrap();
        let d = GroundMatrix::importance_aware(&CITYSCAPES, &w).unwrap();
        for y in 0..19 {
            let expected = CITYSCAPES.groups[y].level() as f64;
            for p in 0..19 {
                assert_eq!(d.get(y, p), if p == y { 0.0 } else { expected });
            }
        }
        assert!(ImportanceWeights::new([1.0, 0.0, 1.0, 1.0]).is_err());
        assert!(GroundMatrix::from_class_weights(CAMVID.names.iter().copied(), &[1.0; 3]).is_err());
    }
}
