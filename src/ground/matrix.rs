//! The [`GroundMatrix`] type: `D[truth][pred]`, the severity of predicting `pred` for a pixel
//! whose true class is `truth` (Section III, Fig. 2).
//!
//! Conventions (see the crate docs): rows are true classes and columns predicted classes, like
//! a confusion matrix; `D[t][t] = 0`; `D ≥ 0`; **not** symmetric in general (person→road is
//! worse than road→person).

use crate::{Error, Result, Transform};
use candle_core::{DType, Device, Tensor};
use ndarray::Array2;
use std::fmt;

/// A validated ground matrix that knows its class names.
///
/// ```
/// use rwt::GroundMatrix;
/// let d = GroundMatrix::from_rows(["car", "bus", "road"], [
///     [0.0, 0.1, 0.9],
///     [0.1, 0.0, 0.9],
///     [0.3, 0.3, 0.0],
/// ])?;
/// assert_eq!(d.get(0, 2), 0.9); // car predicted as road
/// assert!(!d.is_symmetric(1e-12));
/// # Ok::<(), rwt::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GroundMatrix {
    names: Vec<String>,
    /// Row-major `N × N` values, `values[truth * N + pred]`.
    values: Vec<f64>,
}

impl GroundMatrix {
    /// Builds a ground matrix from class names and explicit rows (`rows[truth][pred]`).
    ///
    /// Returns an error naming the problem when there are no classes, the matrix is not
    /// square, does not match the number of names, has a NaN/infinite or negative entry, or a
    /// non-zero diagonal.
    pub fn from_rows<S, R>(names: impl IntoIterator<Item = S>, rows: impl IntoIterator<Item = R>) -> Result<Self>
    where
        S: Into<String>,
        R: AsRef<[f64]>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let rows: Vec<R> = rows.into_iter().collect();
        let n = rows.len();
        let mut values = Vec::with_capacity(n * n);
        for row in &rows {
            let row = row.as_ref();
            if row.len() != n {
                return Err(Error::NotSquare { what: "ground matrix", rows: n, cols: row.len() });
            }
            values.extend_from_slice(row);
        }
        Self::from_flat(names, values)
    }

    /// Builds a ground matrix from an `N × N` ndarray.
    pub fn from_array<S: Into<String>>(names: impl IntoIterator<Item = S>, array: &Array2<f64>) -> Result<Self> {
        let (r, c) = array.dim();
        if r != c {
            return Err(Error::NotSquare { what: "ground matrix", rows: r, cols: c });
        }
        Self::from_flat(names.into_iter().map(Into::into).collect(), array.iter().copied().collect())
    }

    /// Builds from a flat row-major buffer of `N²` values; validates everything.
    pub(crate) fn from_flat(names: Vec<String>, values: Vec<f64>) -> Result<Self> {
        let n = names.len();
        if n == 0 && values.is_empty() {
            return Err(Error::invalid(
                "ground matrix",
                "0 classes",
                "needs at least one class (one name and one row each)",
            ));
        }
        if values.len() != n * n {
            let rows = (values.len() as f64).sqrt().round() as usize;
            return Err(Error::ClassCount { what: "ground matrix rows vs class names", expected: n, got: rows });
        }
        let m = GroundMatrix { names, values };
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<()> {
        let n = self.num_classes();
        for t in 0..n {
            for p in 0..n {
                let v = self.get(t, p);
                if !v.is_finite() {
                    return Err(Error::NonFinite { what: "ground matrix D", row: t, col: p, value: v });
                }
                if v < 0.0 {
                    return Err(Error::Negative { what: "ground matrix D", row: t, col: p, value: v });
                }
            }
            let d = self.get(t, t);
            if d != 0.0 {
                return Err(Error::NonZeroDiagonal { class: t, name: self.names[t].clone(), value: d });
            }
        }
        Ok(())
    }

    /// Number of classes `N`.
    pub fn num_classes(&self) -> usize {
        self.names.len()
    }

    /// Class names, indexed like the rows and columns.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `D[truth][pred]`.
    ///
    /// # Panics
    /// If an index is `>= N`, like slice indexing.
    pub fn get(&self, truth: usize, pred: usize) -> f64 {
        self.values[truth * self.num_classes() + pred]
    }

    /// Row `truth`: the cost of every prediction for a pixel of that class.
    pub fn row(&self, truth: usize) -> &[f64] {
        let n = self.num_classes();
        &self.values[truth * n..(truth + 1) * n]
    }

    /// Row-major `N²` values.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Copy as an `N × N` ndarray.
    pub fn to_array(&self) -> Array2<f64> {
        let n = self.num_classes();
        Array2::from_shape_vec((n, n), self.values.clone()).expect("N*N values")
    }

    /// Largest entry.
    pub fn max(&self) -> f64 {
        self.values.iter().copied().fold(0.0, f64::max)
    }

    /// Scaled so that the largest entry is 1 (unchanged when all entries are 0).
    pub fn normalized(&self) -> GroundMatrix {
        let m = self.max();
        if m == 0.0 {
            return self.clone();
        }
        self.map_values(|v| v / m)
    }

    /// `f(D)` entry-wise (Section III.B). The diagonal stays 0 because every transform maps 0
    /// to 0. The result is validated like [`GroundMatrix::from_rows`]: a parameter that
    /// overflows an entry (`d^ρ` with `d > 1` and a large ρ, `d²` of a huge `d`) is an
    /// [`Error::TransformOverflow`] naming the entry, its value and the transform.
    ///
    /// ```
    /// use rwt::{GroundMatrix, Transform, CAMVID};
    /// let d2 = GroundMatrix::severity(&CAMVID).transform(Transform::Power { rho: 2.0 })?;
    /// assert_eq!(d2.get(9, 3), GroundMatrix::severity(&CAMVID).get(9, 3).powi(2));
    /// # Ok::<(), rwt::Error>(())
    /// ```
    pub fn transform(&self, f: Transform) -> Result<GroundMatrix> {
        f.validate()?;
        let values: Vec<f64> = self.values.iter().map(|&v| f.apply(v)).collect();
        let n = self.num_classes();
        if let Some(k) = values.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::TransformOverflow {
                transform: f.to_string(),
                row: k / n,
                col: k % n,
                input: self.values[k],
                value: values[k],
            });
        }
        Self::from_flat(self.names.clone(), values)
    }

    /// Applies `g` to every entry; the result is validated by the caller's contract (`g` keeps
    /// finite non-negative values and maps 0 to 0).
    fn map_values(&self, g: impl Fn(f64) -> f64) -> GroundMatrix {
        GroundMatrix { names: self.names.clone(), values: self.values.iter().map(|&v| g(v)).collect() }
    }

    /// True when `|D[i][j] − D[j][i]| ≤ tol` for all pairs.
    pub fn is_symmetric(&self, tol: f64) -> bool {
        let n = self.num_classes();
        (0..n).all(|i| (0..i).all(|j| (self.get(i, j) - self.get(j, i)).abs() <= tol))
    }

    /// The matrix as an `[N, N]` `f32` tensor on `device` (`D[truth][pred]`).
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        self.to_tensor_dtype(device, DType::F32)
    }

    /// The matrix as an `[N, N]` tensor of the given float dtype.
    pub fn to_tensor_dtype(&self, device: &Device, dtype: DType) -> Result<Tensor> {
        let n = self.num_classes();
        Ok(Tensor::from_slice(&self.values, (n, n), device)?.to_dtype(dtype)?)
    }

    /// The matrix as CSV: a `#` comment line with the class names, then `N` lines of `N`
    /// comma-separated numbers (rows = true class) — the format `loss.ground = "path.csv"` reads
    /// ([`crate::train::config::read_ground_csv`]); values are written with Rust's shortest
    /// round-trip formatting, so reading the file back gives the same matrix bit for bit.
    pub fn to_csv(&self) -> String {
        let n = self.num_classes();
        let mut s = format!("# D[truth][pred]; rows and columns: {}\n", self.names.join(", "));
        for i in 0..n {
            let row: Vec<String> = self.row(i).iter().map(|v| v.to_string()).collect();
            s += &row.join(",");
            s.push('\n');
        }
        s
    }

    /// The heatmap (rows = true class, columns = predicted class) as an SVG document.
    pub fn to_svg(&self) -> String {
        self.heatmap("ground matrix D[truth][pred]").to_svg()
    }

    /// A heatmap with a title of your choice, for further styling.
    pub fn heatmap(&self, title: &str) -> crate::plot::Heatmap {
        crate::plot::Heatmap::new(title, self.to_array(), self.names.clone(), self.names.clone())
            .axis_labels("predicted class", "true class")
    }

    /// Shows the heatmap inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        crate::plot::display_svg(&self.to_svg());
    }
}

impl fmt::Display for GroundMatrix {
    /// A fixed-width table: one row per true class, one column per predicted class.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.num_classes();
        let short: Vec<String> = self.names.iter().map(|s| s.chars().take(6).collect()).collect();
        let label_w = self.names.iter().map(|s| s.chars().count()).max().unwrap_or(4).clamp(4, 14);
        write!(f, "{:>label_w$} ", "D[t][p]")?;
        for s in &short {
            write!(f, "{s:>6} ")?;
        }
        writeln!(f)?;
        for t in 0..n {
            let name: String = self.names[t].chars().take(label_w).collect();
            write!(f, "{name:>label_w$} ")?;
            for p in 0..n {
                write!(f, "{:>6.2} ", self.get(t, p))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        let e = GroundMatrix::from_rows(["a", "b"], [vec![0.0, 1.0], vec![1.0]]).unwrap_err();
        assert!(matches!(e, Error::NotSquare { rows: 2, cols: 1, .. }), "{e}");
        let e = GroundMatrix::from_rows(["a", "b", "c"], [[0.0, 1.0], [1.0, 0.0]]).unwrap_err();
        assert!(e.to_string().contains("expected 3 classes, got 2"), "{e}");
        let e = GroundMatrix::from_rows(["a", "b"], [[0.0, f64::NAN], [1.0, 0.0]]).unwrap_err();
        assert!(e.to_string().contains("D[0][1] is NaN"), "{e}");
        let e = GroundMatrix::from_rows(["a", "b"], [[0.0, 1.0], [-0.5, 0.0]]).unwrap_err();
        assert!(e.to_string().contains("D[1][0] = -0.5 is negative"), "{e}");
        let e = GroundMatrix::from_rows(["a", "b"], [[0.0, 1.0], [1.0, 0.2]]).unwrap_err();
        assert!(e.to_string().contains("D[1][1] (b) = 0.2"), "{e}");
        let e = GroundMatrix::from_array(["a"], &Array2::zeros((1, 2))).unwrap_err();
        assert!(matches!(e, Error::NotSquare { .. }), "{e}");
    }

    #[test]
    fn normalise_transform_tensor() {
        let d = GroundMatrix::from_rows(["a", "b"], [[0.0, 4.0], [2.0, 0.0]]).unwrap();
        let n = d.normalized();
        assert_eq!(n.values(), &[0.0, 1.0, 0.5, 0.0]);
        let s = n.transform(Transform::Power { rho: 2.0 }).unwrap();
        assert_eq!(s.values(), &[0.0, 1.0, 0.25, 0.0]);
        let t = s.to_tensor(&Device::Cpu).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), vec![vec![0.0, 1.0], vec![0.25, 0.0]]);
        assert!(n.transform(Transform::Huber { tau: 0.0 }).is_err());
    }

    #[test]
    fn display_has_names_and_values() {
        let d = GroundMatrix::from_rows(["car", "road"], [[0.0, 0.9], [0.3, 0.0]]).unwrap();
        let s = d.to_string();
        assert!(s.contains("car") && s.contains("road") && s.contains("0.90") && s.contains("0.30"), "{s}");
    }
}
