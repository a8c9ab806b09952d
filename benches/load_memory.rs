//! The load generator's memory and time against its rate: `gpushare load` at 1e3 to 1e9
//! requests per second for 2 s each against a `test.delay` server in this process, each
//! load in a child process of its own so that its peak RSS (`ru_maxrss` from wait4(2)) is
//! its own. Goal: peak RSS flat across rates (the queue of send times is bounded), every
//! run over within duration + drop_after + 1 s, and exit status 3 with a count behind
//! schedule where the rate is beyond the generator.
//!
//! `cargo bench --bench load_memory`; runs on any machine (CPU only). Prints a table;
//! exits 1 when a run grew past the bound or overran its time.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gpushare::serve::{DelayBackend, InferenceBackend, ServeConfig, Server};

/// A load's own peak RSS must stay below this whatever the rate.
const RSS_BOUND_MIB: f64 = 64.0;
const DURATION: Duration = Duration::from_secs(2);
const DROP_AFTER: Duration = Duration::from_secs(1);

struct Measured {
    rate: f64,
    wall_s: f64,
    peak_rss_mib: f64,
    exit: i32,
    n_sent: u64,
    n_behind: u64,
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let config = ServeConfig {
        bind: "127.0.0.1:0".parse()?,
        max_queue_delay: Duration::ZERO,
        ..ServeConfig::default()
    };
    let backend = DelayBackend::new(4, Duration::ZERO);
    let server = runtime.block_on(Server::bind(
        config,
        "test.delay",
        Box::new(move || Ok(Box::new(backend) as Box<dyn InferenceBackend>)),
    ))?;
    let url = format!("http://{}/healthz", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let mut rows = Vec::new();
    for exponent in 3..=9 {
        rows.push(measure(&url, 10f64.powi(exponent))?);
    }
    let _ = stop.send(());
    runtime.block_on(serving)??;

    println!(
        "gpushare load, {} s per rate, --drop-after {} s, 16 connections, 1 thread",
        DURATION.as_secs(),
        DROP_AFTER.as_secs()
    );
    println!(
        "{:>8}  {:>7}  {:>13}  {:>4}  {:>10}  {:>14}",
        "rate", "wall s", "peak RSS MiB", "exit", "sent", "behind sched."
    );
    let limit_s = (DURATION + DROP_AFTER).as_secs_f64() + 1.0;
    let mut ok = true;
    for row in &rows {
        println!(
            "{:>8.0e}  {:>7.2}  {:>13.1}  {:>4}  {:>10}  {:>14}",
            row.rate, row.wall_s, row.peak_rss_mib, row.exit, row.n_sent, row.n_behind
        );
        ok &= row.peak_rss_mib < RSS_BOUND_MIB && row.wall_s < limit_s;
    }
    if !ok {
        eprintln!("a load grew past {RSS_BOUND_MIB} MiB or ran past {limit_s} s");
        std::process::exit(1);
    }
    Ok(())
}

fn measure(url: &str, rate: f64) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_gpushare"))
        .args(["load", url, "--format", "json", "--duration"])
        .arg(format!("{}s", DURATION.as_secs()))
        .arg("--drop-after")
        .arg(format!("{}s", DROP_AFTER.as_secs()))
        .arg("--rate")
        .arg(rate.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = i32::try_from(child.id())?;
    // Read stdout on a thread so a full pipe cannot block the child before it exits.
    let mut stdout = child.stdout.ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid pointers to a status and a rusage.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    anyhow::ensure!(
        waited == pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    let wall_s = started.elapsed().as_secs_f64();
    let text = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    let report: serde_json::Value = serde_json::from_str(&text)?;
    Ok(Measured {
        rate,
        wall_s,
        // Linux reports ru_maxrss in KiB.
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        exit: libc::WEXITSTATUS(status),
        n_sent: report["n_sent"].as_u64().unwrap_or_default(),
        n_behind: report["n_behind_schedule"].as_u64().unwrap_or_default(),
    })
}
