//! The scenario file as written: serde types for TOML, before validation.
//!
//! Fields that validation checks further keep their location (`Spanned`) so every error
//! can name the file, line and column. Unknown fields are rejected by serde with their
//! location, which catches typos before anything runs.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer, SeqAccess, Unexpected, Visitor};
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
    /// How tenants' containers are made, for `run.isolation = "container"`.
    pub container: Option<Spanned<ContainerSpec>>,
}

/// The `[container]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    pub image: Option<Spanned<String>>,
    #[serde(default)]
    pub tenant_images: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub env: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub mounts: Vec<Spanned<MountSpec>>,
    pub user: Option<Spanned<String>>,
    pub gpus: Option<Spanned<toml::Value>>,
    pub entrypoint: Option<Spanned<Vec<String>>>,
    pub network: Option<Spanned<String>>,
}

/// One `[[container.mounts]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSpec {
    pub source: Spanned<String>,
    pub target: Spanned<String>,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub isolation: Option<Spanned<String>>,
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
    pub replicas: Option<Spanned<ReplicasSpec>>,
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

/// `replicas` as written: one count, or a list of counts (a sweep axis). Anything else is
/// a format error, located like the others.
#[derive(Debug)]
pub struct ReplicasSpec(pub Vec<i64>);

impl<'de> Deserialize<'de> for ReplicasSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counts;
        impl<'de> Visitor<'de> for Counts {
            type Value = ReplicasSpec;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer or a list of integers")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ReplicasSpec, E> {
                Ok(ReplicasSpec(vec![v]))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ReplicasSpec, E> {
                i64::try_from(v)
                    .map(|v| ReplicasSpec(vec![v]))
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ReplicasSpec, A::Error> {
                let mut counts = vec![];
                while let Some(n) = seq.next_element::<i64>()? {
                    counts.push(n);
                }
                Ok(ReplicasSpec(counts))
            }
        }
        deserializer.deserialize_any(Counts)
    }
}
