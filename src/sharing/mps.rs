//! `mps`: NVIDIA Multi-Process Service, run privately for one run.
//!
//! Entering starts an MPS control daemon of our own with fresh pipe and log directories
//! (mode 0700, under the temp dir, removed on exit), applies the mode's defaults
//! (active-thread percentage, pinned device-memory limit) through its control pipe, and
//! confirms the daemon answers. Each tenant gets the two directories in its environment,
//! plus its own overrides. Exiting sends `quit`, waits until the daemon and every MPS
//! server it started are really gone (servers outlive `quit` by a second or more), kills
//! what is left after the stop timeout and says so, and removes the directories.
//! Dropping the guard does the same, best effort.
//!
//! It refuses to start while an MPS control daemon it did not start is running: clients
//! of that daemon would share the GPU with ours and the figures would be wrong. It never
//! changes GPU settings; MPS needs none (compute mode Default works).
//! NVIDIA's reference: <https://docs.nvidia.com/deploy/mps/>.

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use super::mps_janitor::{Janitor, JanitorTarget};
use super::procs::{self, ProcessId};
use super::{worker, ModeContext, ModeGuard, ModeRecord, MpsSetting, SharingError, WorkerSharing};
use crate::gpu::{self, ComputeMode, GpuError};

/// Where clients, servers and the control daemon meet (named pipes / sockets).
pub const PIPE_DIRECTORY_VAR: &str = "CUDA_MPS_PIPE_DIRECTORY";
/// Where the daemon writes `control.log` and `server.log`.
pub const LOG_DIRECTORY_VAR: &str = "CUDA_MPS_LOG_DIRECTORY";
/// A client's share of the SMs, in percent.
pub const ACTIVE_THREAD_PERCENTAGE_VAR: &str = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE";
/// A client's device-memory limit, as `<device ordinal>=<size>` (`0=500M`); see
/// <https://docs.nvidia.com/deploy/mps/latest/appendix-environment-variables.html>.
pub const PINNED_DEVICE_MEM_LIMIT_VAR: &str = "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT";
/// The file in the pipe directory that holds the control daemon's pid.
const PID_FILE: &str = "nvidia-cuda-mps-control.pid";
/// The longest one control command (`get_server_list`, `quit`, ...) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long killed processes get to disappear.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// Log lines shown in errors and failure context.
const LOG_TAIL_LINES: usize = 20;

/// Which MPS binaries to run and how long to wait for them. Tests point
/// `control_binary` at a stub script; users with MPS outside PATH at theirs.
#[derive(Debug, Clone, PartialEq)]
pub struct MpsConfig {
    /// The control program: a name looked up on PATH, or a path.
    pub control_binary: PathBuf,
    /// The file name of the server program the daemon starts (`argv[0]`).
    pub server_name: String,
    /// How long the daemon may take to start and answer.
    pub start_timeout: Duration,
    /// How long the daemon and its servers may take to exit after `quit` before they are
    /// killed.
    pub stop_timeout: Duration,
    /// Where the per-run directories go; the system temp dir when `None`. Keep it short:
    /// the pipe directory holds Unix sockets, whose paths are limited to 107 bytes.
    pub temp_root: Option<PathBuf>,
}

impl Default for MpsConfig {
    fn default() -> Self {
        MpsConfig {
            control_binary: PathBuf::from("nvidia-cuda-mps-control"),
            server_name: "nvidia-cuda-mps-server".to_string(),
            start_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(10),
            temp_root: None,
        }
    }
}

/// Names another MPS control program than `nvidia-cuda-mps-control` on PATH.
pub const CONTROL_ENV_VAR: &str = "GPUSHARE_MPS_CONTROL";

impl MpsConfig {
    /// The defaults, with the control program from `GPUSHARE_MPS_CONTROL` when it is set
    /// (MPS installed outside PATH, or a stand-in for tests). Its server is taken to be
    /// the control program's name with `-control` replaced by `-server`, as NVIDIA names
    /// them.
    pub fn from_env() -> Self {
        let mut config = MpsConfig::default();
        if let Some(control) = std::env::var_os(CONTROL_ENV_VAR).filter(|v| !v.is_empty()) {
            config.control_binary = PathBuf::from(control);
            let name = config.control_name();
            config.server_name = match name.strip_suffix("-control") {
                Some(stem) => format!("{stem}-server"),
                None => config.server_name,
            };
        }
        config
    }

    /// The control program's file name, which its processes carry as `argv[0]`.
    pub fn control_name(&self) -> String {
        self.control_binary
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.control_binary.to_string_lossy().into_owned())
    }
}

/// An MPS control daemon found running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningDaemon {
    /// Process id.
    pub pid: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Its pipe directory, or why it is unknown.
    pub pipe_dir: String,
}

/// What this host offers for MPS, for `doctor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MpsHostProbe {
    /// Where the control program is, if found on PATH.
    pub control_path: Option<PathBuf>,
    /// Where the server program is, if found on PATH.
    pub server_path: Option<PathBuf>,
    /// Control daemons running now, any user's.
    pub daemons: Vec<RunningDaemon>,
}

/// Looks for the MPS binaries on PATH and for running control daemons.
pub fn probe_host(config: &MpsConfig) -> MpsHostProbe {
    MpsHostProbe {
        control_path: find_program(&config.control_binary),
        server_path: find_program(Path::new(&config.server_name)),
        daemons: running_daemons(config),
    }
}

/// The program's path: itself when it names a path, else the first match on PATH.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Control daemons running on this host, any user's. A daemon runs the control program
/// with `-d` (background) or `-f` (foreground); without either it is a short-lived client
/// sending one command.
pub fn running_daemons(config: &MpsConfig) -> Vec<RunningDaemon> {
    procs::processes_named(&config.control_name())
        .into_iter()
        .filter(|process| {
            process
                .args
                .iter()
                .skip(1)
                .any(|arg| arg == "-d" || arg == "-f")
        })
        .map(|process| RunningDaemon {
            pid: process.id.pid,
            uid: process.uid,
            pipe_dir: daemon_pipe_dir(process.id.pid),
        })
        .collect()
}

fn daemon_pipe_dir(pid: u32) -> String {
    if fs::read(format!("/proc/{pid}/environ")).is_err() {
        return "unknown: its environment is not readable".to_string();
    }
    procs::environment_variable(pid, PIPE_DIRECTORY_VAR)
        // The documented default when the variable is unset.
        .unwrap_or_else(|| "/tmp/nvidia-mps".to_string())
}

/// The guard of an entered `mps` mode: our control daemon and its directories.
pub struct MpsGuard {
    config: MpsConfig,
    setting: MpsSetting,
    gpu_index: u32,
    workers: Vec<WorkerSharing>,
    /// Holds the pipe and log directories; `None` once removed.
    dirs: Option<TempDir>,
    pipe_dir: PathBuf,
    log_dir: PathBuf,
    daemon: Option<ProcessId>,
    /// Stops the daemon if this process dies without tearing down.
    janitor: Option<Janitor>,
    notes: Vec<String>,
    /// Whether there is something to tear down.
    active: bool,
}

impl MpsGuard {
    /// Starts a private MPS control daemon for the run in `context`.
    pub fn enter(setting: &MpsSetting, context: &ModeContext) -> Result<MpsGuard, SharingError> {
        validate(setting, &context.workers)?;
        let config = context.mps.clone();
        let compute_mode_note = check_compute_mode(context.gpu_index)?;
        if let Some(daemon) = running_daemons(&config).into_iter().next() {
            return Err(foreign_daemon_error(&config, daemon));
        }
        let dirs = make_dirs(&config, &context.run_id)?;
        let pipe_dir = dirs.path().join("pipe");
        let log_dir = dirs.path().join("log");
        // Before the daemon exists, so that no moment is left uncovered.
        let janitor = Janitor::start(&JanitorTarget {
            control: &config.control_binary,
            control_name: &config.control_name(),
            server_name: &config.server_name,
            pipe_dir: &pipe_dir,
            log_dir: &log_dir,
            run_dir: dirs.path(),
            stop_timeout: config.stop_timeout,
        })
        .map_err(|source| SharingError::StartingMpsJanitor { source })?;
        let janitor_note = format!(
            "MPS janitor pid {} stops the daemon if gpushare dies without doing so",
            janitor.pid()
        );
        let mut guard = MpsGuard {
            config,
            setting: setting.clone(),
            gpu_index: context.gpu_index,
            workers: context.workers.clone(),
            dirs: Some(dirs),
            pipe_dir,
            log_dir,
            daemon: None,
            janitor: Some(janitor),
            notes: vec![compute_mode_note, janitor_note],
            active: true,
        };
        // From here on an error drops `guard`, which stops whatever did start.
        guard.start_daemon()?;
        guard.confirm_up()?;
        guard.apply_defaults(setting)?;
        Ok(guard)
    }

    /// The pipe directory tenants must share with the daemon.
    pub fn pipe_dir(&self) -> &Path {
        &self.pipe_dir
    }

    /// The log directory holding `control.log` and `server.log`.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The control daemon's pid, once it is up.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.map(|id| id.pid)
    }

    /// The MPS servers the daemon runs now (`get_server_list`).
    pub fn server_pids(&self) -> Result<Vec<u32>, SharingError> {
        let answer = self.control("get_server_list")?;
        Ok(answer
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect())
    }

    /// Sends one command to the daemon and returns its answer, trimmed.
    pub fn control(&self, command: &str) -> Result<String, SharingError> {
        let mut process = Command::new(&self.config.control_binary);
        process.envs(self.directory_env());
        let output = procs::run_with_timeout(process, &format!("{command}\n"), COMMAND_TIMEOUT)
            .map_err(|source| SharingError::SpawningMpsControl {
                binary: self.config.control_binary.clone(),
                source,
            })?;
        let detail = match output.status {
            None => format!("no answer within {} s", COMMAND_TIMEOUT.as_secs()),
            Some(status) if !status.success() => format!("{status}; it said: {}", output.text()),
            Some(_) => return Ok(output.stdout.trim().to_string()),
        };
        Err(SharingError::MpsControlCommand {
            command: command.to_string(),
            pipe_dir: self.pipe_dir.clone(),
            detail,
            log_tail: self.log_tail_block("control.log"),
        })
    }

    fn directory_env(&self) -> [(&'static str, PathBuf); 2] {
        [
            (PIPE_DIRECTORY_VAR, self.pipe_dir.clone()),
            (LOG_DIRECTORY_VAR, self.log_dir.clone()),
        ]
    }

    /// Runs `control -d`, which forks the daemon and exits.
    fn start_daemon(&mut self) -> Result<(), SharingError> {
        let binary = self.config.control_binary.clone();
        let out_path = self.pipe_dir.with_file_name("start.out");
        let out =
            File::create(&out_path).map_err(|source| SharingError::PreparingMpsDirectory {
                path: out_path.clone(),
                source,
            })?;
        let err = out
            .try_clone()
            .map_err(|source| SharingError::PreparingMpsDirectory {
                path: out_path.clone(),
                source,
            })?;
        let mut child = Command::new(&binary)
            .arg("-d")
            .envs(self.directory_env())
            .stdin(Stdio::null())
            // A file, not a pipe: the daemon keeps what it inherits open for its lifetime,
            // so reading a pipe to its end would wait for the daemon to exit.
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| SharingError::SpawningMpsControl {
                binary: binary.clone(),
                source,
            })?;
        let status =
            procs::wait_with_timeout(&mut child, self.config.start_timeout).map_err(|source| {
                SharingError::SpawningMpsControl {
                    binary: binary.clone(),
                    source,
                }
            })?;
        let status = match status {
            Some(status) if status.success() => return Ok(()),
            Some(status) => status.to_string(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                format!("no exit within {} s", self.config.start_timeout.as_secs())
            }
        };
        let said = fs::read_to_string(&out_path).unwrap_or_default();
        Err(SharingError::StartingMpsDaemon {
            binary,
            pipe_dir: self.pipe_dir.clone(),
            status,
            output: if said.trim().is_empty() {
                String::new()
            } else {
                format!("; it said: {}", said.trim())
            },
            log_tail: self.log_tail_block("control.log"),
        })
    }

    /// Waits until the daemon's process exists and it answers `get_server_list`.
    fn confirm_up(&mut self) -> Result<(), SharingError> {
        let deadline = Instant::now() + self.config.start_timeout;
        let mut last_answer = String::new();
        loop {
            if let Some(daemon) = self.find_daemon() {
                self.daemon = Some(daemon);
                match self.control("get_server_list") {
                    Ok(_) => break,
                    Err(error) => last_answer = error.to_string(),
                }
            }
            if Instant::now() >= deadline {
                return Err(SharingError::MpsDaemonNotUp {
                    pipe_dir: self.pipe_dir.clone(),
                    timeout_s: self.config.start_timeout.as_secs(),
                    detail: if last_answer.is_empty() {
                        "; no daemon process appeared".to_string()
                    } else {
                        format!("; last answer: {last_answer}")
                    },
                    log_tail: self.log_tail_block("control.log"),
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
        let pid = self.daemon_pid().unwrap_or_default();
        self.notes.push(format!(
            "MPS control daemon pid {pid}, pipe directory {}, log directory {}",
            self.pipe_dir.display(),
            self.log_dir.display()
        ));
        Ok(())
    }

    /// Our daemon: the pid file's process if it is the control program, else a control
    /// process whose environment names our pipe directory.
    fn find_daemon(&self) -> Option<ProcessId> {
        let name = self.config.control_name();
        let from_pid_file = fs::read_to_string(self.pipe_dir.join(PID_FILE))
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .and_then(procs::process_info)
            .filter(|info| {
                info.args
                    .first()
                    .and_then(|arg0| Path::new(arg0).file_name())
                    .is_some_and(|file_name| file_name.to_string_lossy() == name)
            });
        if let Some(info) = from_pid_file {
            return Some(info.id);
        }
        procs::processes_named(&name)
            .into_iter()
            .find(|info| self.uses_our_pipe_dir(info.id.pid))
            .map(|info| info.id)
    }

    fn uses_our_pipe_dir(&self, pid: u32) -> bool {
        procs::environment_variable(pid, PIPE_DIRECTORY_VAR)
            .is_some_and(|dir| Path::new(&dir) == self.pipe_dir)
    }

    /// Servers of our daemon: children of it, those with our pipe directory in their
    /// environment, and those it lists.
    fn find_servers(&self) -> Vec<ProcessId> {
        let daemon_pid = self.daemon.map(|id| id.pid);
        let mut servers: Vec<ProcessId> = procs::processes_named(&self.config.server_name)
            .into_iter()
            .filter(|info| Some(info.ppid) == daemon_pid || self.uses_our_pipe_dir(info.id.pid))
            .map(|info| info.id)
            .collect();
        if self.daemon.is_some_and(procs::is_alive) {
            let listed = self.server_pids().unwrap_or_default();
            for info in listed.into_iter().filter_map(procs::process_info) {
                if !servers.contains(&info.id) {
                    servers.push(info.id);
                }
            }
        }
        servers
    }

    /// Sets the daemon's defaults. A client's own variable can only lower the daemon's
    /// default, never raise it ("will only further constrain the limit set by the control
    /// daemon", NVIDIA MPS docs, CUDA_MPS_ACTIVE_THREAD_PERCENTAGE), so the default is the
    /// highest value any worker gets, and every worker gets its own value in its
    /// environment ([`MpsGuard::tenant_env`]).
    fn apply_defaults(&mut self, setting: &MpsSetting) -> Result<(), SharingError> {
        if let Some(mode_percentage) = setting.active_thread_percentage {
            let highest = self
                .workers
                .iter()
                .filter_map(|w| w.sharing.mps_active_thread_percentage)
                .fold(mode_percentage, u32::max);
            self.control(&format!("set_default_active_thread_percentage {highest}"))?;
            let answer = self.read_back("get_default_active_thread_percentage");
            self.notes.push(format!(
                "MPS default active thread percentage set to {highest} (daemon answers \
                 {answer}){}",
                raised_note(mode_percentage, highest, "%")
            ));
        }
        if let Some(mode_limit_mib) = setting.pinned_memory_limit_mib {
            let highest = self
                .workers
                .iter()
                .filter_map(|w| w.sharing.mps_pinned_memory_limit_mib)
                .fold(mode_limit_mib, u64::max);
            let gpu = self.gpu_index;
            self.control(&format!(
                "set_default_device_pinned_mem_limit {gpu} {highest}M"
            ))?;
            let answer = self.read_back(&format!("get_default_device_pinned_mem_limit {gpu}"));
            self.notes.push(format!(
                "MPS default pinned device memory limit of device {gpu} set to {highest}M \
                 (daemon answers {answer}){}",
                raised_note(mode_limit_mib, highest, "M")
            ));
        }
        Ok(())
    }

    /// A `get_*` answer for the notes; a failure to read back is recorded, not fatal,
    /// because the `set_*` command already succeeded.
    fn read_back(&self, command: &str) -> String {
        match self.control(command) {
            Ok(answer) if answer.is_empty() => "nothing".to_string(),
            Ok(answer) => format!("`{answer}`"),
            Err(error) => format!("nothing readable: failed {error}"),
        }
    }

    /// The last lines of one log file, if it has any.
    fn log_tail(&self, file_name: &str) -> Option<String> {
        let text = fs::read_to_string(self.log_dir.join(file_name)).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return None;
        }
        Some(lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n"))
    }

    /// A log tail as a block for an error message, or empty.
    fn log_tail_block(&self, file_name: &str) -> String {
        match self.log_tail(file_name) {
            Some(tail) => format!(
                "\n--- last lines of {} ---\n{tail}",
                self.log_dir.join(file_name).display()
            ),
            None => String::new(),
        }
    }

    /// Stops the daemon and its servers, then removes the directories. Idempotent.
    fn teardown(&mut self) -> Result<(), SharingError> {
        if !self.active {
            return Ok(());
        }
        self.active = false;
        let stopped = self.stop_processes();
        let removed = match self.dirs.take() {
            Some(dirs) => {
                let dir = dirs.path().to_path_buf();
                dirs.close()
                    .map_err(|source| SharingError::RemovingMpsDirectory { dir, source })
            }
            None => Ok(()),
        };
        if let Some(janitor) = self.janitor.take() {
            janitor.dismiss();
        }
        stopped.and(removed)
    }

    fn stop_processes(&mut self) -> Result<(), SharingError> {
        if self.daemon.is_none() {
            self.daemon = self.find_daemon();
        }
        let control_name = self.config.control_name();
        let mut ours: Vec<(ProcessId, String)> = self
            .find_servers()
            .into_iter()
            .map(|id| (id, self.config.server_name.clone()))
            .collect();
        if let Some(daemon) = self.daemon {
            ours.push((daemon, control_name.clone()));
        }
        if ours.is_empty() {
            return Ok(());
        }
        if self.daemon.is_some_and(procs::is_alive) {
            // Whether `quit` was taken shows below, in what is still running.
            let _ = self.control("quit");
        }
        let ids: Vec<ProcessId> = ours.iter().map(|(id, _)| *id).collect();
        let mut survivors = procs::wait_gone(&ids, self.config.stop_timeout);
        // A server started while we gathered the list names our pipe directory.
        for late in procs::processes_named(&self.config.server_name) {
            if self.uses_our_pipe_dir(late.id.pid) && !survivors.contains(&late.id) {
                survivors.push(late.id);
                ours.push((late.id, self.config.server_name.clone()));
            }
        }
        if survivors.is_empty() {
            return Ok(());
        }
        for id in &survivors {
            procs::kill(*id);
        }
        let unkillable = procs::wait_gone(&survivors, KILL_GRACE);
        let pids = survivors
            .iter()
            .map(|id| {
                let name = ours
                    .iter()
                    .find(|(known, _)| known == id)
                    .map_or("?", |(_, name)| name.as_str());
                let fate = if unkillable.contains(id) {
                    ", still running after SIGKILL"
                } else {
                    ""
                };
                format!("{} ({name}{fate})", id.pid)
            })
            .collect::<Vec<_>>()
            .join(", ");
        Err(SharingError::StoppingMpsDaemon {
            pipe_dir: self.pipe_dir.clone(),
            pids,
            timeout_s: self.config.stop_timeout.as_secs(),
            log_tail: self.log_tail_block("control.log"),
        })
    }
}

impl ModeGuard for MpsGuard {
    fn tenant_env(&self, worker_idx: usize) -> Result<Vec<(String, String)>, SharingError> {
        let worker = worker(&self.workers, worker_idx)?;
        let mut env: Vec<(String, String)> = self
            .directory_env()
            .into_iter()
            .map(|(key, dir)| (key.to_string(), dir.to_string_lossy().into_owned()))
            .collect();
        // The worker's own value, else the mode's: always explicit, because the daemon's
        // default may have been raised for another worker (see `apply_defaults`).
        let percentage = worker
            .sharing
            .mps_active_thread_percentage
            .or(self.setting.active_thread_percentage);
        if let Some(percentage) = percentage {
            env.push((
                ACTIVE_THREAD_PERCENTAGE_VAR.to_string(),
                percentage.to_string(),
            ));
        }
        let limit_mib = worker
            .sharing
            .mps_pinned_memory_limit_mib
            .or(self.setting.pinned_memory_limit_mib);
        if let Some(limit_mib) = limit_mib {
            env.push((
                PINNED_DEVICE_MEM_LIMIT_VAR.to_string(),
                format!("{}={limit_mib}M", self.gpu_index),
            ));
        }
        Ok(env)
    }

    fn record(&self) -> ModeRecord {
        ModeRecord {
            notes: self.notes.clone(),
        }
    }

    fn failure_context(&self) -> Option<String> {
        let blocks: Vec<String> = ["control.log", "server.log"]
            .into_iter()
            .filter_map(|file_name| {
                let tail = self.log_tail(file_name)?;
                Some(format!("MPS {file_name} (last lines):\n{tail}"))
            })
            .collect();
        (!blocks.is_empty()).then(|| blocks.join("\n"))
    }

    fn exit(mut self: Box<Self>) -> Result<(), SharingError> {
        self.teardown()
    }
}

impl Drop for MpsGuard {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            // Drop cannot return the error; stderr is where the user sees progress.
            let _ = writeln!(
                std::io::stderr(),
                "gpushare: warning: failed {}",
                crate::errors::error_chain(&error)
            );
        }
    }
}

/// `, the highest a worker asked for; the mode's 25% goes to the other workers through
/// their environment`, or empty when the mode's value is the highest.
fn raised_note<T: PartialEq + std::fmt::Display>(mode_value: T, highest: T, unit: &str) -> String {
    if mode_value == highest {
        String::new()
    } else {
        format!(
            ", the highest a worker asked for; the mode's {mode_value}{unit} goes to the other \
             workers through their environment"
        )
    }
}

fn validate(setting: &MpsSetting, workers: &[WorkerSharing]) -> Result<(), SharingError> {
    let invalid = |detail: String| SharingError::InvalidSetting {
        mode: "mps",
        detail,
    };
    let check = |who: &str, percentage: Option<u32>, limit_mib: Option<u64>| {
        if let Some(p) = percentage.filter(|p| !(1..=100).contains(p)) {
            return Err(invalid(format!(
                "{who}active thread percentage must be 1-100, got {p}"
            )));
        }
        if limit_mib == Some(0) {
            return Err(invalid(format!(
                "{who}pinned memory limit must be at least 1 MiB, got 0"
            )));
        }
        Ok(())
    };
    check(
        "",
        setting.active_thread_percentage,
        setting.pinned_memory_limit_mib,
    )?;
    for worker in workers {
        check(
            &format!("worker `{}`: ", worker.label),
            worker.sharing.mps_active_thread_percentage,
            worker.sharing.mps_pinned_memory_limit_mib,
        )?;
    }
    Ok(())
}

/// Refuses a GPU in compute mode Prohibited (not even the MPS server may create a
/// context there) and records the mode found; without NVML it records why not.
fn check_compute_mode(gpu_index: u32) -> Result<String, SharingError> {
    let info = match gpu::gpu_info(gpu_index) {
        Ok(info) => info,
        Err(source @ GpuError::NoSuchGpu { .. }) => {
            return Err(SharingError::ReadingGpu {
                mode: "mps",
                gpu_index,
                source,
            })
        }
        Err(error) => {
            return Ok(format!(
                "compute mode not checked: {}",
                crate::errors::error_chain(&error)
            ))
        }
    };
    match info.compute_mode {
        Some(ComputeMode::Prohibited) => Err(SharingError::ComputeModeForbids {
            mode: "mps",
            gpu_index,
            compute_mode: ComputeMode::Prohibited,
            why: "lets no process, not even the MPS server, create a CUDA context",
        }),
        Some(mode) => Ok(format!(
            "GPU {gpu_index} ({}) compute mode: {mode}",
            info.name
        )),
        None => Ok(format!(
            "compute mode of GPU {gpu_index} not checked: {}",
            info.notes.join("; ")
        )),
    }
}

fn foreign_daemon_error(config: &MpsConfig, daemon: RunningDaemon) -> SharingError {
    let mine = procs::current_uid() == Some(daemon.uid);
    SharingError::ForeignMpsDaemon {
        pid: daemon.pid,
        uid: daemon.uid,
        pipe_dir: daemon.pipe_dir,
        control: config.control_name(),
        other_user: if mine {
            ""
        } else {
            "; it belongs to another user, so ask them or an administrator"
        },
    }
}

/// A fresh directory `gpushare-mps-<run>-XXXXXX` holding `pipe/` and `log/`, all 0700 so
/// no other user's process can join our daemon.
fn make_dirs(config: &MpsConfig, run_id: &str) -> Result<TempDir, SharingError> {
    let root = config.temp_root.clone().unwrap_or_else(std::env::temp_dir);
    let short_run: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    let prefix = if short_run.is_empty() {
        "gpushare-mps-".to_string()
    } else {
        format!("gpushare-mps-{short_run}-")
    };
    // tempfile leaves the mode to the umask (often 0755): ask for 0700 outright.
    let dirs = tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(&root)
        .map_err(|source| SharingError::PreparingMpsDirectory {
            path: root.clone(),
            source,
        })?;
    for sub in ["pipe", "log"] {
        let dir = dirs.path().join(sub);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|source| SharingError::PreparingMpsDirectory { path: dir, source })?;
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharing::TenantSharing;

    fn worker_with(percentage: Option<u32>, limit_mib: Option<u64>) -> WorkerSharing {
        WorkerSharing {
            label: "infer#0".into(),
            sharing: TenantSharing {
                mps_active_thread_percentage: percentage,
                mps_pinned_memory_limit_mib: limit_mib,
                mig_profile: None,
            },
        }
    }

    #[test]
    fn percentages_outside_1_to_100_are_refused() {
        let setting = MpsSetting {
            active_thread_percentage: Some(0),
            pinned_memory_limit_mib: None,
        };
        let error = validate(&setting, &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "entering mode `mps`: active thread percentage must be 1-100, got 0"
        );
        let error = validate(&MpsSetting::default(), &[worker_with(Some(101), None)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "entering mode `mps`: worker `infer#0`: active thread percentage must be 1-100, got 101"
        );
    }

    #[test]
    fn a_zero_memory_limit_is_refused() {
        let error = validate(&MpsSetting::default(), &[worker_with(None, Some(0))]).unwrap_err();
        assert!(matches!(
            error,
            SharingError::InvalidSetting { mode: "mps", .. }
        ));
        assert!(validate(&MpsSetting::default(), &[worker_with(Some(50), Some(512))]).is_ok());
    }

    #[test]
    fn directories_are_private_and_named_after_the_run() {
        let root = tempfile::tempdir().unwrap();
        let config = MpsConfig {
            temp_root: Some(root.path().to_path_buf()),
            ..MpsConfig::default()
        };
        let dirs = make_dirs(&config, "mps/train.resnet50+serve.bert-base/2t").unwrap();
        let name = dirs
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with("gpushare-mps-mps_train.resnet50_serve-"),
            "{name}"
        );
        for dir in [
            dirs.path().to_path_buf(),
            dirs.path().join("pipe"),
            dirs.path().join("log"),
        ] {
            let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
    }

    #[test]
    fn the_control_name_is_the_file_name() {
        let config = MpsConfig {
            control_binary: PathBuf::from("/opt/nvidia/bin/nvidia-cuda-mps-control"),
            ..MpsConfig::default()
        };
        assert_eq!(config.control_name(), "nvidia-cuda-mps-control");
    }

    #[test]
    fn finds_programs_by_path_or_on_path() {
        assert_eq!(
            find_program(Path::new("/bin/sh")),
            Some(PathBuf::from("/bin/sh"))
        );
        assert!(find_program(Path::new("sh")).is_some());
        assert_eq!(find_program(Path::new("gpushare-no-such-program")), None);
    }
}
