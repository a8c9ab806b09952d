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
        }
    }
}

fn hostname() -> String {
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
