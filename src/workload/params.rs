//! Workload parameters: the scalar values a scenario gives a tenant, after sweep expansion.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::WorkloadError;
use crate::limits::{FloatLimit, IntLimit};

/// One parameter value. Scenario files write them as TOML scalars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl ParamValue {
    /// The type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Bool(_) => "a boolean",
            ParamValue::Int(_) => "an integer",
            ParamValue::Float(_) => "a number",
            ParamValue::Str(_) => "a string",
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(v) => write!(f, "{v}"),
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Str(v) => write!(f, "{v:?}"),
        }
    }
}

/// The kind of value a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    Bool,
    /// An integer in the given range.
    Int(IntLimit),
    /// A number in the given range; integers are accepted too.
    Float(FloatLimit),
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
}

impl ParamKind {
    fn expected(&self) -> &'static str {
        match self {
            ParamKind::Bool => "a boolean",
            ParamKind::Int(_) => "an integer",
            ParamKind::Float(_) => "a number",
            ParamKind::Choice(_) => "a string",
        }
    }
}

/// A parameter a workload accepts, with its documentation for `gpushare list`.
#[derive(Debug, Clone, Copy)]
pub struct ParamInfo {
    pub name: &'static str,
    pub kind: ParamKind,
    /// The default, as it would be written in a scenario file.
    pub default: &'static str,
    pub doc: &'static str,
}

/// A tenant's parameters by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Params(pub BTreeMap<String, ParamValue>);

impl Params {
    /// Parameters from `(name, value)` pairs, as code (tests, benches) writes them.
    pub fn from_pairs(pairs: &[(&str, ParamValue)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .collect(),
        )
    }

    /// Checks every given parameter against what the workload accepts.
    pub fn check(&self, workload: &str, accepted: &[ParamInfo]) -> Result<(), WorkloadError> {
        for (name, value) in &self.0 {
            let Some(info) = accepted.iter().find(|p| p.name == name) else {
                let allowed: Vec<&str> = accepted.iter().map(|p| p.name).collect();
                return Err(WorkloadError::UnknownParam {
                    workload: workload.to_string(),
                    param: name.clone(),
                    allowed: if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    },
                });
            };
            let type_error = || WorkloadError::ParamType {
                workload: workload.to_string(),
                param: name.clone(),
                expected: info.kind.expected(),
                got: format!("{} ({value})", value.type_name()),
            };
            let range_error = |reason| WorkloadError::ParamValue {
                workload: workload.to_string(),
                param: name.clone(),
                reason,
            };
            match (info.kind, value) {
                (ParamKind::Bool, ParamValue::Bool(_)) => {}
                (ParamKind::Int(limit), ParamValue::Int(v)) => {
                    limit.check(*v).map_err(range_error)?;
                }
                (ParamKind::Float(limit), ParamValue::Int(v)) => {
                    limit.check(*v as f64).map_err(range_error)?;
                }
                (ParamKind::Float(limit), ParamValue::Float(v)) => {
                    limit.check(*v).map_err(range_error)?;
                }
                (ParamKind::Choice(choices), ParamValue::Str(s)) => {
                    if !choices.contains(&s.as_str()) {
                        return Err(WorkloadError::ParamValue {
                            workload: workload.to_string(),
                            param: name.clone(),
                            reason: format!("{s:?} is not one of {}", choices.join(", ")),
                        });
                    }
                }
                _ => return Err(type_error()),
            }
        }
        Ok(())
    }

    /// A number parameter, or `default` when absent.
    pub fn f64_or(&self, name: &str, default: f64) -> f64 {
        match self.0.get(name) {
            Some(ParamValue::Float(v)) => *v,
            Some(ParamValue::Int(v)) => *v as f64,
            _ => default,
        }
    }

    /// An integer parameter, or `default` when absent.
    pub fn i64_or(&self, name: &str, default: i64) -> i64 {
        match self.0.get(name) {
            Some(ParamValue::Int(v)) => *v,
            _ => default,
        }
    }

    /// A boolean parameter, or `default` when absent.
    pub fn bool_or(&self, name: &str, default: bool) -> bool {
        match self.0.get(name) {
            Some(ParamValue::Bool(v)) => *v,
            _ => default,
        }
    }

    /// A string parameter, or `default` when absent.
    pub fn str_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        match self.0.get(name) {
            Some(ParamValue::Str(v)) => v,
            _ => default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCEPTED: &[ParamInfo] = &[
        ParamInfo {
            name: "step_ms",
            kind: ParamKind::Float(crate::limits::workload::MILLIS),
            default: "1.0",
            doc: "",
        },
        ParamInfo {
            name: "precision",
            kind: ParamKind::Choice(&["fp32", "bf16"]),
            default: "\"fp32\"",
            doc: "",
        },
    ];

    fn params(pairs: &[(&str, ParamValue)]) -> Params {
        Params::from_pairs(pairs)
    }

    #[test]
    fn integers_are_accepted_as_numbers() {
        let p = params(&[("step_ms", ParamValue::Int(2))]);
        p.check("w", ACCEPTED).unwrap();
        assert_eq!(p.f64_or("step_ms", 1.0), 2.0);
    }

    #[test]
    fn unknown_parameter_names_what_is_allowed() {
        let err = params(&[("stepms", ParamValue::Int(2))])
            .check("w", ACCEPTED)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading parameter `stepms` of `w`: unknown parameter (allowed: step_ms, precision)"
        );
    }

    #[test]
    fn wrong_type_says_expected_and_got() {
        let err = params(&[("step_ms", ParamValue::Str("x".into()))])
            .check("w", ACCEPTED)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading parameter `step_ms` of `w`: expected a number, got a string (\"x\")"
        );
    }

    #[test]
    fn numbers_outside_their_range_say_the_range() {
        for value in [ParamValue::Float(1e308), ParamValue::Int(-1)] {
            let err = params(&[("step_ms", value)])
                .check("w", ACCEPTED)
                .unwrap_err();
            assert!(
                err.to_string().starts_with(
                    "reading parameter `step_ms` of `w`: must be a number of milliseconds from 0 to 3600000, got "
                ),
                "{err}"
            );
        }
        let err = params(&[("step_ms", ParamValue::Float(f64::INFINITY))])
            .check("w", ACCEPTED)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading parameter `step_ms` of `w`: must be a number of milliseconds from 0 to 3600000, got inf"
        );
    }

    #[test]
    fn choice_outside_the_set_is_rejected() {
        let err = params(&[("precision", ParamValue::Str("fp8".into()))])
            .check("w", ACCEPTED)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading parameter `precision` of `w`: \"fp8\" is not one of fp32, bf16"
        );
    }
}
