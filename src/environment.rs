//! The environment a study ran in, recorded in `run.json` so a figure can always be
//! traced to its host, build and software.

use serde::{Deserialize, Serialize};

/// Host, build and software facts for one study.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub host: String,
    pub os: String,
    pub cpu_model: String,
    pub n_cpus: usize,
    pub gpushare_version: String,
    /// The git commit gpushare was built from, or "unknown".
    pub git_commit: String,
    /// Cargo features this binary was built with.
    pub features: Vec<String>,
    /// How tenants were started (`process`, `container`); absent in studies before it was
    /// recorded, which all ran as processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// The engine and images of the `container` backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerEnvironment>,
}

/// The Docker engine and images a study's containers ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerEnvironment {
    /// The engine's version (`docker version`'s server version).
    pub engine_version: String,
    /// The engine API version gpushare spoke, negotiated with the engine.
    pub api_version: String,
    /// Every image tenants ran.
    pub images: Vec<ImageRecord>,
}

/// One image, as the engine had it when the study started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The name tenants asked for (`gpushare-test:0.1.0`).
    pub name: String,
    /// The engine's image id (`sha256:...`).
    pub id: String,
    /// The registry digest, for an image that came from a registry; absent for one built
    /// locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Environment {
    /// Reads what this host and build are.
    pub fn capture() -> Environment {
        let mut features = vec![];
        if cfg!(feature = "cuda") {
            features.push("cuda".to_string());
        }
        if cfg!(feature = "torch") {
            features.push("torch".to_string());
        }
        Environment {
            host: hostname(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_string()),
            n_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            gpushare_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: option_env!("GPUSHARE_GIT_COMMIT")
                .unwrap_or("unknown")
                .to_string(),
            features,
            isolation: None,
            container: None,
        }
    }
}

/// This host's name, or "unknown".
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// The CPU model name from /proc/cpuinfo (Linux).
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}
