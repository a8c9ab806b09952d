//! A study carried in a pod's log: `gpushare run --study-to-stdout` prints run.json as
//! one line, gzipped and base64-encoded after a marker, so `k8s run` needs nothing but
//! `kubectl logs` (no `kubectl cp`, which needs `tar` in the image and a running pod).
//! Gzip keeps a study's samples well under the kubelet's default 10 MiB log file.

use std::io::{Read, Write};

/// The marker that starts the study's line in a log.
pub const MARKER: &str = "GPUSHARE_STUDY_GZ_BASE64 ";

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The study's line: the marker, then base64 (RFC 4648, padded) of gzipped JSON.
pub fn encode(json: &str) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(json.as_bytes());
    let bytes = gz.finish().unwrap_or_default();
    let mut out = String::with_capacity(MARKER.len() + bytes.len() * 4 / 3 + 4);
    out.push_str(MARKER);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Finds the study's line in a log and returns the JSON.
pub fn decode(log: &str) -> Result<String, String> {
    let line = log
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(MARKER))
        .ok_or_else(|| format!("no line starts with `{}`", MARKER.trim_end()))?;
    let mut bytes = Vec::with_capacity(line.len() * 3 / 4);
    let digits: Vec<u8> = line.trim_end().bytes().filter(|&c| c != b'=').collect();
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or_else(|| format!("`{}` is not base64", char::from(c)))?;
            n |= (v as u32) << (18 - 6 * i);
        }
        let n_bytes = chunk.len() * 6 / 8;
        for i in 0..n_bytes {
            bytes.push((n >> (16 - 8 * i)) as u8);
        }
    }
    let mut json = String::new();
    flate2::read::GzDecoder::new(bytes.as_slice())
        .read_to_string(&mut json)
        .map_err(|e| format!("decompressing it: {e}"))?;
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_study_survives_a_log_with_other_lines() {
        let json = r#"{"schema_version":2,"runs":[]}"#;
        let log = format!("running `x`\n{}\nresults: /tmp/study\n", encode(json));
        assert_eq!(decode(&log).unwrap(), json);
    }

    #[test]
    fn a_log_without_a_study_says_so() {
        assert_eq!(
            decode("error: scenario\n").unwrap_err(),
            "no line starts with `GPUSHARE_STUDY_GZ_BASE64`"
        );
        assert_eq!(
            decode("GPUSHARE_STUDY_GZ_BASE64 a*b\n").unwrap_err(),
            "`*` is not base64"
        );
    }

    proptest! {
        #[test]
        fn any_text_round_trips(text in ".{0,300}") {
            prop_assert_eq!(decode(&encode(&text)).unwrap(), text);
        }
    }
}
