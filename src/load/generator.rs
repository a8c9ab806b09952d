//! Running one load: generator threads, connections, open or closed loop, merge.
//!
//! The load runs on `threads` OS threads of its own, each with a single-threaded tokio
//! runtime and its share of the connections (wrk's model), whatever runtime the caller
//! uses. Keeping a connection, its requests and their timer on one thread means no
//! request ever needs a cross-thread wake-up, which on two cores is most of a request's
//! cost.
//!
//! Open loop: one global schedule; thread k of T takes arrivals k, k+T, k+2T, ... Its
//! dispatcher task sleeps on a sub-millisecond timer until each intended send time and
//! puts that time in the thread's queue; the thread's connection tasks take due requests
//! whenever their connection is free. The dispatcher never waits for responses, so a slow
//! server cannot slow the schedule. Latency is measured from the intended time, so time a
//! request spends waiting for the dispatcher or for a free connection counts against the
//! server, as it would for a real client (no coordinated omission).
//!
//! Memory is bounded whatever the rate: the queue holds at most what its connections can
//! wait for, `rate / T x drop_after` plus one per connection, and never more than
//! [`MAX_QUEUED`] send times. The dispatcher yields to the connection tasks every
//! [`YIELD_EVERY`] arrivals it issues without sleeping, so on a generator that is behind
//! the connections still send.
//!
//! Dropped requests, the documented rule: a request is not sent, and counts as dropped,
//! when
//! - a connection takes it more than `drop_after` after its intended time (all
//!   connections were busy that long), or
//! - it is due while the queue is full (all connections busy and the queue holding as
//!   much as they could wait for), or
//! - the dispatcher itself reaches it more than `drop_after` late: the generator cannot
//!   keep its schedule (the rate is beyond what its threads can issue, or the machine
//!   denied them the CPU). The dispatcher then skips every arrival up to `drop_after`
//!   before now in one step ([`ScheduleShare::skip_until`]) and counts them as *behind
//!   schedule* as well as dropped. A run with any request behind schedule did not load the
//!   server as asked; `gpushare load` says so and exits non-zero.
//!
//! Requests less late than that are sent; above `late_after` they count as late.
//!
//! Closed loop: each connection task sends back to back until the duration ends.
//!
//! With a [`CompletionSink`] (`--stream`) every connection task also reports each request
//! as it finishes, dropped ones included.
//!
//! A run ends when the schedule is exhausted and every request has been answered, timed
//! out, or dropped; so it lasts at most duration + drop_after + timeout (the dispatcher is
//! never more than drop_after behind, and a queued request is dropped once it is that late).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::client::{Connection, Endpoint, Outcome};
use super::config::{LoadConfig, LoadMode};
use super::error::LoadError;
use super::recorder::Recorder;
use super::report::LoadReport;
use super::schedule::{Schedule, ScheduleShare};
use super::stream::{CompletionSink, RequestOutcome};
use super::timer::{sleep_until, PreciseTimer};

/// Time between every thread reporting its connections open and the first intended send,
/// so that every task is waiting before the clock starts.
const START_DELAY: Duration = Duration::from_millis(20);
/// Pause after a failed reconnect in closed loop, so a dead server is not hammered.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);
/// Most send times one generator thread's queue holds (16 bytes each).
pub const MAX_QUEUED: usize = 65_536;
/// Arrivals the dispatcher issues without sleeping before it lets the connection tasks run.
pub const YIELD_EVERY: u32 = 64;

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
    let n_threads = config.threads.clamp(1, config.connections);
    let mut threads = Vec::with_capacity(n_threads);
    for thread_idx in 0..n_threads {
        threads.push(spawn_thread(
            config,
            &endpoint,
            ThreadShare {
                thread_idx,
                n_threads,
                n_connections: share(config.connections, n_threads, thread_idx),
            },
        )?);
    }
    // Every thread opens its connections first, as wrk does, so connection setup is not
    // charged to the first requests. The run fails only if no connection at all opened.
    let mut first_error = None;
    let mut any_open = false;
    for thread in &mut threads {
        match (&mut thread.opened).await {
            Ok(Ok(())) => any_open = true,
            Ok(Err(err)) => {
                first_error.get_or_insert(err);
            }
            Err(_) => {
                return Err(LoadError::TaskPanicked {
                    task: "generator thread",
                })
            }
        }
    }
    if let (false, Some(err)) = (any_open, first_error) {
        return Err(err);
    }
    if let Some(sink) = &config.completions {
        sink.started(config.connections);
    }
    let start = Instant::now() + START_DELAY;
    for thread in &mut threads {
        if let Some(go) = thread.go.take() {
            // A thread that has already ended reports so through `done`.
            let _ = go.send(start);
        }
    }
    let mut merged = Recorder::new();
    let mut n_scheduled = 0;
    for thread in threads {
        let outcome = thread.done.await.map_err(|_| LoadError::TaskPanicked {
            task: "generator thread",
        })?;
        if outcome.panicked {
            return Err(LoadError::TaskPanicked {
                task: "connection task",
            });
        }
        for recorder in &outcome.recorders {
            merged.merge(recorder);
        }
        n_scheduled += outcome.n_scheduled;
    }
    if config.mode == LoadMode::ClosedLoop {
        n_scheduled = merged.n_sent;
    }
    Ok(LoadReport::from_run(config, start, &merged, n_scheduled))
}

/// Connections `thread_idx` of `n_threads` gets out of `total` (the first ones get one more).
fn share(total: usize, n_threads: usize, thread_idx: usize) -> usize {
    total / n_threads + usize::from(thread_idx < total % n_threads)
}

#[derive(Debug, Clone, Copy)]
struct ThreadShare {
    thread_idx: usize,
    n_threads: usize,
    n_connections: usize,
}

struct ThreadHandle {
    opened: oneshot::Receiver<Result<(), LoadError>>,
    go: Option<oneshot::Sender<Instant>>,
    done: oneshot::Receiver<ThreadOutcome>,
}

struct ThreadOutcome {
    recorders: Vec<Recorder>,
    n_scheduled: u64,
    /// A connection task panicked (a bug); its figures are lost, so the run fails.
    panicked: bool,
}

fn spawn_thread(
    config: &LoadConfig,
    endpoint: &Arc<Endpoint>,
    share: ThreadShare,
) -> Result<ThreadHandle, LoadError> {
    let (opened_tx, opened) = oneshot::channel();
    let (go, go_rx) = oneshot::channel();
    let (done_tx, done) = oneshot::channel();
    let config = config.clone();
    let endpoint = Arc::clone(endpoint);
    std::thread::Builder::new()
        .name(format!("gpushare-load-{}", share.thread_idx))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(source) => {
                    let _ = opened_tx.send(Err(LoadError::Runtime(source)));
                    return;
                }
            };
            let outcome = runtime.block_on(thread_main(config, endpoint, share, opened_tx, go_rx));
            // The receiver is gone only if run_load itself was cancelled.
            let _ = done_tx.send(outcome);
        })
        .map_err(LoadError::SpawnThread)?;
    Ok(ThreadHandle {
        opened,
        go: Some(go),
        done,
    })
}

async fn thread_main(
    config: LoadConfig,
    endpoint: Arc<Endpoint>,
    share: ThreadShare,
    opened: oneshot::Sender<Result<(), LoadError>>,
    go: oneshot::Receiver<Instant>,
) -> ThreadOutcome {
    let mut connections = Vec::with_capacity(share.n_connections);
    let mut first_error = None;
    for _ in 0..share.n_connections {
        match Connection::open(&endpoint).await {
            Ok(connection) => connections.push(connection),
            Err(err) => {
                first_error.get_or_insert(err);
                connections.push(Connection::closed());
            }
        }
    }
    let all_closed = connections.iter().all(Connection::is_closed);
    let _ = opened.send(match first_error {
        Some(err) if all_closed => Err(err),
        _ => Ok(()),
    });
    let nothing = ThreadOutcome {
        recorders: Vec::new(),
        n_scheduled: 0,
        panicked: false,
    };
    let Ok(start) = go.await else {
        return nothing;
    };
    match config.mode.arrivals() {
        Some(arrivals) => {
            let schedule = ScheduleShare::new(
                Schedule::new(config.rate_per_s, arrivals, config.seed),
                config.duration,
                share.thread_idx,
                share.n_threads,
            );
            open_loop(&config, &endpoint, connections, schedule, share, start).await
        }
        None => {
            let (recorders, panicked) = closed_loop(&config, &endpoint, connections, start).await;
            ThreadOutcome {
                recorders,
                n_scheduled: 0,
                panicked,
            }
        }
    }
}

async fn open_loop(
    config: &LoadConfig,
    endpoint: &Arc<Endpoint>,
    connections: Vec<Connection>,
    schedule: ScheduleShare,
    share: ThreadShare,
    start: Instant,
) -> ThreadOutcome {
    let capacity = queue_capacity(config, share);
    let (due_tx, due_rx) = async_channel::bounded::<Instant>(capacity);
    let settings = WorkerSettings::from(config);
    let workers: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            tokio::spawn(open_loop_worker(
                connection,
                Arc::clone(endpoint),
                due_rx.clone(),
                settings,
                Stream::new(config, start),
            ))
        })
        .collect();
    drop(due_rx);
    let dispatcher = Dispatcher {
        start,
        drop_after: config.drop_after,
        stream: Stream::new(config, start),
    };
    let (n_scheduled, dispatched) = dispatcher.run(schedule, &due_tx).await;
    drop(due_tx);
    let (mut recorders, panicked) = join_workers(workers).await;
    recorders.push(dispatched);
    ThreadOutcome {
        recorders,
        n_scheduled,
        panicked,
    }
}

/// Send times one thread's queue holds: what its connections could wait for before
/// dropping (`rate / threads x drop_after`), plus one per connection, at most [`MAX_QUEUED`].
fn queue_capacity(config: &LoadConfig, share: ThreadShare) -> usize {
    let waiting = config.rate_per_s / share.n_threads as f64 * config.drop_after.as_secs_f64();
    // The cast saturates; a NaN (impossible for a validated config) becomes 0.
    let waiting = waiting.ceil().min(MAX_QUEUED as f64) as usize;
    waiting
        .saturating_add(share.n_connections)
        .clamp(1, MAX_QUEUED)
}

/// Puts each intended send time in the queue when it comes, and drops what it cannot.
struct Dispatcher {
    start: Instant,
    drop_after: Duration,
    /// Where dropped requests are reported when the run streams.
    stream: Stream,
}

impl Dispatcher {
    /// Issues the share's arrivals; returns how many the schedule had (issued or dropped)
    /// and a recorder holding their dispatch lags and the requests dropped here.
    async fn run(
        &self,
        mut schedule: ScheduleShare,
        due: &async_channel::Sender<Instant>,
    ) -> (u64, Recorder) {
        let mut timer = PreciseTimer::new().ok();
        let mut recorder = Recorder::new();
        let mut n_scheduled: u64 = 0;
        let mut since_yield = 0;
        while let Some(offset) = schedule.next() {
            n_scheduled += 1;
            let intended = self.start + offset;
            let mut now = Instant::now();
            if intended > now {
                sleep_until(&mut timer, intended).await;
                now = Instant::now();
                since_yield = 0;
            }
            let lag = now.saturating_duration_since(intended);
            if lag > self.drop_after {
                // Hopelessly behind: this arrival and every one up to drop_after before
                // now are not sent.
                let resume = now
                    .saturating_duration_since(self.start)
                    .saturating_sub(self.drop_after);
                let skipped = schedule.skip_until(resume);
                n_scheduled += skipped;
                recorder.record_behind_schedule(1 + skipped);
                self.stream.dropped(intended, lag, 1 + skipped);
            } else {
                match due.try_send(intended) {
                    Ok(()) => recorder.record_dispatch(lag),
                    Err(async_channel::TrySendError::Full(_)) => {
                        recorder.record_dropped();
                        self.stream.dropped(intended, lag, 1);
                        // Only the connection tasks can make room: let them run now.
                        since_yield = YIELD_EVERY;
                    }
                    Err(async_channel::TrySendError::Closed(_)) => break,
                }
            }
            since_yield += 1;
            if since_yield >= YIELD_EVERY {
                tokio::task::yield_now().await;
                since_yield = 0;
            }
        }
        (n_scheduled, recorder)
    }
}

#[derive(Debug, Clone, Copy)]
struct WorkerSettings {
    timeout: Duration,
    late_after: Duration,
    drop_after: Duration,
    slo: Option<Duration>,
}

/// Where a connection task reports each finished request, when the run streams them.
#[derive(Debug, Clone)]
struct Stream {
    sink: Option<CompletionSink>,
    start: Instant,
}

impl Stream {
    fn new(config: &LoadConfig, start: Instant) -> Self {
        Self {
            sink: config.completions.clone(),
            start,
        }
    }

    fn done(&self, intended: Instant, latency: Duration, outcome: RequestOutcome) {
        if let Some(sink) = &self.sink {
            let intended_s = intended.saturating_duration_since(self.start).as_secs_f64();
            sink.done(intended_s, latency, outcome);
        }
    }

    /// `n_dropped` requests not sent, the first of them intended at `intended` and found
    /// `lag` late (the others were skipped with it, their times not drawn).
    fn dropped(&self, intended: Instant, lag: Duration, n_dropped: u64) {
        if self.sink.is_some() {
            for _ in 0..n_dropped {
                self.done(intended, lag, RequestOutcome::Dropped);
            }
        }
    }
}

impl From<&LoadConfig> for WorkerSettings {
    fn from(config: &LoadConfig) -> Self {
        Self {
            timeout: config.timeout,
            late_after: config.late_after,
            drop_after: config.drop_after,
            slo: config.slo_p99,
        }
    }
}

async fn open_loop_worker(
    mut connection: Connection,
    endpoint: Arc<Endpoint>,
    due: async_channel::Receiver<Instant>,
    settings: WorkerSettings,
    stream: Stream,
) -> Recorder {
    let mut recorder = Recorder::new();
    while let Ok(intended) = due.recv().await {
        let now = Instant::now();
        let lag = now.saturating_duration_since(intended);
        if lag > settings.drop_after {
            recorder.record_dropped();
            stream.done(intended, lag, RequestOutcome::Dropped);
            continue;
        }
        recorder.record_send(now, Some(lag), settings.late_after);
        let outcome = connection.send(&endpoint, settings.timeout).await;
        let done = Instant::now();
        recorder.record_outcome(outcome, done - intended, done, settings.slo);
        stream.done(intended, done - intended, RequestOutcome::of(outcome));
    }
    recorder
}

async fn closed_loop(
    config: &LoadConfig,
    endpoint: &Arc<Endpoint>,
    connections: Vec<Connection>,
    start: Instant,
) -> (Vec<Recorder>, bool) {
    let settings = WorkerSettings::from(config);
    let end = start + config.duration;
    let workers: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            tokio::spawn(closed_loop_worker(
                connection,
                Arc::clone(endpoint),
                end,
                settings,
                Stream::new(config, start),
            ))
        })
        .collect();
    join_workers(workers).await
}

/// Every worker's recorder, and whether any worker panicked.
async fn join_workers(workers: Vec<tokio::task::JoinHandle<Recorder>>) -> (Vec<Recorder>, bool) {
    let mut recorders = Vec::with_capacity(workers.len());
    let mut panicked = false;
    for worker in workers {
        match worker.await {
            Ok(recorder) => recorders.push(recorder),
            Err(_) => panicked = true,
        }
    }
    (recorders, panicked)
}

async fn closed_loop_worker(
    mut connection: Connection,
    endpoint: Arc<Endpoint>,
    end: Instant,
    settings: WorkerSettings,
    stream: Stream,
) -> Recorder {
    let mut recorder = Recorder::new();
    tokio::time::sleep_until(stream.start.into()).await;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        recorder.record_send(sent, None, settings.late_after);
        let outcome = connection.send(&endpoint, settings.timeout).await;
        let done = Instant::now();
        recorder.record_outcome(outcome, done - sent, done, settings.slo);
        stream.done(sent, done - sent, RequestOutcome::of(outcome));
        if outcome == Outcome::Connect {
            tokio::time::sleep(RECONNECT_BACKOFF).await;
        }
    }
    recorder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_holds_what_its_connections_can_wait_for_and_no_more() {
        let mut config = LoadConfig::new("http://127.0.0.1:1/").unwrap();
        config.drop_after = Duration::from_millis(200);
        let share = ThreadShare {
            thread_idx: 0,
            n_threads: 2,
            n_connections: 4,
        };
        config.rate_per_s = 100.0;
        // 50 requests/s for this thread x 0.2 s, plus one per connection.
        assert_eq!(queue_capacity(&config, share), 14);
        config.rate_per_s = 1e9;
        assert_eq!(queue_capacity(&config, share), MAX_QUEUED);
        config.rate_per_s = f64::MAX;
        config.drop_after = Duration::MAX;
        assert_eq!(queue_capacity(&config, share), MAX_QUEUED);
    }

    #[test]
    fn connections_are_shared_evenly_between_threads() {
        let shares: Vec<usize> = (0..3).map(|idx| share(8, 3, idx)).collect();
        assert_eq!(shares, vec![3, 3, 2]);
        assert_eq!(share(1, 1, 0), 1);
    }
}
