//! Tensors as the server sees them: a shape, an element type and a flat row-major buffer.
//!
//! Owns the element types a backend may ask for (`f32` for images, `i64` for token ids,
//! `u8` for raw image pixels that the model normalizes itself) and the shape arithmetic
//! shared by the decoders and the batcher. Must not know about HTTP.

use serde::{Deserialize, Serialize};

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit IEEE float (images, embeddings).
    F32,
    /// 64-bit signed integer (token ids).
    I64,
    /// 8-bit unsigned integer: raw image pixels 0..=255, a quarter of an f32 image's bytes,
    /// which an image model converts and normalizes on its device.
    U8,
}

impl Dtype {
    /// The name used in JSON bodies and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::I64 => "i64",
            Self::U8 => "u8",
        }
    }

    /// Parses a JSON dtype name; `None` for any other string.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "f32" => Some(Self::F32),
            "i64" => Some(Self::I64),
            "u8" => Some(Self::U8),
            _ => None,
        }
    }

    /// The code in the binary body header (see `body`).
    pub fn code(self) -> u8 {
        match self {
            Self::F32 => 1,
            Self::I64 => 2,
            Self::U8 => 3,
        }
    }

    /// Inverse of [`Dtype::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::F32),
            2 => Some(Self::I64),
            3 => Some(Self::U8),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::I64 => 8,
            Self::U8 => 1,
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A flat, row-major element buffer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
}

impl TensorData {
    /// An empty buffer of `dtype` with room for `capacity` elements.
    pub fn with_capacity(dtype: Dtype, capacity: usize) -> Self {
        match dtype {
            Dtype::F32 => Self::F32(Vec::with_capacity(capacity)),
            Dtype::I64 => Self::I64(Vec::with_capacity(capacity)),
            Dtype::U8 => Self::U8(Vec::with_capacity(capacity)),
        }
    }

    pub fn dtype(&self) -> Dtype {
        match self {
            Self::F32(_) => Dtype::F32,
            Self::I64(_) => Dtype::I64,
            Self::U8(_) => Dtype::U8,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::F32(values) => values.len(),
            Self::I64(values) => values.len(),
            Self::U8(values) => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `other`; returns false (and appends nothing) when the dtypes differ.
    pub fn extend_from(&mut self, other: &TensorData) -> bool {
        match (self, other) {
            (Self::F32(values), Self::F32(more)) => values.extend_from_slice(more),
            (Self::I64(values), Self::I64(more)) => values.extend_from_slice(more),
            (Self::U8(values), Self::U8(more)) => values.extend_from_slice(more),
            _ => return false,
        }
        true
    }
}

/// A tensor: shape (dimensions as `i64`, as libtorch takes them) and data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<i64>,
    /// Element type, repeated here so a JSON reader need not guess from the numbers.
    pub dtype: Dtype,
    /// Elements in row-major order.
    pub data: TensorData,
}

impl Tensor {
    /// A tensor whose shape must describe exactly `data.len()` elements.
    pub fn new(shape: Vec<i64>, data: TensorData) -> Option<Self> {
        (n_elements(&shape) == Some(data.len())).then(|| Self {
            dtype: data.dtype(),
            shape,
            data,
        })
    }

    /// A rank-1 f32 tensor.
    pub fn vector_f32(values: Vec<f32>) -> Self {
        Self {
            shape: vec![values.len() as i64],
            dtype: Dtype::F32,
            data: TensorData::F32(values),
        }
    }
}

/// Number of elements a shape describes; `None` for a negative dimension or an overflow.
pub fn n_elements(shape: &[i64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |product, &dim| {
        usize::try_from(dim)
            .ok()
            .and_then(|dim| product.checked_mul(dim))
    })
}

/// What a backend accepts for one item: the per-item shape (no batch dimension) and dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// Per-item shape, e.g. `[3, 224, 224]`.
    pub shape: Vec<i64>,
    pub dtype: Dtype,
    /// Whether `u8` items (raw pixels 0..=255) are taken too, besides `dtype`: an image
    /// model converts them and normalizes them itself.
    pub u8_images: bool,
}

impl InputSpec {
    /// Whether an item of `dtype` is taken.
    pub fn accepts_dtype(&self, dtype: Dtype) -> bool {
        dtype == self.dtype || (self.u8_images && dtype == Dtype::U8)
    }

    /// The dtypes taken, for messages: `f32` or `f32 or u8`.
    pub fn dtype_names(&self) -> String {
        if self.u8_images && self.dtype != Dtype::U8 {
            format!("{} or {}", self.dtype, Dtype::U8)
        } else {
            self.dtype.to_string()
        }
    }

    /// The per-item shape with a leading batch dimension of 1, which requests may also use.
    pub fn batched_shape(&self) -> Vec<i64> {
        std::iter::once(1)
            .chain(self.shape.iter().copied())
            .collect()
    }

    /// Whether a request tensor of `shape` is one item of this spec.
    pub fn accepts_shape(&self, shape: &[i64]) -> bool {
        shape == self.shape.as_slice() || shape == self.batched_shape().as_slice()
    }

    /// Elements in one item.
    pub fn item_len(&self) -> usize {
        n_elements(&self.shape).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_elements_rejects_negative_and_overflowing_shapes() {
        assert_eq!(n_elements(&[]), Some(1));
        assert_eq!(n_elements(&[3, 224, 224]), Some(150_528));
        assert_eq!(n_elements(&[2, -1]), None);
        assert_eq!(n_elements(&[i64::MAX, i64::MAX]), None);
    }

    #[test]
    fn tensor_new_requires_matching_length() {
        assert!(Tensor::new(vec![2, 2], TensorData::F32(vec![0.0; 4])).is_some());
        assert!(Tensor::new(vec![2, 2], TensorData::F32(vec![0.0; 3])).is_none());
    }

    #[test]
    fn input_spec_accepts_item_and_batch_of_one() {
        let spec = InputSpec {
            shape: vec![3, 4],
            dtype: Dtype::F32,
            u8_images: false,
        };
        assert!(spec.accepts_shape(&[3, 4]));
        assert!(spec.accepts_shape(&[1, 3, 4]));
        assert!(!spec.accepts_shape(&[2, 3, 4]));
        assert!(!spec.accepts_shape(&[4, 3]));
        assert!(spec.accepts_dtype(Dtype::F32));
        assert!(!spec.accepts_dtype(Dtype::U8));
        assert_eq!(spec.dtype_names(), "f32");
        let images = InputSpec {
            u8_images: true,
            ..spec
        };
        assert!(images.accepts_dtype(Dtype::U8));
        assert!(!images.accepts_dtype(Dtype::I64));
        assert_eq!(images.dtype_names(), "f32 or u8");
    }

    #[test]
    fn dtype_codes_and_names_round_trip() {
        for dtype in [Dtype::F32, Dtype::I64, Dtype::U8] {
            assert_eq!(Dtype::from_code(dtype.code()), Some(dtype));
            assert_eq!(Dtype::from_name(dtype.name()), Some(dtype));
        }
        assert_eq!(Dtype::U8.size_bytes(), 1);
        assert_eq!(Dtype::from_code(0), None);
        assert_eq!(Dtype::from_code(4), None);
        assert_eq!(Dtype::from_name("f16"), None);
    }
}
