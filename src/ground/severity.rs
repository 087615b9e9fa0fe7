//! Severity-aware ground matrices (Fig. 2 left) for any [`ClassSet`].
//!
//! Each class has a [`Category`] (what it is for a driving policy) and the cost of a mistake
//! is read from a table over categories: `D[y][p] = S[cat(y)][cat(p)]` for `p ≠ y`. The
//! diagonal of `S` is the cost of confusing two *different* classes of the same category
//! (car→bus). The table is asymmetric on purpose: missing a person and seeing free road is
//! far worse than braking for a phantom person.
//!
//! # The default table `S[truth][pred]`
//!
//! | truth \ pred | drivable | walkable | obstacle | signal | sky | vehicle | VRU |
//! |---|---|---|---|---|---|---|---|
//! | **drivable** (road) | · | 0.2 | 0.3 | 0.2 | 0.3 | 0.3 | 0.3 |
//! | **walkable** (sidewalk, terrain) | 0.6 | 0.1 | 0.3 | 0.2 | 0.4 | 0.3 | 0.3 |
//! | **obstacle** (building, wall, fence, pole, vegetation) | 0.8 | 0.6 | 0.1 | 0.2 | 0.8 | 0.3 | 0.3 |
//! | **signal** (traffic light, sign) | 0.5 | 0.5 | 0.3 | 0.2 | 0.5 | 0.3 | 0.3 |
//! | **sky** | 0.2 | 0.2 | 0.1 | 0.1 | · | 0.2 | 0.2 |
//! | **vehicle** (car, truck, bus, train) | 0.9 | 0.8 | 0.4 | 0.4 | 0.9 | 0.1 | 0.2 |
//! | **VRU** (person, rider, bicycle, motorcycle) | 1.0 | 0.9 | 0.5 | 0.5 | 1.0 | 0.3 | 0.1 |
//!
//! Reasoning, row by row:
//! - **VRU**: predicting a person as road or sky means the planner sees free space where a
//!   person stands — the catastrophic case (1.0); as sidewalk almost as bad (0.9, a car may
//!   still enter it); as a static obstacle or a sign the car still avoids it but mis-predicts
//!   its motion (0.5); as a vehicle it is an obstacle that moves, only its dynamics are off
//!   (0.3); person↔rider is nearly harmless (0.1).
//! - **vehicle**: as road or sky, a collision course (0.9); as sidewalk, still free space for
//!   some planners (0.8); as a static obstacle or sign the car still brakes (0.4); car→bus is
//!   the paper's example of a mild mistake (0.1).
//! - **obstacle**: a wall seen as road or sky invites a crash (0.8).
//! - **signal**: a missed sign loses an instruction (0.5), not a collision.
//! - **walkable**: sidewalk seen as road leads the car onto the pavement (0.6).
//! - **drivable**: road seen as something else costs comfort (phantom braking), not safety
//!   (0.2–0.3) — hence person→road (1.0) ≫ road→person (0.3).
//! - **sky**: its mistakes rarely matter (≤ 0.2).
//!
//! The within-category costs (0.1) are small on purpose, which matters for the transform:
//! `f = d` keeps them a ninth of a cross-category 0.9, `d²` makes them an 81st, and on CamVid
//! sky and tree then drift into building (see [`crate::transform`]'s measurements: use
//! `f = d` with this table).

use crate::classes::{Category, ClassSet};
use crate::{Error, GroundMatrix, Result};

/// A severity table over [`Category::ALL`]: `table[truth][pred]`; the diagonal is the cost
/// between two different classes of one category.
pub type SeverityTable = [[f64; 7]; 7];

/// The default severity table documented in [this module](self).
pub const DEFAULT_SEVERITY: SeverityTable = [
    // drivable walkable obstacle signal sky  vehicle VRU
    [0.0, 0.2, 0.3, 0.2, 0.3, 0.3, 0.3], // drivable
    [0.6, 0.1, 0.3, 0.2, 0.4, 0.3, 0.3], // walkable
    [0.8, 0.6, 0.1, 0.2, 0.8, 0.3, 0.3], // obstacle
    [0.5, 0.5, 0.3, 0.2, 0.5, 0.3, 0.3], // signal
    [0.2, 0.2, 0.1, 0.1, 0.0, 0.2, 0.2], // sky
    [0.9, 0.8, 0.4, 0.4, 0.9, 0.1, 0.2], // vehicle
    [1.0, 0.9, 0.5, 0.5, 1.0, 0.3, 0.1], // vulnerable road user
];

impl GroundMatrix {
    /// The severity-aware preset for a class set, from [`DEFAULT_SEVERITY`].
    ///
    /// ```
    /// use rwt::{GroundMatrix, CITYSCAPES};
    /// let d = GroundMatrix::severity(&CITYSCAPES);
    /// let (person, road, car, bus, sky) = (11, 0, 13, 15, 10);
    /// assert!(d.get(person, road) > d.get(road, person));
    /// assert!(d.get(car, bus) < d.get(car, road));
    /// assert!(d.get(car, sky) > 0.8);
    /// ```
    pub fn severity(classes: &ClassSet) -> GroundMatrix {
        Self::severity_with_table(classes, &DEFAULT_SEVERITY).expect("the default table is valid")
    }

    /// A severity matrix from your own category table (entries finite and `≥ 0`).
    pub fn severity_with_table(classes: &ClassSet, table: &SeverityTable) -> Result<GroundMatrix> {
        for (r, row) in table.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::invalid(
                        "severity table entry",
                        v,
                        format!("S[{:?}][{:?}] must be finite and >= 0", Category::ALL[r], Category::ALL[c]),
                    ));
                }
            }
        }
        let n = classes.len();
        let values = (0..n * n)
            .map(|k| {
                let (t, p) = (k / n, k % n);
                if t == p {
                    0.0
                } else {
                    table[classes.categories[t].index()][classes.categories[p].index()]
                }
            })
            .collect();
        GroundMatrix::from_flat(classes.names.iter().map(|s| s.to_string()).collect(), values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::{CAMVID, CITYSCAPES};

    #[test]
    fn presets_follow_the_papers_examples() {
        for set in [CAMVID, CITYSCAPES] {
            let d = GroundMatrix::severity(&set);
            let i = |n: &str| set.index_of(n).unwrap();
            let (person, road, car, sky) = match set.name {
                "camvid" => (i("pedestrian"), i("road"), i("car"), i("sky")),
                _ => (i("person"), i("road"), i("car"), i("sky")),
            };
            assert!(d.get(person, road) > d.get(road, person), "{}", set.name);
            assert!(d.get(person, road) > d.get(sky, road), "{}", set.name);
            assert!(d.get(car, road) >= 0.9 && d.get(car, sky) >= 0.9);
            assert!(!d.is_symmetric(1e-9));
            assert_eq!(d.max(), 1.0);
        }
        let d = GroundMatrix::severity(&CITYSCAPES);
        assert!(d.get(13, 15) < 0.2, "car→bus is mild");
    }

    #[test]
    fn bad_table_is_named() {
        let mut t = DEFAULT_SEVERITY;
        t[1][2] = -1.0;
        let e = GroundMatrix::severity_with_table(&CAMVID, &t).unwrap_err().to_string();
        assert!(e.contains("S[Walkable][Obstacle]"), "{e}");
    }
}
