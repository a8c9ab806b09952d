//! Parameters the probes share, with their validation. This file is compiled with or
//! without the `cuda` feature, so `gpushare list` documents the probes either way.

use crate::limits::workload as limits;
use crate::workload::{ParamInfo, ParamKind, Params, WorkloadError};

/// How much of each SM a throughput probe's launch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupancy {
    /// As many 256-thread blocks per SM as the kernel, compiled for speed, fits (its
    /// register use decides): enough warps to keep the FP32 lanes or the memory pipes
    /// busy, while thread slots may stay free for another MPS client's small launches.
    Kernel,
    /// Every thread slot of every SM: the kernel is compiled to fit the SM's most
    /// threads, and the grid holds them all for the whole launch, as a large GEMM or
    /// convolution's full waves do.
    Full,
    /// Every thread slot of every SM for the whole launch, like `Full`, but the blocks
    /// mostly wait (on the GPU's clock, between short FMA rounds), as a persistent kernel
    /// polling a flag or a collective waiting for its peers does.
    Hold,
}

pub(crate) const OCCUPANCY: ParamInfo = ParamInfo {
    name: "occupancy",
    kind: ParamKind::Choice(&["kernel", "full", "hold"]),
    default: "\"kernel\"",
    doc: "how much of each SM a launch holds, and how: kernel (the blocks the kernel's \
          register use fits; may leave thread slots free), full (every thread slot of every \
          SM for the whole launch, computing) or hold (every thread slot, mostly waiting on \
          the GPU's clock, as a kernel polling a flag does)",
};

pub(crate) const STEP_MS: ParamInfo = ParamInfo {
    name: "step_ms",
    kind: ParamKind::Float(limits::MILLIS_POSITIVE),
    default: "10.0",
    doc: "GPU time one step aims for, in milliseconds; the launch size is fitted to it during \
          warm-up on the GPU as it is then",
};

pub(crate) const BUFFER_MB: ParamInfo = ParamInfo {
    name: "buffer_mb",
    kind: ParamKind::Float(limits::BUFFER_MB),
    default: "2000.0",
    doc: "size of each of the source and destination buffers, in MB (10^6 bytes); keep it \
          many times the GPU's L2 cache",
};

pub(crate) const INTERVAL_US: ParamInfo = ParamInfo {
    name: "interval_us",
    kind: ParamKind::Float(limits::MICROS_POSITIVE),
    default: "1000.0",
    doc: "time between intended launch times, in microseconds",
};

/// A number parameter in its kind's range, or its default.
fn number(workload: &str, params: &Params, info: &ParamInfo) -> Result<f64, WorkloadError> {
    let default: f64 = info.default.parse().unwrap_or(f64::NAN);
    let value = params.f64_or(info.name, default);
    let checked = match info.kind {
        ParamKind::Float(limit) => limit.check(value),
        _ => Ok(value),
    };
    checked.map_err(|reason| WorkloadError::ParamValue {
        workload: workload.to_string(),
        param: info.name.to_string(),
        reason,
    })
}

pub(crate) fn step_ms(workload: &str, params: &Params) -> Result<f64, WorkloadError> {
    number(workload, params, &STEP_MS)
}

/// The buffer size in bytes, rounded down to whole 16-byte vectors (at least one).
pub(crate) fn buffer_bytes(workload: &str, params: &Params) -> Result<u64, WorkloadError> {
    let mb = number(workload, params, &BUFFER_MB)?;
    let bytes = (mb * 1e6) as u64 / 16 * 16;
    Ok(bytes.max(16))
}

pub(crate) fn occupancy(workload: &str, params: &Params) -> Result<Occupancy, WorkloadError> {
    match params.str_or(OCCUPANCY.name, "kernel") {
        "kernel" => Ok(Occupancy::Kernel),
        "full" => Ok(Occupancy::Full),
        "hold" => Ok(Occupancy::Hold),
        other => Err(WorkloadError::ParamValue {
            workload: workload.to_string(),
            param: OCCUPANCY.name.to_string(),
            reason: format!("{other:?} is not one of kernel, full, hold"),
        }),
    }
}

/// `occupancy` for `probe.memory`, whose copy kernel has no `hold` shape.
pub(crate) fn copy_occupancy(workload: &str, params: &Params) -> Result<Occupancy, WorkloadError> {
    match occupancy(workload, params)? {
        Occupancy::Hold => Err(WorkloadError::ParamValue {
            workload: workload.to_string(),
            param: OCCUPANCY.name.to_string(),
            reason: "\"hold\" is a probe.compute shape; probe.memory takes kernel or full"
                .to_string(),
        }),
        other => Ok(other),
    }
}

pub(crate) fn interval_us(workload: &str, params: &Params) -> Result<f64, WorkloadError> {
    number(workload, params, &INTERVAL_US)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::ParamValue;

    fn params(pairs: &[(&str, ParamValue)]) -> Params {
        Params::from_pairs(pairs)
    }

    #[test]
    fn defaults_parse_from_their_documented_text() {
        let empty = Params::default();
        assert_eq!(step_ms("p", &empty).unwrap(), 10.0);
        assert_eq!(buffer_bytes("p", &empty).unwrap(), 2_000_000_000);
        assert_eq!(interval_us("p", &empty).unwrap(), 1000.0);
        assert_eq!(occupancy("p", &empty).unwrap(), Occupancy::Kernel);
    }

    #[test]
    fn occupancy_reads_every_shape_and_names_a_bad_one() {
        let p = params(&[("occupancy", ParamValue::Str("full".into()))]);
        assert_eq!(occupancy("p", &p).unwrap(), Occupancy::Full);
        let hold = params(&[("occupancy", ParamValue::Str("hold".into()))]);
        assert_eq!(occupancy("p", &hold).unwrap(), Occupancy::Hold);
        assert_eq!(
            copy_occupancy("probe.memory", &hold)
                .unwrap_err()
                .to_string(),
            "reading parameter `occupancy` of `probe.memory`: \"hold\" is a probe.compute shape; \
             probe.memory takes kernel or full"
        );
        assert_eq!(copy_occupancy("probe.memory", &p).unwrap(), Occupancy::Full);
        let p = params(&[("occupancy", ParamValue::Str("half".into()))]);
        assert_eq!(
            occupancy("probe.compute", &p).unwrap_err().to_string(),
            "reading parameter `occupancy` of `probe.compute`: \"half\" is not one of kernel, full, hold"
        );
    }

    #[test]
    fn buffer_sizes_round_down_to_whole_vectors() {
        let p = params(&[("buffer_mb", ParamValue::Float(0.000_033))]);
        assert_eq!(buffer_bytes("p", &p).unwrap(), 32);
    }

    #[test]
    fn zero_and_negative_values_are_rejected_with_the_parameter_named() {
        let p = params(&[("step_ms", ParamValue::Float(0.0))]);
        assert_eq!(
            step_ms("probe.compute", &p).unwrap_err().to_string(),
            "reading parameter `step_ms` of `probe.compute`: must be a number of milliseconds above 0 and at most 3600000, got 0"
        );
        let p = params(&[("interval_us", ParamValue::Int(-5))]);
        assert_eq!(
            interval_us("probe.latency", &p).unwrap_err().to_string(),
            "reading parameter `interval_us` of `probe.latency`: must be a number of microseconds above 0 and at most 3600000000, got -5"
        );
    }
}
