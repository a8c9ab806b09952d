//! The sampler thread: reads a [`GpuSource`] every `interval_ms` on its own OS thread
//! (never on the async runtime, whose workers it must not block), records what is
//! missing once per metric, and hands the whole series back when stopped.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::series::{Missing, MonitorSeries, NoteKind, Notes, ProcessSample, Sample};
use super::MonitorError;

/// Where samples come from: NVML on a GPU host, a synthetic source in tests and benches.
pub trait GpuSource: Send {
    /// The GPU's name, for the series, when the source knows it.
    fn gpu_name(&self) -> Option<String> {
        None
    }

    /// Reads every metric once, except the slow ones (the energy counter and the
    /// per-process rows, which cost NVML milliseconds of CPU each) unless `slow`. The
    /// sampler sets the sample's `t_s`.
    fn sample(&mut self, slow: bool) -> Reading;
}

/// One reading: the sample and what was missing from it, and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub sample: Sample,
    pub missing: Vec<Missing>,
}

/// How the monitor samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorConfig {
    /// Time between samples, in milliseconds.
    pub interval_ms: u64,
    /// GPU to read, in NVML's ordering.
    pub gpu_index: u32,
    /// Time between readings of the slow metrics (the energy counter, each process's
    /// memory and utilization), in milliseconds: on an H200 the energy counter costs
    /// about 3.7 ms of CPU per read and the per-process utilization 1.4 ms, against
    /// microseconds for the rest. The first and the last sample always have them.
    #[serde(default = "default_slow_interval_ms")]
    pub slow_interval_ms: u64,
}

fn default_slow_interval_ms() -> u64 {
    1000
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            interval_ms: 100,
            gpu_index: 0,
            slow_interval_ms: default_slow_interval_ms(),
        }
    }
}

/// A running sampler. Dropping it without [`MonitorHandle::stop`] stops the thread too
/// (the stop channel closes) but loses the series.
pub struct MonitorHandle {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<MonitorSeries>,
    latest: LatestSample,
    config: MonitorConfig,
    started_at: Instant,
}

/// The sampler's most recent sample, readable from other threads (a live exporter) for
/// as long as they hold it; cheap to clone. After the sampler stops it keeps the last one.
#[derive(Clone, Default)]
pub struct LatestSample(Arc<Mutex<Option<Sample>>>);

impl LatestSample {
    /// The most recent sample, with the slow metrics (energy counter, process rows) of
    /// the most recent slow reading.
    pub fn get(&self) -> Option<Sample> {
        self.0.lock().ok().and_then(|latest| latest.clone())
    }

    fn set(&self, sample: Sample) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(sample);
        }
    }
}

impl MonitorHandle {
    /// The instant sample times count from: a window measured with `Instant`s maps to
    /// `(start - started_at, end - started_at)` in seconds for [`super::summarize`].
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// Seconds since `started_at` at `instant` (0 for an instant before it), the time
    /// base of [`Sample::t_s`].
    pub fn seconds_at(&self, instant: Instant) -> f64 {
        instant
            .saturating_duration_since(self.started_at)
            .as_secs_f64()
    }

    /// The most recent sample, for live views, with the slow metrics (energy counter,
    /// process rows) of the most recent slow reading.
    pub fn latest(&self) -> Option<Sample> {
        self.latest.get()
    }

    /// A reader of the latest sample that other threads can keep.
    pub fn latest_reader(&self) -> LatestSample {
        self.latest.clone()
    }

    /// Takes a last sample, stops the thread and returns everything it recorded.
    pub fn stop(self) -> MonitorSeries {
        // A send error means the thread already ended, which join reports.
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(series) => series,
            Err(_) => MonitorSeries {
                gpu_index: self.config.gpu_index,
                interval_ms: self.config.interval_ms,
                notes: vec![super::series::Note {
                    metric: "all".into(),
                    kind: NoteKind::Failed,
                    message: "the sampler thread panicked; its samples are lost".into(),
                    first_t_s: 0.0,
                    count: 1,
                }],
                ..MonitorSeries::default()
            },
        }
    }
}

/// What a sampler keeps of its readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retention {
    /// Every sample, for [`MonitorHandle::stop`]: a study's series.
    Series,
    /// Only the latest: a live view or an exporter that runs for days keeps flat memory.
    LatestOnly,
}

impl Retention {
    /// Adds `sample` to `samples`, replacing what is there when only the latest is kept.
    fn keep(self, samples: &mut Vec<Sample>, sample: Sample) {
        if self == Self::LatestOnly {
            samples.clear();
        }
        samples.push(sample);
    }
}

/// Starts sampling `source` on a new thread named `gpushare-monitor`, keeping every
/// sample for [`MonitorHandle::stop`].
pub fn start_with_source(
    config: MonitorConfig,
    source: Box<dyn GpuSource>,
) -> Result<MonitorHandle, MonitorError> {
    spawn(config, source, Retention::Series)
}

/// [`start_with_source`] for a live view: the sampler keeps only its latest sample, so
/// memory does not grow however long it runs, and [`MonitorHandle::stop`] returns the
/// notes and the last sample alone.
pub fn start_live_with_source(
    config: MonitorConfig,
    source: Box<dyn GpuSource>,
) -> Result<MonitorHandle, MonitorError> {
    spawn(config, source, Retention::LatestOnly)
}

fn spawn(
    config: MonitorConfig,
    source: Box<dyn GpuSource>,
    retention: Retention,
) -> Result<MonitorHandle, MonitorError> {
    if config.interval_ms == 0 {
        return Err(MonitorError::Interval {
            interval_ms: config.interval_ms,
        });
    }
    let (stop_tx, stop_rx) = mpsc::channel();
    let latest = LatestSample::default();
    let thread_latest = latest.clone();
    let started_at = Instant::now();
    let thread = std::thread::Builder::new()
        .name("gpushare-monitor".into())
        .spawn(move || {
            run(
                config,
                source,
                retention,
                started_at,
                stop_rx,
                thread_latest,
            )
        })
        .map_err(|source| MonitorError::Spawn { source })?;
    Ok(MonitorHandle {
        stop: stop_tx,
        thread,
        latest,
        config,
        started_at,
    })
}

fn run(
    config: MonitorConfig,
    mut source: Box<dyn GpuSource>,
    retention: Retention,
    start: Instant,
    stop: mpsc::Receiver<()>,
    latest: LatestSample,
) -> MonitorSeries {
    let interval = Duration::from_millis(config.interval_ms);
    let mut series = MonitorSeries {
        gpu_index: config.gpu_index,
        gpu_name: source.gpu_name(),
        interval_ms: config.interval_ms,
        slow_interval_ms: Some(config.slow_interval_ms),
        ..MonitorSeries::default()
    };
    let mut notes = Notes::default();
    let mut tick: u32 = 0;
    let slow_interval = Duration::from_millis(config.slow_interval_ms);
    let mut slow_read_at: Option<Duration> = None;
    let mut last_slow: (Option<u64>, Vec<ProcessSample>) = (None, Vec::new());
    loop {
        let now = start.elapsed();
        let t_s = now.as_secs_f64();
        let slow = slow_read_at.is_none_or(|at| now.saturating_sub(at) >= slow_interval);
        if slow {
            slow_read_at = Some(now);
        }
        let Reading {
            mut sample,
            missing,
        } = source.sample(slow);
        sample.t_s = t_s;
        for m in missing {
            notes.record(m, t_s);
        }
        let mut live = sample.clone();
        if slow {
            last_slow = (sample.energy_mj, sample.processes.clone());
        } else {
            (live.energy_mj, live.processes) = last_slow.clone();
        }
        latest.set(live);
        retention.keep(&mut series.samples, sample);
        if series.first_reading_end_s.is_none() {
            series.first_reading_cpu_s = thread_cpu_s();
            series.first_reading_end_s = Some(start.elapsed().as_secs_f64());
        }
        // Ticks stay on a fixed grid from the start, so a slow reading does not shift the
        // ones after it; ticks already missed are skipped, not bunched up.
        let elapsed = start.elapsed();
        tick = tick.saturating_add(1);
        while interval * tick <= elapsed {
            tick = tick.saturating_add(1);
        }
        match stop.recv_timeout(interval * tick - elapsed) {
            Err(RecvTimeoutError::Timeout) => continue,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // A last reading at stop, so a window that ends at stop has a sample at its edge.
    let t_s = start.elapsed().as_secs_f64();
    let Reading {
        mut sample,
        missing,
    } = source.sample(true);
    sample.t_s = t_s;
    for m in missing {
        notes.record(m, t_s);
    }
    retention.keep(&mut series.samples, sample);
    series.notes = notes.into_vec();
    series.duration_s = start.elapsed().as_secs_f64();
    series.sampler_cpu_s = thread_cpu_s();
    series
}

/// CPU time (user plus system) the calling thread has used, in seconds.
#[cfg(target_os = "linux")]
pub fn thread_cpu_s() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given and nothing else.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0 means getrusage filled the struct.
    let usage = unsafe { usage.assume_init() };
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// CPU time of one thread is not measured on this platform.
#[cfg(not(target_os = "linux"))]
pub fn thread_cpu_s() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::SyntheticSource;

    #[test]
    fn a_live_sampler_keeps_only_its_latest_sample() {
        let config = MonitorConfig {
            interval_ms: 10,
            gpu_index: 1,
            slow_interval_ms: 50,
        };
        let handle = start_live_with_source(config, Box::new(SyntheticSource::new())).unwrap();
        // Readings go on: the latest sample's time moves past the first ones'.
        let deadline = Instant::now() + Duration::from_secs(10);
        while handle.latest().is_none_or(|s| s.t_s < 0.05) {
            assert!(Instant::now() < deadline, "no reading after 50 ms");
            std::thread::sleep(Duration::from_millis(10));
        }
        let series = handle.stop();
        assert_eq!(series.samples.len(), 1, "{:?}", series.samples);
        assert!(series.samples[0].t_s >= 0.05, "{:?}", series.samples[0]);
        assert!(
            series.samples[0].energy_mj.is_some(),
            "the final reading is a slow one"
        );
        assert_eq!(series.gpu_index, 1);
        assert!(series.first_reading_end_s.is_some());
    }

    #[test]
    fn samples_arrive_at_the_interval_and_stop_returns_them_all() {
        let config = MonitorConfig {
            interval_ms: 10,
            gpu_index: 3,
            slow_interval_ms: 50,
        };
        let handle = start_with_source(config, Box::new(SyntheticSource::new())).unwrap();
        std::thread::sleep(Duration::from_millis(120));
        // The live sample carries the latest slow reading's rows between slow readings.
        let live = handle.latest().unwrap();
        assert_eq!(live.processes.len(), 1, "{live:?}");
        assert!(live.energy_mj.is_some());
        let now_s = handle.seconds_at(Instant::now());
        assert!(now_s >= 0.12, "{now_s}");
        assert_eq!(handle.seconds_at(handle.started_at()), 0.0);
        let series = handle.stop();
        // About 12 ticks plus the final reading; allow a slow CI machine to miss some.
        assert!(
            (6..=16).contains(&series.samples.len()),
            "{} samples",
            series.samples.len()
        );
        assert_eq!(series.gpu_index, 3);
        assert_eq!(series.gpu_name.as_deref(), Some("synthetic GPU"));
        assert!(series.samples.windows(2).all(|w| w[0].t_s < w[1].t_s));
        // Slow metrics every 50 ms, so on about one sample in five, always on the first
        // and the last.
        let with_rows: Vec<bool> = series
            .samples
            .iter()
            .map(|s| !s.processes.is_empty())
            .collect();
        assert!(
            with_rows[0] && with_rows[with_rows.len() - 1],
            "{with_rows:?}"
        );
        let rows = with_rows.iter().filter(|&&r| r).count();
        assert!(rows >= 3 && rows < with_rows.len() - 2, "{with_rows:?}");
        assert_eq!(series.slow_interval_ms, Some(50));
        let with_energy: Vec<bool> = series
            .samples
            .iter()
            .map(|s| s.energy_mj.is_some())
            .collect();
        assert_eq!(with_energy, with_rows);
        assert!(series.duration_s >= 0.1);
        assert!(series.sampler_cpu_s.is_some());
    }

    #[test]
    fn an_unsupported_metric_is_one_note_however_many_samples_lack_it() {
        // A slow interval of 0 makes every reading a slow one, so every sample has its
        // energy reading however late the thread runs (with 1 ms, two readings taken
        // within a millisecond when the thread caught up left the second without one).
        let config = MonitorConfig {
            interval_ms: 5,
            slow_interval_ms: 0,
            ..MonitorConfig::default()
        };
        let source = SyntheticSource::new().without_power("NotSupported");
        let handle = start_with_source(config, Box::new(source)).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let series = handle.stop();
        assert!(series.samples.iter().all(|s| s.power_w.is_none()));
        assert!(series.samples.iter().all(|s| s.energy_mj.is_some()));
        assert_eq!(series.notes.len(), 1);
        let note = &series.notes[0];
        assert_eq!(note.metric, "power_w");
        assert_eq!(note.kind, NoteKind::Unsupported);
        assert_eq!(note.message, "NotSupported");
        assert_eq!(note.count as usize, series.samples.len());
    }

    #[test]
    fn a_zero_interval_is_rejected() {
        let config = MonitorConfig {
            interval_ms: 0,
            ..MonitorConfig::default()
        };
        let err = start_with_source(config, Box::new(SyntheticSource::new()))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "sampling every 0 ms: the interval must be at least 1 ms"
        );
    }

    #[test]
    fn stop_returns_promptly_even_with_a_long_interval() {
        let config = MonitorConfig {
            interval_ms: 60_000,
            ..MonitorConfig::default()
        };
        let handle = start_with_source(config, Box::new(SyntheticSource::new())).unwrap();
        let asked = Instant::now();
        let series = handle.stop();
        assert!(asked.elapsed() < Duration::from_secs(5));
        assert_eq!(
            series.samples.len(),
            2,
            "first tick and the reading at stop"
        );
    }
}
