//! The `launch-latency` criterion group: how long one warp takes from launch to completion
//! on a shared GPU, per sharing mode, alone and next to a compute-bound co-tenant.
//!
//! Each case runs in a process of its own (this bench executable again, with
//! `--latency-client <case>`), because a process becomes an MPS client or not when it
//! initializes CUDA: one process cannot measure alone and then under MPS. The mode is
//! entered with `gpushare::sharing::enter`, as a run enters it, so an MPS case has a
//! private daemon and both processes get its environment. The co-tenant is a
//! `gpushare worker` started through the runner's process backend, running the
//! scenario's `probe.compute` tenant from Go until the measurement is over.
//!
//! Every launch is timed on the host, from before the launch to after the stream is
//! synchronized (`TouchKernel::launch_and_wait`). CUDA events would not do here: the GPU
//! timestamps them when it reaches them, so they start counting only once the co-tenant
//! has let this process run, and that wait is what is measured. Criterion reports the
//! mean with its confidence interval; a second pass of single launches gives P50 and
//! P99, because a co-tenant makes the distribution long-tailed and a mean hides that.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use criterion::{Criterion, Throughput};
use gpushare::isolation::{ProcessIsolation, WorkerLaunch};
use gpushare::sharing::{self, ModeContext, ModeSetting, WorkerSharing};
use gpushare::worker::protocol::{self, FromWorker, ToWorker, WorkerSpec, VERSION};
use gpushare::workload::probe::{Gpu, TouchKernel};
use gpushare::workload::Params;

use super::{gpushare_exe, SuiteScenario};

/// The argument that makes this executable a latency client.
const CLIENT_ARG: &str = "--latency-client";
/// The line a client ends with: `LATENCY <p50_us> <p99_us> <max_us>`.
const RESULT_PREFIX: &str = "LATENCY ";
/// Single launches of the percentile pass: P99 from 1,000 has ten launches above it.
const N_LAUNCHES: usize = 1000;
/// The co-tenant's workload.
const CO_TENANT_WORKLOAD: &str = "probe.compute";
/// How long the co-tenant may take to set up (context, NVRTC, sizing, warm-up).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the co-tenant may take to finish its step and summarize after Stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// One measurement: a latency client under `mode`, with or without the co-tenant.
struct Case {
    /// Reads as a path: `mps(atp=50)/probe.compute`.
    id: String,
    mode: ModeSetting,
    co_tenant: bool,
}

/// Launch-to-completion figures of one case, in microseconds.
struct Figures {
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
}

/// If this process was started as a latency client, measures and returns its exit code.
pub fn client_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(CLIENT_ARG) {
        return None;
    }
    let case_id = args.next().unwrap_or_default();
    Some(match client(&case_id) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("latency client `{case_id}`: failed {error:#}");
            ExitCode::FAILURE
        }
    })
}

/// Measures every case the scenario's modes give and prints the percentiles side by side.
pub fn compare(loaded: &SuiteScenario) -> Result<()> {
    let co_tenant = loaded.plan.configs[0]
        .tenants
        .iter()
        .find(|t| t.workload == CO_TENANT_WORKLOAD)
        .with_context(|| {
            format!(
                "to find a `{CO_TENANT_WORKLOAD}` tenant in `{}` to use as the co-tenant",
                loaded.scenario.name
            )
        })?;
    let spec = WorkerSpec {
        tenant: co_tenant.name.clone(),
        workload: co_tenant.workload.clone(),
        params: co_tenant.params.clone(),
        seed: loaded.scenario.run.seed,
        warmup_s: loaded.scenario.run.warmup_s,
        flush_interval_ms: 100,
    };
    catch_interrupts();
    let mut rows = Vec::new();
    for case in cases(&loaded.scenario.modes) {
        let figures = measure(&case, &spec)?;
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!("to finish the latency cases: interrupted");
        }
        rows.push((case.id, figures));
    }
    print_table(&rows, &co_tenant.params);
    Ok(())
}

/// Alone under exclusive and under unlimited MPS (what MPS itself adds to a launch), and
/// next to the co-tenant under every mode that runs tenants together.
fn cases(modes: &[ModeSetting]) -> Vec<Case> {
    let mut cases = Vec::new();
    for mode in modes {
        let unlimited_mps = matches!(mode, ModeSetting::Mps(mps) if *mps == Default::default());
        if !mode.concurrent() || unlimited_mps {
            cases.push(Case {
                id: format!("{mode}/alone"),
                mode: mode.clone(),
                co_tenant: false,
            });
        }
        if mode.concurrent() {
            cases.push(Case {
                id: format!("{mode}/{CO_TENANT_WORKLOAD}"),
                mode: mode.clone(),
                co_tenant: true,
            });
        }
    }
    cases
}

/// Enters the case's mode, starts the co-tenant, runs a client, and undoes it all.
fn measure(case: &Case, spec: &WorkerSpec) -> Result<Figures> {
    let mut workers = vec![WorkerSharing {
        label: "latency-client".to_string(),
        sharing: Default::default(),
    }];
    if case.co_tenant {
        workers.push(WorkerSharing {
            label: spec.tenant.clone(),
            sharing: Default::default(),
        });
    }
    let context = ModeContext {
        gpu_index: 0,
        run_id: format!("bench-latency-{}", case.id),
        workers,
        ..Default::default()
    };
    let guard = sharing::enter(&case.mode, &context)
        .with_context(|| format!("to enter mode `{}`", case.mode))?;
    let measured = (|| {
        let co_tenant = if case.co_tenant {
            Some(CoTenant::start(
                &gpushare_exe(),
                &guard.tenant_env(1)?,
                spec,
            )?)
        } else {
            None
        };
        let figures = run_client(&case.id, &guard.tenant_env(0)?);
        let stopped = co_tenant.map(CoTenant::stop).transpose();
        let figures = figures?;
        stopped?;
        Ok::<_, anyhow::Error>(figures)
    })();
    let exited = guard
        .exit()
        .with_context(|| format!("to leave mode `{}`", case.mode));
    let figures = measured.with_context(|| format!("to measure `{}`", case.id))?;
    exited?;
    Ok(figures)
}

/// Runs this executable as a latency client with the mode's environment; its output is
/// passed through, its result line parsed.
fn run_client(case_id: &str, env: &[(String, String)]) -> Result<Figures> {
    let exe = std::env::current_exe().context("to find this bench executable")?;
    let mut child = Command::new(&exe)
        .arg(CLIENT_ARG)
        .arg(case_id)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("to start {} as a latency client", exe.display()))?;
    let stdout = child
        .stdout
        .take()
        .context("to read the latency client's output")?;
    let mut figures = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("to read the latency client's output")?;
        match line.strip_prefix(RESULT_PREFIX) {
            Some(values) => figures = Some(parse_figures(values)?),
            None => println!("{line}"),
        }
    }
    let status = child.wait().context("to wait for the latency client")?;
    if !status.success() {
        bail!("to run the latency client: it exited with {status}");
    }
    figures.context("to read the latency client's result: it printed none")
}

fn parse_figures(values: &str) -> Result<Figures> {
    let numbers: Vec<f64> = values
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("to parse the latency result {values:?}"))?;
    match numbers[..] {
        [p50_us, p99_us, max_us] => Ok(Figures {
            p50_us,
            p99_us,
            max_us,
        }),
        _ => bail!("to parse the latency result {values:?}: expected three numbers"),
    }
}

/// The client: criterion's mean with its interval, then the percentile pass.
fn client(case_id: &str) -> Result<()> {
    let gpu = Gpu::open(0).context("to open GPU 0")?;
    let mut touch = TouchKernel::new(&gpu).context("to set up the touch kernel")?;
    touch.verify().context("to check the touch kernel")?;
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut group = criterion.benchmark_group("launch-latency");
    group.throughput(Throughput::Elements(1));
    group.bench_function(case_id, |b| {
        b.iter(|| touch.launch_and_wait().expect("launching touch"))
    });
    group.finish();

    let mut times_us = (0..N_LAUNCHES)
        .map(|_| {
            let start = Instant::now();
            touch.launch_and_wait()?;
            Ok(start.elapsed().as_secs_f64() * 1e6)
        })
        .collect::<Result<Vec<f64>, gpushare::workload::probe::ProbeError>>()
        .context("to time single launches")?;
    times_us.sort_by(f64::total_cmp);
    println!(
        "{RESULT_PREFIX}{} {} {}",
        nearest_rank(&times_us, 50.0),
        nearest_rank(&times_us, 99.0),
        times_us.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

/// The nearest-rank percentile of sorted values.
fn nearest_rank(sorted: &[f64], percentile: f64) -> f64 {
    let rank = (percentile / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len().max(1)) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}

fn print_table(rows: &[(String, Figures)], co_tenant_params: &Params) {
    let params: Vec<String> = co_tenant_params
        .0
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "\nlaunch-latency: one warp, launch to completion, host-timed after synchronize; \
         {N_LAUNCHES} single launches per case; co-tenant {CO_TENANT_WORKLOAD} {}",
        params.join(" ")
    );
    println!(
        "{:<32} {:>10} {:>10} {:>10}",
        "case", "P50 us", "P99 us", "max us"
    );
    for (id, f) in rows {
        println!(
            "{id:<32} {:>10.1} {:>10.1} {:>10.1}",
            f.p50_us, f.p99_us, f.max_us
        );
    }
}

/// A `gpushare worker` running the co-tenant, measuring from Go until [`CoTenant::stop`].
struct CoTenant {
    child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<Result<FromWorker, String>>,
}

impl CoTenant {
    fn start(exe: &Path, env: &[(String, String)], spec: &WorkerSpec) -> Result<CoTenant> {
        let isolation = ProcessIsolation::new(Some(exe.to_path_buf()))?;
        let mut command = isolation
            .command(&WorkerLaunch {
                tenant: &spec.tenant,
                run_id: "co-tenant",
                env,
                gpu: true,
            })
            .into_std();
        // The worker's diagnostics belong in the bench's output.
        command.stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .with_context(|| format!("to start the co-tenant worker {}", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .context("to read the co-tenant's output")?;
        // Samples arrive every flush interval for as long as it runs: a thread drains
        // them so the worker never blocks on a full pipe.
        let (sender, messages) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let msg = protocol::decode_from_worker(&line).map_err(|e| e.to_string());
                if sender.send(msg).is_err() {
                    break;
                }
            }
        });
        let mut co_tenant = CoTenant {
            child,
            stdin,
            messages,
        };
        co_tenant.send(&ToWorker::Start {
            v: VERSION,
            spec: spec.clone(),
        })?;
        co_tenant.wait_for("Ready", READY_TIMEOUT, |m| {
            matches!(m, FromWorker::Ready { .. })
        })?;
        co_tenant.send(&ToWorker::Go { v: VERSION })?;
        Ok(co_tenant)
    }

    fn send(&mut self, msg: &ToWorker) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("to write to the co-tenant: its input is closed")?;
        stdin
            .write_all(protocol::encode(msg).as_bytes())
            .and_then(|()| stdin.flush())
            .context("to write to the co-tenant")
    }

    fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&FromWorker) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(Ok(FromWorker::Error { message, .. })) => {
                    bail!("to run the co-tenant: it reported {message}")
                }
                Ok(Ok(msg)) if wanted(&msg) => return Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(anyhow!("to read the co-tenant's output: {error}")),
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "to get the co-tenant's {what} within {} s",
                        timeout.as_secs()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("to get the co-tenant's {what}: it exited first")
                }
            }
        }
    }

    fn stop(mut self) -> Result<()> {
        self.send(&ToWorker::Stop { v: VERSION })?;
        self.wait_for("Summary", STOP_TIMEOUT, |m| {
            matches!(m, FromWorker::Summary { .. })
        })?;
        // End of input tells the worker the runner is done with it.
        drop(self.stdin.take());
        let status = self.child.wait().context("to wait for the co-tenant")?;
        if !status.success() {
            bail!("to stop the co-tenant: it exited with {status}");
        }
        Ok(())
    }
}

impl Drop for CoTenant {
    /// On an error path the worker may still run: it must not outlive the case.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Set by SIGINT or SIGTERM while the cases run.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C must not kill this process between entering an MPS mode and leaving it: that
/// would leave the daemon running. The handler only notes the signal; the client in the
/// terminal's process group dies of it, the case is undone, and [`compare`] stops.
/// (Handlers, unlike ignored signals, are reset in the children by exec.)
fn catch_interrupts() {
    let handler: extern "C" fn(libc::c_int) = note_interrupt;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, handler as libc::sighandler_t);
        }
    }
}
