//! Request and response bodies of `POST /v1/infer`: JSON and a compact binary tensor format.
//!
//! Owns decoding untrusted bytes into a [`Tensor`] and checking it against the model's
//! [`InputSpec`]. Every failure is a [`RequestError`] (400 for a body that is not a
//! well-formed tensor, 415 for an unknown content type, 422 for a well-formed tensor the
//! model does not take). Must never panic and must never allocate more than the body's own
//! size suggests, whatever the input claims.
//!
//! # JSON (`Content-Type: application/json`, also assumed when the header is absent)
//! ```json
//! {"inputs": {"shape": [3, 224, 224], "dtype": "f32", "data": [0.1, 0.2, ...]}}
//! ```
//! `dtype` is `"f32"`, `"i64"` or `"u8"`; `data` is row-major; for `i64` every element
//! must be an integer, for `u8` an integer in 0..=255. Image models take `u8` images too:
//! raw pixels, which the model converts and normalizes on its device (a quarter of an f32
//! image's bytes). The shape is one item (`[3, 224, 224]`) or one item with a leading batch
//! dimension of 1 (`[1, 3, 224, 224]`).
//!
//! # Binary (`Content-Type: application/octet-stream`)
//! All integers little-endian:
//!
//! | offset | bytes | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `GSTN` |
//! | 4 | 1 | format version, 1 |
//! | 5 | 1 | dtype code: 1 = f32, 2 = i64, 3 = u8 |
//! | 6 | 1 | rank r, at most 8 |
//! | 7 | 1 | reserved, 0 |
//! | 8 | 8·r | dimensions, i64 each |
//! | 8 + 8·r | n·size | elements, row-major (n = product of dimensions) |
//!
//! The body must end exactly after the elements. Responses use the same format when the
//! request says `Accept: application/octet-stream`.

use serde::Deserialize;

use super::error::RequestError;
use super::tensor::{n_elements, Dtype, InputSpec, Tensor, TensorData};

/// The end of `gpushare serve --help`: the bodies of `POST /v1/infer` (the module docs
/// in short) and the connection limits.
pub const SERVE_AFTER_HELP: &str = "\
POST /v1/infer takes one item and answers its output, in either format:

JSON (Content-Type: application/json, also assumed without the header):
  {\"inputs\": {\"shape\": [3, 224, 224], \"dtype\": \"f32\", \"data\": [0.1, 0.2, ...]}}
  dtype is f32 or i64 (every element an integer); data is row-major; the shape is the
  model's per-item shape, optionally with a leading batch dimension of 1. Answer:
  {\"outputs\": {\"shape\": [...], \"dtype\": \"f32\", \"data\": [...]}, \"batch_size\": N}

Binary (Content-Type: application/octet-stream), little-endian:
  bytes 0-3 magic GSTN, 4 version 1, 5 dtype (1 = f32, 2 = i64), 6 rank r (at most 8),
  7 reserved 0, then r dimensions as i64, then the elements row-major; nothing after.
  With Accept: application/octet-stream the answer is a tensor in the same format.

Refusals are JSON {\"error\": \"...\", \"status\": N}: 400 malformed body, 408 body not
received within --body-read-timeout, 413 over --max-body-bytes, 415 other content type,
422 wrong dtype, shape or token id, 503 queue full, not ready, or over --max-connections.

Connections: a connection is closed when no request arrives for --idle-timeout, or when a
request's headers are not complete --header-read-timeout after its first byte. SIGINT or
SIGTERM stops accepting and gives in-flight requests --shutdown-timeout; a second signal
exits at once with status 130.";

/// Magic bytes opening a binary tensor body.
pub const BINARY_MAGIC: [u8; 4] = *b"GSTN";
/// Version byte of the binary format described in the module docs.
pub const BINARY_VERSION: u8 = 1;
/// Content type of the binary tensor format.
pub const BINARY_CONTENT_TYPE: &str = "application/octet-stream";
/// Content type of JSON bodies.
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// Highest rank either format accepts; models here take rank 1 to 4 plus a batch dimension.
pub const MAX_RANK: usize = 8;
const BINARY_HEADER_BYTES: usize = 8;

/// Which decoder a request body needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Binary,
}

impl BodyFormat {
    /// Chooses the decoder from a `Content-Type` header; a missing header means JSON.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, RequestError> {
        let Some(content_type) = content_type else {
            return Ok(Self::Json);
        };
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            JSON_CONTENT_TYPE => Ok(Self::Json),
            BINARY_CONTENT_TYPE => Ok(Self::Binary),
            _ => Err(RequestError::UnsupportedMediaType {
                got: content_type.to_owned(),
            }),
        }
    }
}

/// Decodes a request body and checks it against the model's input spec. The returned
/// tensor has the spec's per-item shape (a leading batch dimension of 1 is removed).
pub fn decode_request(
    format: BodyFormat,
    body: &[u8],
    spec: &InputSpec,
) -> Result<Tensor, RequestError> {
    let tensor = match format {
        BodyFormat::Json => decode_json_for(body, &spec.dtype_names())?,
        BodyFormat::Binary => decode_binary_for(body, &spec.dtype_names())?,
    };
    check_against_spec(tensor, spec)
}

/// Rejects a well-formed tensor that is not one item of `spec` (422).
pub fn check_against_spec(tensor: Tensor, spec: &InputSpec) -> Result<Tensor, RequestError> {
    if !spec.accepts_dtype(tensor.dtype) {
        return Err(RequestError::WrongDtype {
            expected: spec.dtype_names(),
            got: tensor.dtype.name().to_owned(),
        });
    }
    if !spec.accepts_shape(&tensor.shape) {
        return Err(RequestError::WrongShape {
            expected: spec.shape.clone(),
            expected_batched: spec.batched_shape(),
            got: tensor.shape,
        });
    }
    Ok(Tensor {
        shape: spec.shape.clone(),
        ..tensor
    })
}

/// Rejects an i64 tensor with an element outside `0..limit` (422), naming the first one.
/// f32 tensors pass: they index nothing.
pub fn check_index_range(tensor: &Tensor, limit: i64) -> Result<(), RequestError> {
    let TensorData::I64(values) = &tensor.data else {
        return Ok(());
    };
    match values.iter().position(|value| !(0..limit).contains(value)) {
        Some(position) => Err(RequestError::IndexOutOfRange {
            position,
            value: values[position],
            limit,
        }),
        None => Ok(()),
    }
}

#[derive(Deserialize)]
struct InferRequestJson {
    inputs: TensorJson,
}

#[derive(Deserialize)]
struct TensorJson {
    shape: Vec<i64>,
    dtype: String,
    data: Vec<serde_json::Number>,
}

/// Decodes a JSON body. `expected` only fills the message of an unknown dtype name (422).
pub fn decode_json(body: &[u8], expected: Dtype) -> Result<Tensor, RequestError> {
    decode_json_for(body, expected.name())
}

fn decode_json_for(body: &[u8], expected: &str) -> Result<Tensor, RequestError> {
    let request: InferRequestJson = serde_json::from_slice(body)
        .map_err(|err| RequestError::malformed(format!("invalid JSON: {err}")))?;
    let TensorJson { shape, dtype, data } = request.inputs;
    let dtype = Dtype::from_name(&dtype).ok_or_else(|| RequestError::WrongDtype {
        expected: expected.to_owned(),
        got: format!("{dtype:?}"),
    })?;
    check_rank(&shape)?;
    let n = n_elements(&shape).ok_or_else(|| {
        RequestError::malformed(format!("shape {shape:?} has a negative or huge dimension"))
    })?;
    if n != data.len() {
        return Err(RequestError::malformed(format!(
            "shape {shape:?} needs {n} elements but data has {}",
            data.len()
        )));
    }
    let data = match dtype {
        Dtype::F32 => TensorData::F32(
            data.iter()
                .enumerate()
                .map(|(idx, number)| json_f32(idx, number))
                .collect::<Result<_, _>>()?,
        ),
        Dtype::I64 => TensorData::I64(
            data.iter()
                .enumerate()
                .map(|(idx, number)| {
                    number.as_i64().ok_or_else(|| {
                        RequestError::malformed(format!(
                            "data[{idx}] = {number} is not an i64 integer"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Dtype::U8 => TensorData::U8(
            data.iter()
                .enumerate()
                .map(|(idx, number)| {
                    number
                        .as_u64()
                        .and_then(|value| u8::try_from(value).ok())
                        .ok_or_else(|| {
                            RequestError::malformed(format!(
                                "data[{idx}] = {number} is not a u8 integer (0..=255)"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Tensor { shape, dtype, data })
}

fn json_f32(idx: usize, number: &serde_json::Number) -> Result<f32, RequestError> {
    // Without serde_json's arbitrary_precision every Number has an f64 view.
    let value = number.as_f64().unwrap_or(f64::NAN) as f32;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(RequestError::malformed(format!(
            "data[{idx}] = {number} is outside the f32 range"
        )))
    }
}

fn check_rank(shape: &[i64]) -> Result<(), RequestError> {
    if shape.len() > MAX_RANK {
        return Err(RequestError::malformed(format!(
            "rank {} is above the maximum of {MAX_RANK}",
            shape.len()
        )));
    }
    Ok(())
}

/// Decodes a binary body (format in the module docs). `expected` only fills the message
/// of an unknown dtype code (422).
pub fn decode_binary(body: &[u8], expected: Dtype) -> Result<Tensor, RequestError> {
    decode_binary_for(body, expected.name())
}

fn decode_binary_for(body: &[u8], expected: &str) -> Result<Tensor, RequestError> {
    let header = body.get(..BINARY_HEADER_BYTES).ok_or_else(|| {
        RequestError::malformed(format!(
            "binary body is {} bytes, shorter than its {BINARY_HEADER_BYTES}-byte header",
            body.len()
        ))
    })?;
    if header[..4] != BINARY_MAGIC {
        return Err(RequestError::malformed(format!(
            "binary body starts with {:?}, not the magic \"GSTN\"",
            String::from_utf8_lossy(&header[..4])
        )));
    }
    if header[4] != BINARY_VERSION {
        return Err(RequestError::malformed(format!(
            "binary format version {} is not supported (expected {BINARY_VERSION})",
            header[4]
        )));
    }
    let dtype = Dtype::from_code(header[5]).ok_or_else(|| RequestError::WrongDtype {
        expected: expected.to_owned(),
        got: format!("code {}", header[5]),
    })?;
    let rank = usize::from(header[6]);
    if rank > MAX_RANK {
        return Err(RequestError::malformed(format!(
            "rank {rank} is above the maximum of {MAX_RANK}"
        )));
    }
    if header[7] != 0 {
        return Err(RequestError::malformed("reserved header byte 7 is not 0"));
    }
    let dims_end = BINARY_HEADER_BYTES + 8 * rank;
    let dims = body.get(BINARY_HEADER_BYTES..dims_end).ok_or_else(|| {
        RequestError::malformed(format!(
            "binary body is {} bytes, too short for {rank} dimensions",
            body.len()
        ))
    })?;
    let shape: Vec<i64> = dims
        .chunks_exact(8)
        .map(|chunk| i64::from_le_bytes(le_array(chunk)))
        .collect();
    let payload = &body[dims_end..];
    let expected_bytes = n_elements(&shape)
        .and_then(|n| n.checked_mul(dtype.size_bytes()))
        .ok_or_else(|| {
            RequestError::malformed(format!("shape {shape:?} has a negative or huge dimension"))
        })?;
    if payload.len() != expected_bytes {
        return Err(RequestError::malformed(format!(
            "shape {shape:?} of {dtype} needs {expected_bytes} data bytes but the body has {}",
            payload.len()
        )));
    }
    let data = match dtype {
        Dtype::F32 => TensorData::F32(
            payload
                .chunks_exact(4)
                .map(|chunk| f32::from_le_bytes(le_array(chunk)))
                .collect(),
        ),
        Dtype::I64 => TensorData::I64(
            payload
                .chunks_exact(8)
                .map(|chunk| i64::from_le_bytes(le_array(chunk)))
                .collect(),
        ),
        Dtype::U8 => TensorData::U8(payload.to_vec()),
    };
    Ok(Tensor { shape, dtype, data })
}

/// Copies a chunk from `chunks_exact(N)` into an array; the chunk always has N bytes, so the
/// zero fill never shows.
fn le_array<const N: usize>(chunk: &[u8]) -> [u8; N] {
    let mut bytes = [0u8; N];
    bytes.copy_from_slice(&chunk[..N.min(chunk.len())]);
    bytes
}

/// Encodes a tensor in the binary format (for clients, the load generator and tests).
pub fn encode_binary(tensor: &Tensor) -> Vec<u8> {
    let mut body = Vec::with_capacity(
        BINARY_HEADER_BYTES
            + 8 * tensor.shape.len()
            + tensor.data.len() * tensor.dtype.size_bytes(),
    );
    body.extend_from_slice(&BINARY_MAGIC);
    body.extend_from_slice(&[
        BINARY_VERSION,
        tensor.dtype.code(),
        // Shapes above MAX_RANK cannot be decoded anyway; saturate rather than wrap.
        u8::try_from(tensor.shape.len()).unwrap_or(u8::MAX),
        0,
    ]);
    for dim in &tensor.shape {
        body.extend_from_slice(&dim.to_le_bytes());
    }
    match &tensor.data {
        TensorData::F32(values) => values
            .iter()
            .for_each(|value| body.extend_from_slice(&value.to_le_bytes())),
        TensorData::I64(values) => values
            .iter()
            .for_each(|value| body.extend_from_slice(&value.to_le_bytes())),
        TensorData::U8(values) => body.extend_from_slice(values),
    }
    body
}

/// Encodes a tensor as a JSON request body `{"inputs": {...}}`.
pub fn encode_json_request(tensor: &Tensor) -> Vec<u8> {
    // Serializing plain numbers and strings into a Vec cannot fail.
    serde_json::to_vec(&serde_json::json!({ "inputs": tensor })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn spec() -> InputSpec {
        InputSpec {
            shape: vec![2, 3],
            dtype: Dtype::F32,
            u8_images: false,
        }
    }

    fn status(result: Result<Tensor, RequestError>) -> StatusCode {
        result.expect_err("should be rejected").status()
    }

    #[test]
    fn json_round_trip_and_batch_of_one() {
        let tensor = Tensor::new(vec![1, 2, 3], TensorData::F32(vec![1.0; 6])).unwrap();
        let decoded =
            decode_request(BodyFormat::Json, &encode_json_request(&tensor), &spec()).unwrap();
        assert_eq!(decoded.shape, vec![2, 3]);
        assert_eq!(decoded.data, TensorData::F32(vec![1.0; 6]));
    }

    #[test]
    fn binary_round_trip_i64() {
        let spec = InputSpec {
            shape: vec![4],
            dtype: Dtype::I64,
            u8_images: false,
        };
        let tensor = Tensor::new(vec![4], TensorData::I64(vec![1, -2, i64::MAX, 0])).unwrap();
        let decoded = decode_request(BodyFormat::Binary, &encode_binary(&tensor), &spec).unwrap();
        assert_eq!(decoded, tensor);
    }

    #[test]
    fn json_errors_have_their_status_and_message() {
        let bad = |body: &str| decode_request(BodyFormat::Json, body.as_bytes(), &spec());
        assert_eq!(status(bad("{")), StatusCode::BAD_REQUEST);
        assert_eq!(status(bad(r#"{"input": {}}"#)), StatusCode::BAD_REQUEST);
        let short = bad(r#"{"inputs": {"shape": [2, 3], "dtype": "f32", "data": [1]}}"#);
        assert_eq!(
            short.unwrap_err().to_string(),
            "malformed request body: shape [2, 3] needs 6 elements but data has 1"
        );
        let wrong_shape = bad(r#"{"inputs": {"shape": [3], "dtype": "f32", "data": [1,2,3]}}"#);
        assert_eq!(
            wrong_shape.unwrap_err().to_string(),
            "wrong shape: expected [2, 3] (or [1, 2, 3]), got [3]"
        );
        let wrong_dtype = bad(r#"{"inputs": {"shape": [2], "dtype": "i64", "data": [1,2]}}"#);
        assert_eq!(
            wrong_dtype.unwrap_err().to_string(),
            "wrong dtype: expected f32, got i64"
        );
        let unknown = bad(r#"{"inputs": {"shape": [2], "dtype": "f16", "data": [1,2]}}"#);
        assert_eq!(
            unknown.unwrap_err().to_string(),
            "wrong dtype: expected f32, got \"f16\""
        );
        let huge = bad(r#"{"inputs": {"shape": [2], "dtype": "f32", "data": [1e39, 1]}}"#);
        assert_eq!(status(huge), StatusCode::BAD_REQUEST);
        let negative = bad(r#"{"inputs": {"shape": [-1], "dtype": "f32", "data": []}}"#);
        assert_eq!(status(negative), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn json_i64_rejects_fractions() {
        let spec = InputSpec {
            shape: vec![2],
            dtype: Dtype::I64,
            u8_images: false,
        };
        let body = br#"{"inputs": {"shape": [2], "dtype": "i64", "data": [1, 1.5]}}"#;
        let err = decode_request(BodyFormat::Json, body, &spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed request body: data[1] = 1.5 is not an i64 integer"
        );
    }

    #[test]
    fn binary_errors_have_their_status_and_message() {
        let good = encode_binary(&Tensor::new(vec![2, 3], TensorData::F32(vec![0.0; 6])).unwrap());
        let bad = |body: &[u8]| decode_request(BodyFormat::Binary, body, &spec());
        assert_eq!(status(bad(&good[..5])), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(bad(&good[..good.len() - 1])),
            StatusCode::BAD_REQUEST
        );
        let mut magic = good.clone();
        magic[0] = b'X';
        assert_eq!(status(bad(&magic)), StatusCode::BAD_REQUEST);
        let mut dtype = good.clone();
        dtype[5] = 9;
        assert_eq!(
            bad(&dtype).unwrap_err().to_string(),
            "wrong dtype: expected f32, got code 9"
        );
        let mut rank = good.clone();
        rank[6] = 200;
        assert_eq!(status(bad(&rank)), StatusCode::BAD_REQUEST);
        let mut huge = good.clone();
        huge[8..16].copy_from_slice(&i64::MAX.to_le_bytes());
        assert_eq!(status(bad(&huge)), StatusCode::BAD_REQUEST);
        let other_shape =
            encode_binary(&Tensor::new(vec![3, 2], TensorData::F32(vec![0.0; 6])).unwrap());
        assert_eq!(status(bad(&other_shape)), StatusCode::UNPROCESSABLE_ENTITY);
    }

    fn image_spec() -> InputSpec {
        InputSpec {
            u8_images: true,
            ..spec()
        }
    }

    #[test]
    fn u8_images_round_trip_in_both_formats_where_the_model_takes_them() {
        let tensor =
            Tensor::new(vec![2, 3], TensorData::U8(vec![0, 1, 127, 128, 254, 255])).unwrap();
        let binary = encode_binary(&tensor);
        // Header, 2 dimensions, then one byte per element.
        assert_eq!(binary.len(), 8 + 16 + 6);
        assert_eq!(binary[5], 3);
        let decoded = decode_request(BodyFormat::Binary, &binary, &image_spec()).unwrap();
        assert_eq!(decoded, tensor);
        let decoded = decode_request(
            BodyFormat::Json,
            &encode_json_request(&tensor),
            &image_spec(),
        )
        .unwrap();
        assert_eq!(decoded, tensor);
        // f32 is still taken by an image model, u8 only by one.
        let floats = Tensor::new(vec![2, 3], TensorData::F32(vec![0.5; 6])).unwrap();
        assert!(decode_request(BodyFormat::Binary, &encode_binary(&floats), &image_spec()).is_ok());
        let err = decode_request(BodyFormat::Binary, &binary, &spec()).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.to_string(), "wrong dtype: expected f32, got u8");
    }

    #[test]
    fn malformed_u8_bodies_have_their_status_and_message() {
        let json = |data: &str| {
            let body =
                format!(r#"{{"inputs": {{"shape": [2, 3], "dtype": "u8", "data": [{data}]}}}}"#);
            decode_request(BodyFormat::Json, body.as_bytes(), &image_spec()).unwrap_err()
        };
        for (data, message) in [
            (
                "0, 1, 2, 3, 4, 256",
                "data[5] = 256 is not a u8 integer (0..=255)",
            ),
            (
                "0, 1, 2, -1, 4, 5",
                "data[3] = -1 is not a u8 integer (0..=255)",
            ),
            (
                "0, 1.5, 2, 3, 4, 5",
                "data[1] = 1.5 is not a u8 integer (0..=255)",
            ),
            ("0, 1, 2", "shape [2, 3] needs 6 elements but data has 3"),
        ] {
            let err = json(data);
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{err}");
            assert_eq!(
                err.to_string(),
                format!("malformed request body: {message}")
            );
        }
        let good = encode_binary(&Tensor::new(vec![2, 3], TensorData::U8(vec![7; 6])).unwrap());
        let err =
            decode_request(BodyFormat::Binary, &good[..good.len() - 1], &image_spec()).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            err.to_string(),
            "malformed request body: shape [2, 3] of u8 needs 6 data bytes but the body has 5"
        );
        let mut long = good.clone();
        long.push(0);
        let err = decode_request(BodyFormat::Binary, &long, &image_spec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed request body: shape [2, 3] of u8 needs 6 data bytes but the body has 7"
        );
        let mut unknown = good.clone();
        unknown[5] = 4;
        let err = decode_request(BodyFormat::Binary, &unknown, &image_spec()).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            err.to_string(),
            "wrong dtype: expected f32 or u8, got code 4"
        );
        let ids = encode_binary(&Tensor::new(vec![2, 3], TensorData::I64(vec![1; 6])).unwrap());
        let err = decode_request(BodyFormat::Binary, &ids, &image_spec()).unwrap_err();
        assert_eq!(err.to_string(), "wrong dtype: expected f32 or u8, got i64");
        let other_shape =
            encode_binary(&Tensor::new(vec![3, 2], TensorData::U8(vec![0; 6])).unwrap());
        let err = decode_request(BodyFormat::Binary, &other_shape, &image_spec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "wrong shape: expected [2, 3] (or [1, 2, 3]), got [3, 2]"
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(BodyFormat::from_content_type(None), Ok(BodyFormat::Json));
        assert_eq!(
            BodyFormat::from_content_type(Some("Application/JSON; charset=utf-8")),
            Ok(BodyFormat::Json)
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("application/octet-stream")),
            Ok(BodyFormat::Binary)
        );
        let err = BodyFormat::from_content_type(Some("text/plain")).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn index_range_names_the_first_id_outside_and_ignores_floats() {
        let ids =
            |values: Vec<i64>| Tensor::new(vec![values.len() as i64], TensorData::I64(values));
        assert_eq!(check_index_range(&ids(vec![0, 5, 9]).unwrap(), 10), Ok(()));
        let err = check_index_range(&ids(vec![0, 10, -1]).unwrap(), 10).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            err.to_string(),
            "element 1 is 10, outside the valid ids 0..10"
        );
        let err = check_index_range(&ids(vec![3, -1]).unwrap(), 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "element 1 is -1, outside the valid ids 0..10"
        );
        let floats = Tensor::vector_f32(vec![1e9, -3.0]);
        assert_eq!(check_index_range(&floats, 10), Ok(()));
    }
}
