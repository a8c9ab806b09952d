//! The scenario file as written: serde types for TOML, before validation.
//!
//! Fields that validation checks further keep their location (`Spanned`) so every error
//! can name the file, line and column. Unknown fields are rejected by serde with their
//! location, which catches typos before anything runs.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub run: Option<Spanned<RunSpec>>,
    pub modes: Spanned<Vec<Spanned<ModeSpec>>>,
    pub tenants: Spanned<Vec<Spanned<TenantSpec>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub warmup_s: Option<Spanned<f64>>,
    pub duration_s: Option<Spanned<f64>>,
    pub repetitions: Option<Spanned<i64>>,
    pub min_samples: Option<Spanned<i64>>,
    pub min_duration_s: Option<Spanned<f64>>,
    pub exclusive_replicas: Option<Spanned<i64>>,
    pub seed: Option<Spanned<i64>>,
    pub ready_timeout_s: Option<Spanned<f64>>,
    pub stop_timeout_s: Option<Spanned<f64>>,
}

/// One `[[modes]]` entry. Parameters given as a list are sweep axes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeSpec {
    pub mode: Spanned<String>,
    pub active_thread_percentage: Option<Spanned<toml::Value>>,
    pub pinned_memory_limit_mib: Option<Spanned<toml::Value>>,
    pub profile: Option<Spanned<toml::Value>>,
}

/// One `[[tenants]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    pub name: Spanned<String>,
    pub workload: Spanned<String>,
    /// An integer, or a list of them for a sweep axis.
    pub replicas: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub params: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    pub slo: Option<Spanned<SloSpec>>,
    pub mps: Option<Spanned<TenantMpsSpec>>,
    pub mig: Option<Spanned<TenantMigSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    pub percentile: Option<Spanned<f64>>,
    pub target_ms: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantMpsSpec {
    pub active_thread_percentage: Option<Spanned<i64>>,
    pub pinned_memory_limit_mib: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantMigSpec {
    pub profile: Spanned<String>,
}
