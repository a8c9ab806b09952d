//! The NVIDIA device plugin's configuration for each sharing strategy a scenario needs
//! on Kubernetes, and the plugin's own rules for it.
//!
//! On Kubernetes the sharing mode belongs to the node, not to a pod: the plugin reads a
//! named config (a key of its ConfigMap) chosen by the node label
//! `nvidia.com/device-plugin.config`, and advertises `replicas` shared
//! `nvidia.com/gpu` per physical GPU. Schema and rules: the plugin's README ("Shared Access
//! to GPUs") and `api/config/v1/replicas.go` (v0.20.0): `version: v1`; time-slicing and
//! MPS are mutually exclusive; at least one resource; every resource has a name and
//! `replicas >= 2`; MPS supports only `nvidia.com/gpu` on full GPUs.

use serde::{Deserialize, Serialize};

use super::KubernetesError;

/// The node label that selects a device-plugin config by name.
pub const CONFIG_LABEL: &str = "nvidia.com/device-plugin.config";
/// The resource every tenant pod requests one of.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// How a node's GPU is shared, as the device plugin sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    /// `exclusive` and `time-slicing` runs: CUDA time-slicing between the replicas.
    TimeSlicing,
    /// `mps` runs: the plugin's MPS control daemon, an equal share per replica.
    Mps,
    /// `mig` runs: MIG instances advertised by profile (`migStrategy: mixed`), no sharing.
    Mig,
}

impl Strategy {
    /// The name used in resource names, labels and the plugin config's key.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::TimeSlicing => "time-slicing",
            Strategy::Mps => "mps",
            Strategy::Mig => "mig",
        }
    }

    /// The config key (and label value) gpushare renders for this strategy.
    pub fn config_name(self) -> String {
        format!("gpushare-{}", self.name())
    }
}

/// One named config of the plugin (`version: v1` file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginConfig {
    pub version: String,
    pub flags: Flags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<Sharing>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flags {
    /// `none`, `single` or `mixed`: how MIG devices are advertised.
    pub mig_strategy: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sharing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_slicing: Option<Replicated>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mps: Option<Replicated>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replicated {
    /// Advertise `<name>.shared` instead of `<name>`; gpushare keeps the plain name so
    /// the same pod spec runs on every strategy.
    pub rename_by_default: bool,
    /// A container asking for more than one replica fails to be admitted, rather than
    /// getting two slices of one GPU that look like two GPUs.
    pub fail_requests_greater_than_one: bool,
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    /// Shared accesses advertised per physical GPU (at least 2).
    pub replicas: u32,
}

/// The config for `strategy` with room for `n_tenants` pods on one GPU.
pub fn config_for(strategy: Strategy, n_tenants: usize) -> PluginConfig {
    let replicated = || Replicated {
        rename_by_default: false,
        fail_requests_greater_than_one: true,
        resources: vec![Resource {
            name: GPU_RESOURCE.to_string(),
            replicas: u32::try_from(n_tenants).unwrap_or(u32::MAX).max(2),
        }],
    };
    let (mig_strategy, sharing) = match strategy {
        Strategy::TimeSlicing => (
            "none",
            Some(Sharing {
                time_slicing: Some(replicated()),
                mps: None,
            }),
        ),
        Strategy::Mps => (
            "none",
            Some(Sharing {
                time_slicing: None,
                mps: Some(replicated()),
            }),
        ),
        Strategy::Mig => ("mixed", None),
    };
    PluginConfig {
        version: "v1".to_string(),
        flags: Flags {
            mig_strategy: mig_strategy.to_string(),
        },
        sharing,
    }
}

/// Checks a config against the plugin's rules; every broken rule is listed.
pub fn check(name: &str, config: &PluginConfig) -> Result<(), KubernetesError> {
    let mut problems = vec![];
    if config.version != "v1" {
        problems.push(format!(
            "version is `{}`, the plugin reads `v1`",
            config.version
        ));
    }
    if !["none", "single", "mixed"].contains(&config.flags.mig_strategy.as_str()) {
        problems.push(format!(
            "migStrategy is `{}`, not none, single or mixed",
            config.flags.mig_strategy
        ));
    }
    if let Some(sharing) = &config.sharing {
        if sharing.time_slicing.is_some() && sharing.mps.is_some() {
            problems.push("time-slicing and MPS are mutually exclusive".to_string());
        }
        for (kind, replicated) in [
            ("timeSlicing", &sharing.time_slicing),
            ("mps", &sharing.mps),
        ] {
            let Some(replicated) = replicated else {
                continue;
            };
            if replicated.resources.is_empty() {
                problems.push(format!("sharing.{kind} lists no resources"));
            }
            if !replicated.fail_requests_greater_than_one {
                problems.push(format!(
                    "sharing.{kind}.failRequestsGreaterThanOne is false: a pod could take two replicas of one GPU"
                ));
            }
            for r in &replicated.resources {
                if r.name.is_empty() {
                    problems.push(format!("sharing.{kind} has a resource without a name"));
                }
                if r.replicas < 2 {
                    problems.push(format!(
                        "sharing.{kind} resource `{}` has {} replica(s); the plugin needs at least 2",
                        r.name, r.replicas
                    ));
                }
                if kind == "mps" && r.name != GPU_RESOURCE {
                    problems.push(format!(
                        "sharing.mps resource `{}`: MPS supports only {GPU_RESOURCE}",
                        r.name
                    ));
                }
            }
        }
        if config.flags.mig_strategy != "none" && sharing.mps.is_some() {
            problems.push("MPS is not supported on devices with MIG enabled".to_string());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(KubernetesError::DevicePluginRules {
            name: name.to_string(),
            problems: problems.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::{prop_assert, proptest};

    #[test]
    fn rendered_configs_keep_the_plugins_rules() {
        for strategy in [Strategy::TimeSlicing, Strategy::Mps, Strategy::Mig] {
            for n in 0..6 {
                let config = config_for(strategy, n);
                check(&strategy.config_name(), &config).unwrap();
            }
        }
    }

    #[test]
    fn time_slicing_config_reads_as_the_plugins_readme() {
        let yaml = serde_yaml_ng::to_string(&config_for(Strategy::TimeSlicing, 3)).unwrap();
        assert_eq!(
            yaml,
            "version: v1\nflags:\n  migStrategy: none\nsharing:\n  timeSlicing:\n    renameByDefault: false\n    failRequestsGreaterThanOne: true\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 3\n"
        );
    }

    #[test]
    fn a_broken_config_names_every_rule() {
        let mut config = config_for(Strategy::Mps, 2);
        let mps = config.sharing.as_mut().unwrap().mps.as_mut().unwrap();
        mps.resources[0].replicas = 1;
        mps.resources[0].name = "nvidia.com/mig-1g.18gb".into();
        mps.fail_requests_greater_than_one = false;
        config.sharing.as_mut().unwrap().time_slicing = Some(Replicated {
            rename_by_default: false,
            fail_requests_greater_than_one: true,
            resources: vec![],
        });
        let err = check("x", &config).unwrap_err().to_string();
        assert_eq!(
            err,
            "checking device-plugin config `x` against the plugin's rules: time-slicing and MPS are mutually exclusive; \
             sharing.timeSlicing lists no resources; \
             sharing.mps.failRequestsGreaterThanOne is false: a pod could take two replicas of one GPU; \
             sharing.mps resource `nvidia.com/mig-1g.18gb` has 1 replica(s); the plugin needs at least 2; \
             sharing.mps resource `nvidia.com/mig-1g.18gb`: MPS supports only nvidia.com/gpu"
        );
    }

    proptest! {
        #[test]
        fn replicas_are_at_least_two_and_cover_every_tenant(n in 0usize..10_000) {
            for strategy in [Strategy::TimeSlicing, Strategy::Mps] {
                let config = config_for(strategy, n);
                let sharing = config.sharing.clone().unwrap();
                let r = sharing.time_slicing.or(sharing.mps).unwrap();
                prop_assert!(r.resources[0].replicas >= 2);
                prop_assert!(r.resources[0].replicas as usize >= n);
                prop_assert!(check("p", &config).is_ok());
            }
        }
    }
}
