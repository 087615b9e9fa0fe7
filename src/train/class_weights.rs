//! Class weighting of the cross-entropy term, for datasets whose rare classes (CamVid's pole,
//! sign, pedestrian, bicyclist: each under 1 % of the pixels) an unweighted loss never learns.
//!
//! | config (`loss.class_weights`) | weight of class `c` | source |
//! |---|---|---|
//! | `"none"` (default) | 1 | |
//! | `"enet"` | `1 / ln(1.02 + p_c)`, `p_c` = share of class `c` among the labelled pixels | Paszke et al. 2016 (ENet), §5.1 |
//! | `"median_frequency"` | `median_k f_k / f_c`, `f_c` = pixels of `c` / pixels of the images in which `c` appears | Eigen & Fergus 2015, as used by SegNet (Badrinarayanan et al. 2017) |
//! | `[w_1, …, w_N]` | the given numbers | |
//!
//! Both statistics are counted over the training labels at their native resolution
//! ([`ClassFrequencies::of`]; nearest-neighbour resizing keeps the shares); the weights a run
//! used are recorded in its folder (`class_weights.json`).

use crate::data::Dataset;
use crate::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How the cross-entropy term weights each true class (see the module docs).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum ClassWeighting {
    /// Every class weighs 1.
    #[default]
    None,
    /// ENet's `1 / ln(1.02 + p_c)`.
    Enet,
    /// SegNet's median-frequency balancing `median f / f_c`.
    MedianFrequency,
    /// One given weight per class (finite, `≥ 0`).
    Explicit(Vec<f64>),
}

impl ClassWeighting {
    /// Whether the weights must be counted from the training labels.
    pub fn needs_frequencies(&self) -> bool {
        matches!(self, ClassWeighting::Enet | ClassWeighting::MedianFrequency)
    }

    /// Checks what can be checked without data: explicit weights finite and `≥ 0`.
    pub fn validate(&self) -> Result<()> {
        if let ClassWeighting::Explicit(w) = self {
            if w.is_empty() {
                return Err(Error::invalid("loss.class_weights", "[]", "give one weight per class"));
            }
            if let Some((k, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
                return Err(Error::invalid(
                    "loss.class_weights",
                    v,
                    format!("the weight of class {k} must be finite and >= 0"),
                ));
            }
        }
        Ok(())
    }

    /// The `n` class weights; `frequencies` is needed for [`ClassWeighting::Enet`] and
    /// [`ClassWeighting::MedianFrequency`]. `None` for [`ClassWeighting::None`].
    ///
    /// # Errors
    /// A wrong number of explicit weights, missing frequencies, or a class that never occurs
    /// in the training labels (its weight would be infinite).
    pub fn weights(&self, n: usize, frequencies: Option<&ClassFrequencies>) -> Result<Option<Vec<f64>>> {
        self.validate()?;
        let freq = || {
            let f = frequencies.ok_or_else(|| {
                Error::invalid("loss.class_weights", self.name(), "needs the class frequencies of the training labels")
            })?;
            if f.pixels.len() != n {
                return Err(Error::ClassCount {
                    what: "class frequencies vs classes",
                    expected: n,
                    got: f.pixels.len(),
                });
            }
            Ok(f)
        };
        Ok(match self {
            ClassWeighting::None => None,
            ClassWeighting::Explicit(w) => {
                if w.len() != n {
                    return Err(Error::ClassCount { what: "loss.class_weights", expected: n, got: w.len() });
                }
                Some(w.clone())
            }
            ClassWeighting::Enet => Some(freq()?.enet_weights(1.02)?),
            ClassWeighting::MedianFrequency => Some(freq()?.median_frequency_weights()?),
        })
    }

    /// The config spelling: `none`, `enet`, `median_frequency` or `explicit`.
    pub fn name(&self) -> &'static str {
        match self {
            ClassWeighting::None => "none",
            ClassWeighting::Enet => "enet",
            ClassWeighting::MedianFrequency => "median_frequency",
            ClassWeighting::Explicit(_) => "explicit",
        }
    }
}

/// The TOML / JSON form: a string (`"none"`, `"enet"`, `"median_frequency"`) or a list of
/// numbers.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Name(String),
    List(Vec<f64>),
}

impl Serialize for ClassWeighting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            ClassWeighting::Explicit(w) => Repr::List(w.clone()),
            other => Repr::Name(other.name().into()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ClassWeighting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Repr::deserialize(d)? {
            Repr::List(w) => Ok(ClassWeighting::Explicit(w)),
            Repr::Name(n) => match n.as_str() {
                "none" => Ok(ClassWeighting::None),
                "enet" => Ok(ClassWeighting::Enet),
                "median_frequency" => Ok(ClassWeighting::MedianFrequency),
                other => Err(serde::de::Error::custom(format!(
                    "class_weights = {other:?}: expected \"none\", \"enet\", \"median_frequency\" or a list of numbers"
                ))),
            },
        }
    }
}

/// Pixel counts per class over a set of label maps (void pixels not counted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassFrequencies {
    /// Labelled pixels of each class.
    pub pixels: Vec<u64>,
    /// For each class, the labelled pixels of the images in which it appears (the denominator
    /// of median-frequency balancing).
    pub image_pixels: Vec<u64>,
    /// Images counted.
    pub images: usize,
}

impl ClassFrequencies {
    /// Counts over label maps given as class indices (`void` and anything `≥ n` skipped).
    pub fn from_labels<'a>(n: usize, void: u32, maps: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut f = ClassFrequencies { pixels: vec![0; n], image_pixels: vec![0; n], images: 0 };
        for map in maps {
            f.add(&count(map, n, void));
        }
        f
    }

    /// Counts over the label maps of `dataset` (the first `limit` of them, or all; decoded in
    /// parallel, at the dataset's size).
    ///
    /// # Errors
    /// A sample that cannot be decoded (the error names its file).
    pub fn of(dataset: &dyn Dataset, limit: Option<usize>) -> Result<Self> {
        let classes = dataset.classes();
        let n = classes.len();
        let void = classes.ignore_index;
        let count_of = limit.map_or(dataset.len(), |l| l.min(dataset.len()));
        let per_image = (0..count_of)
            .into_par_iter()
            .map(|i| dataset.get(i).map(|s| count(s.label.as_raw(), n, void)))
            .collect::<Result<Vec<_>>>()?;
        let mut f = ClassFrequencies { pixels: vec![0; n], image_pixels: vec![0; n], images: 0 };
        for c in &per_image {
            f.add(c);
        }
        Ok(f)
    }

    fn add(&mut self, counts: &[u64]) {
        let total: u64 = counts.iter().sum();
        for (k, &c) in counts.iter().enumerate() {
            self.pixels[k] += c;
            if c > 0 {
                self.image_pixels[k] += total;
            }
        }
        self.images += 1;
    }

    /// ENet's weights `1 / ln(c + p_c)` (`c = 1.02` in the paper), `p_c` the share of class
    /// `c` among all labelled pixels. Bounded by `1 / ln c` (≈ 50.5) for absent classes, so no
    /// error for those.
    pub fn enet_weights(&self, c: f64) -> Result<Vec<f64>> {
        if !(c.is_finite() && c > 1.0) {
            return Err(Error::invalid("ENet weighting constant", c, "must be > 1"));
        }
        let total: u64 = self.pixels.iter().sum();
        if total == 0 {
            return Err(Error::invalid("class frequencies", "0 labelled pixels", "nothing to weight by"));
        }
        Ok(self.pixels.iter().map(|&p| 1.0 / (c + p as f64 / total as f64).ln()).collect())
    }

    /// Median-frequency balancing: `f_c = pixels_c / image_pixels_c`, weight `median f / f_c`
    /// (the median of an even count is the mean of the middle two).
    ///
    /// # Errors
    /// A class with no pixel (its frequency is 0 and its weight infinite); the error names it.
    pub fn median_frequency_weights(&self) -> Result<Vec<f64>> {
        let f = self
            .pixels
            .iter()
            .zip(&self.image_pixels)
            .enumerate()
            .map(|(k, (&p, &ip))| {
                if p == 0 {
                    Err(Error::invalid(
                        "median-frequency weights",
                        format!("class {k}"),
                        "never occurs in the training labels, so its weight would be infinite; give explicit weights",
                    ))
                } else {
                    Ok(p as f64 / ip as f64)
                }
            })
            .collect::<Result<Vec<f64>>>()?;
        let mut sorted = f.clone();
        sorted.sort_by(f64::total_cmp);
        let m = sorted.len();
        let median = if m % 2 == 1 { sorted[m / 2] } else { 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]) };
        Ok(f.iter().map(|v| median / v).collect())
    }
}

fn count(map: &[u8], n: usize, void: u32) -> Vec<u64> {
    let mut c = vec![0u64; n];
    for &v in map {
        if u32::from(v) != void && (v as usize) < n {
            c[v as usize] += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    // Three classes, void = 3. Image A: 6 px of class 0, 2 of class 1 (+ 2 void); image B: 4 of
    // class 0, 4 of class 2.
    fn freq() -> ClassFrequencies {
        let a: Vec<u8> = [vec![0; 6], vec![1; 2], vec![3; 2]].concat();
        let b: Vec<u8> = [vec![0; 4], vec![2; 4]].concat();
        ClassFrequencies::from_labels(3, 3, [a.as_slice(), b.as_slice()])
    }

    #[test]
    fn counts_skip_void() {
        let f = freq();
        assert_eq!(f.pixels, vec![10, 2, 4]);
        assert_eq!(f.image_pixels, vec![16, 8, 8]);
        assert_eq!(f.images, 2);
    }

    #[test]
    fn enet_weights_closed_form() {
        // p = (10, 2, 4) / 16; w = 1 / ln(1.02 + p).
        let w = freq().enet_weights(1.02).unwrap();
        let want = [1.0 / (1.02f64 + 0.625).ln(), 1.0 / (1.02f64 + 0.125).ln(), 1.0 / (1.02f64 + 0.25).ln()];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert!(w[1] > w[2] && w[2] > w[0], "rarer classes weigh more: {w:?}");
    }

    #[test]
    fn median_frequency_closed_form() {
        // f = (10/16, 2/8, 4/8) = (0.625, 0.25, 0.5); median 0.5; w = (0.8, 2, 1).
        let w = freq().median_frequency_weights().unwrap();
        for (a, b) in w.iter().zip([0.8, 2.0, 1.0]) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn absent_class_is_an_error_for_median_frequency() {
        let a: Vec<u8> = vec![0, 0, 1];
        let f = ClassFrequencies::from_labels(3, 255, [a.as_slice()]);
        let e = f.median_frequency_weights().unwrap_err().to_string();
        assert!(e.contains("class 2"), "{e}");
        // ENet's weight is bounded instead: 1 / ln 1.02.
        assert!((f.enet_weights(1.02).unwrap()[2] - 1.0 / 1.02f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn config_forms_parse_and_validate() {
        #[derive(Deserialize)]
        struct T {
            w: ClassWeighting,
        }
        let p = |s: &str| toml::from_str::<T>(s).map(|t| t.w);
        assert_eq!(p("w = \"enet\"").unwrap(), ClassWeighting::Enet);
        assert_eq!(p("w = \"median_frequency\"").unwrap(), ClassWeighting::MedianFrequency);
        assert_eq!(p("w = [1.0, 2.5]").unwrap(), ClassWeighting::Explicit(vec![1.0, 2.5]));
        assert!(p("w = \"inverse\"").is_err());
        assert!(ClassWeighting::Explicit(vec![1.0, -1.0]).validate().unwrap_err().to_string().contains("class 1"));
        let e = ClassWeighting::Explicit(vec![1.0; 2]).weights(3, None).unwrap_err();
        assert!(matches!(e, Error::ClassCount { expected: 3, got: 2, .. }), "{e}");
        assert!(ClassWeighting::Enet.weights(3, None).is_err());
        assert_eq!(ClassWeighting::None.weights(3, None).unwrap(), None);
    }
}
