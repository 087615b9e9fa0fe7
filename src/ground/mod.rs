//! Ground matrices `D[truth][pred]`: the type, its presets and the learned matrix.
//!
//! | builder | paper | file |
//! |---|---|---|
//! | [`GroundMatrix::from_rows`], [`GroundMatrix::from_array`] | Eq. 1 | `matrix.rs` |
//! | [`GroundMatrix::importance_aware`] | Fig. 2 right, IAL as a special case | `importance.rs` |
//! | [`GroundMatrix::severity`] | Fig. 2 left | `severity.rs` |
//! | [`learned::reinforced_update`] | Section III.C, Fig. 4, Fig. 6 | `learned.rs` |

mod importance;
pub mod learned;
mod matrix;
pub mod severity;

pub use importance::ImportanceWeights;
pub use learned::{AlphaSchedule, CentroidAccumulator, LearnedDistances};
pub use matrix::GroundMatrix;
pub use severity::{SeverityTable, DEFAULT_SEVERITY};
