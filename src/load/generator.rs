//! Running one load: open every connection, issue requests (open or closed loop), merge.
//!
//! Open loop: a dedicated OS thread walks the schedule and, at each intended send time,
//! hands that time to a shared queue; one task per connection takes the next due request
//! whenever its connection is free. The dispatcher never waits for responses, so a slow
//! server cannot slow the schedule. It is a plain thread that sleeps with the kernel's
//! timer slack set to 1 ns, because tokio's timer has a 1 ms resolution, as large as the
//! send-lag budget. Latency is measured from the intended time, so time a request spends
//! waiting for the dispatcher or for a free connection counts against the server, as it
//! would for a real client (no coordinated omission).
//!
//! Dropped requests, the documented rule: when a connection takes a request whose intended
//! time is more than `drop_after` in the past, the generator is hopelessly behind (all
//! connections were busy that long, or the machine could not run the generator); that
//! request is not sent and counts as dropped, and the connection takes the next one.
//! Requests less late than that are sent; above `late_after` they count as late.
//!
//! Closed loop: each connection task sends back to back until the duration ends.
//!
//! A run ends when the schedule is exhausted and every request has been answered, timed
//! out, or dropped; so it lasts at most duration + drop_after + timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{Connection, Endpoint, Outcome};
use super::config::{LoadConfig, LoadMode};
use super::error::LoadError;
use super::recorder::Recorder;
use super::report::LoadReport;
use super::schedule::Schedule;

/// Time between opening the connections and the first intended send, so that every thread
/// and task is waiting before the clock starts.
const START_DELAY: Duration = Duration::from_millis(20);
/// Pause after a failed reconnect in closed loop, so a dead server is not hammered.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Runs one load as configured and summarizes it.
pub async fn run_load(config: &LoadConfig) -> Result<LoadReport, LoadError> {
    config.validate()?;
    let endpoint = Arc::new(
        Endpoint::resolve(
            &config.uri,
            config.method.clone(),
            config.body.clone(),
            config.content_type.as_deref(),
        )
        .await?,
    );
    let connections = open_connections(&endpoint, config.connections).await?;
    let start = Instant::now() + START_DELAY;
    let (recorders, n_scheduled) = match config.mode.arrivals() {
        Some(arrivals) => {
            let schedule = Schedule::new(config.rate_per_s, arrivals, config.seed);
            open_loop(config, &endpoint, connections, schedule, start).await?
        }
        None => {
            let recorders = closed_loop(config, &endpoint, connections, start).await?;
            let n_sent = recorders.iter().map(|r| r.n_sent).sum();
            (recorders, n_sent)
        }
    };
    let mut merged = Recorder::new();
    for recorder in &recorders {
        merged.merge(recorder);
    }
    debug_assert!(
        config.mode == LoadMode::ClosedLoop || merged.n_sent + merged.n_dropped == n_scheduled
    );
    Ok(LoadReport::from_run(config, start, &merged, n_scheduled))
}

/// Opens every connection before the clock starts, as wrk does, so connection setup is not
/// charged to the first requests. Fails only if none can be opened; the others reopen on
/// first use.
async fn open_connections(
    endpoint: &Endpoint,
    n_connections: usize,
) -> Result<Vec<Connection>, LoadError> {
    let mut connections = Vec::with_capacity(n_connections);
    let mut first_error = None;
    for _ in 0..n_connections {
        match Connection::open(endpoint).await {
            Ok(connection) => connections.push(connection),
            Err(err) => {
                first_error.get_or_insert(err);
                connections.push(Connection::closed());
            }
        }
    }
    match first_error {
        Some(err) if connections.iter().all(Connection::is_closed) => Err(err),
        _ => Ok(connections),
    }
}

async fn open_loop(
    config: &LoadConfig,
    endpoint: &Arc<Endpoint>,
    connections: Vec<Connection>,
    schedule: Schedule,
    start: Instant,
) -> Result<(Vec<Recorder>, u64), LoadError> {
    let (due_tx, due_rx) = async_channel::unbounded::<Instant>();
    let duration = config.duration;
    let dispatcher = std::thread::Builder::new()
        .name("gpushare-load-dispatch".to_owned())
        .spawn(move || dispatch(schedule, start, duration, &due_tx))
        .map_err(LoadError::SpawnDispatcher)?;
    let settings = WorkerSettings::from(config);
    let workers: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            tokio::spawn(open_loop_worker(
                connection,
                Arc::clone(endpoint),
                due_rx.clone(),
                settings,
            ))
        })
        .collect();
    drop(due_rx);
    let n_scheduled = tokio::task::spawn_blocking(move || dispatcher.join())
        .await
        .map_err(|_| LoadError::TaskPanicked { task: "dispatcher" })?
        .map_err(|_| LoadError::TaskPanicked { task: "dispatcher" })?;
    let recorders = join_workers(workers).await?;
    Ok((recorders, n_scheduled))
}

/// Walks the schedule on this thread; returns how many requests it issued.
fn dispatch(
    schedule: Schedule,
    start: Instant,
    duration: Duration,
    due: &async_channel::Sender<Instant>,
) -> u64 {
    tighten_timer_slack();
    let mut n_issued = 0;
    for offset in schedule.within(duration) {
        let intended = start + offset;
        let now = Instant::now();
        if intended > now {
            std::thread::sleep(intended - now);
        }
        if due.try_send(intended).is_err() {
            break;
        }
        n_issued += 1;
    }
    n_issued
}

/// Asks Linux to wake this thread within 1 ns of its sleep deadline instead of the default
/// 50 µs slack (prctl(2), PR_SET_TIMERSLACK). Elsewhere sleeping is just less precise.
fn tighten_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only affects this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

#[derive(Debug, Clone, Copy)]
struct WorkerSettings {
    timeout: Duration,
    late_after: Duration,
    drop_after: Duration,
    slo: Option<Duration>,
    end: Option<Instant>,
}

impl From<&LoadConfig> for WorkerSettings {
    fn from(config: &LoadConfig) -> Self {
        Self {
            timeout: config.timeout,
            late_after: config.late_after,
            drop_after: config.drop_after,
            slo: config.slo_p99,
            end: None,
        }
    }
}

async fn open_loop_worker(
    mut connection: Connection,
    endpoint: Arc<Endpoint>,
    due: async_channel::Receiver<Instant>,
    settings: WorkerSettings,
) -> Recorder {
    let mut recorder = Recorder::new();
    while let Ok(intended) = due.recv().await {
        let now = Instant::now();
        let lag = now.saturating_duration_since(intended);
        if lag > settings.drop_after {
            recorder.record_dropped();
            continue;
        }
        recorder.record_send(now, Some(lag), settings.late_after);
        let outcome = connection.send(&endpoint, settings.timeout).await;
        let done = Instant::now();
        recorder.record_outcome(outcome, done - intended, done, settings.slo);
    }
    recorder
}

async fn closed_loop(
    config: &LoadConfig,
    endpoint: &Arc<Endpoint>,
    connections: Vec<Connection>,
    start: Instant,
) -> Result<Vec<Recorder>, LoadError> {
    let settings = WorkerSettings {
        end: Some(start + config.duration),
        ..WorkerSettings::from(config)
    };
    let workers: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            tokio::spawn(closed_loop_worker(
                connection,
                Arc::clone(endpoint),
                start,
                settings,
            ))
        })
        .collect();
    join_workers(workers).await
}

async fn closed_loop_worker(
    mut connection: Connection,
    endpoint: Arc<Endpoint>,
    start: Instant,
    settings: WorkerSettings,
) -> Recorder {
    let mut recorder = Recorder::new();
    let end = settings.end.unwrap_or(start);
    tokio::time::sleep_until(start.into()).await;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        recorder.record_send(sent, None, settings.late_after);
        let outcome = connection.send(&endpoint, settings.timeout).await;
        let done = Instant::now();
        recorder.record_outcome(outcome, done - sent, done, settings.slo);
        if outcome == Outcome::Connect {
            tokio::time::sleep(RECONNECT_BACKOFF).await;
        }
    }
    recorder
}

async fn join_workers(
    workers: Vec<tokio::task::JoinHandle<Recorder>>,
) -> Result<Vec<Recorder>, LoadError> {
    let mut recorders = Vec::with_capacity(workers.len());
    for worker in workers {
        recorders.push(worker.await.map_err(|_| LoadError::TaskPanicked {
            task: "connection task",
        })?);
    }
    Ok(recorders)
}
