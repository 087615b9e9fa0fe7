//! The one error type of the crate.
//!
//! Every message names the bad value (and, where there is one, the file, the class or the
//! position) so that a notebook user can fix the input without reading the source.

use std::path::PathBuf;

/// Errors returned by every fallible function of `rwt`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A matrix that must be square is not.
    #[error("{what} must be square, got {rows} rows and a row of {cols} columns")]
    NotSquare {
        /// Which matrix.
        what: &'static str,
        /// Number of rows.
        rows: usize,
        /// Length of the offending row.
        cols: usize,
    },

    /// A matrix entry is NaN or infinite.
    #[error("{what}[{row}][{col}] is {value}, expected a finite number")]
    NonFinite {
        /// Which matrix or vector.
        what: &'static str,
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
        /// The bad value.
        value: f64,
    },

    /// A ground-matrix entry is negative.
    #[error("{what}[{row}][{col}] = {value} is negative; severities must be >= 0")]
    Negative {
        /// Which matrix.
        what: &'static str,
        /// Row (true class).
        row: usize,
        /// Column (predicted class).
        col: usize,
        /// The bad value.
        value: f64,
    },

    /// A ground-matrix diagonal entry is not zero.
    #[error("ground matrix D[{class}][{class}] ({name}) = {value}; a correct prediction must cost 0")]
    NonZeroDiagonal {
        /// Index of the class.
        class: usize,
        /// Name of the class.
        name: String,
        /// The bad value.
        value: f64,
    },

    /// The number of class names does not match the size of a matrix or vector.
    #[error("{what}: expected {expected} classes, got {got}")]
    ClassCount {
        /// What was being built.
        what: &'static str,
        /// Number expected.
        expected: usize,
        /// Number given.
        got: usize,
    },

    /// A label is neither a valid class nor the ignore label.
    #[error(
        "label {label} at flat position {position} is out of range: \
         {num_classes} classes (0..={max}) and ignore label {ignore}",
        max = num_classes.saturating_sub(1),
        ignore = ignore_index.map_or("none".to_string(), |i| i.to_string())
    )]
    LabelOutOfRange {
        /// The bad label value.
        label: i64,
        /// Flat (row-major) position of the label in the label tensor.
        position: usize,
        /// Number of classes of the logits.
        num_classes: usize,
        /// The ignore label, if any.
        ignore_index: Option<u32>,
    },

    /// Two tensors or arrays whose shapes must agree do not.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// What was checked.
        what: String,
        /// The shape expected, in words or dims.
        expected: String,
        /// The shape received.
        got: String,
    },

    /// A tensor has a dtype the function does not accept.
    #[error("{what} has dtype {got:?}, expected {expected}")]
    DType {
        /// Which argument.
        what: &'static str,
        /// Accepted dtypes, in words.
        expected: &'static str,
        /// The dtype received.
        got: candle_core::DType,
    },

    /// An argument is outside its valid range.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidArgument {
        /// Name of the argument.
        name: &'static str,
        /// Its value, formatted.
        value: String,
        /// What is required of it.
        reason: String,
    },

    /// A probability histogram is not on the simplex.
    #[error("{what}: {reason}")]
    NotAHistogram {
        /// Which histogram (and, for batches, which row).
        what: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The loss of a pixel that counts (not ignored) is not finite: its logits hold a NaN or
    /// a `+∞` (or `−∞` where the loss needs that class's probability), or are so far apart
    /// that the loss overflows their dtype.
    #[error(
        "{loss}: the logits of image {image} at pixel {pixel} are not finite (NaN or infinite) \
         or too far apart for their dtype, so its loss is undefined"
    )]
    NonFiniteLoss {
        /// Which loss.
        loss: &'static str,
        /// Image (batch index).
        image: usize,
        /// Flat (row-major) spatial position of the pixel within its image.
        pixel: usize,
    },

    /// A transform `f` maps a finite ground-matrix entry to a value no ground matrix may hold
    /// (an overflow to `∞`, or NaN).
    #[error(
        "transform {transform} maps D[{row}][{col}] = {} to {value}, which a ground matrix \
         cannot hold; choose a smaller parameter or normalise D first (GroundMatrix::normalized)",
        short_number(*input)
    )]
    TransformOverflow {
        /// The transform, as [`crate::Transform`] prints it (e.g. `d^10000`).
        transform: String,
        /// Row (true class).
        row: usize,
        /// Column (predicted class).
        col: usize,
        /// The entry before the transform.
        input: f64,
        /// What the transform made of it.
        value: f64,
    },

    /// An error raised by candle, without the backtrace candle attaches when `RUST_BACKTRACE`
    /// is set (the message says what was wrong; where in candle it was noticed is noise).
    #[error(transparent)]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(without_backtrace(e))
    }
}

/// `x` as `Display` prints it, or in exponent form when that would be long (`1e200`, not 201
/// digits).
fn short_number(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e6).contains(&a) {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// `e` with every [`candle_core::Error::WithBacktrace`] layer removed (also under a context or
/// a path), so that its message is what went wrong and nothing else.
pub(crate) fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => without_backtrace(*inner),
        E::Context { inner, context } => E::Context { inner: Box::new(without_backtrace(*inner)), context },
        E::WithPath { inner, path } => E::WithPath { inner: Box::new(without_backtrace(*inner)), path },
        e => e,
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(name: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { name, value: value.to_string(), reason: reason.into() }
    }

    /// Shorthand for [`Error::ShapeMismatch`].
    pub fn shape(what: impl Into<String>, expected: impl Into<String>, got: impl Into<String>) -> Self {
        Error::ShapeMismatch { what: what.into(), expected: expected.into(), got: got.into() }
    }
}
