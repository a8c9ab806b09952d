//! Records the git commit the binary is built from, for `run.json`'s environment.

use std::process::Command;

fn main() {
    git_commit();
}

fn git_commit() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=GPUSHARE_GIT_COMMIT={commit}");
    }
}
