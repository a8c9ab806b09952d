//! The process plumbing the MPS guard needs: finding processes by program name in
//! `/proc`, telling whether one is really gone, killing one, and running a short command
//! with a time limit.
//!
//! Processes are found by the file name of `argv[0]`, not by `comm`: the kernel cuts
//! `comm` to 15 bytes, so `pgrep -x nvidia-cuda-mps-control` never matches. A process is
//! identified by its pid together with its start time, so a pid the kernel has handed to a
//! new process is never mistaken for the old one (and never killed).

use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often waits look again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One process as `/proc` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub id: ProcessId,
    /// Owner's user id.
    pub uid: u32,
    /// Parent's pid.
    pub ppid: u32,
    /// The command line, `argv[0]` first.
    pub args: Vec<String>,
}

/// A pid together with its start time (clock ticks after boot), which a reused pid does
/// not share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    pub start_ticks: u64,
}

/// The user id of this process.
pub fn current_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|meta| meta.uid())
}

/// Every process whose `argv[0]` file name is `name`.
pub fn processes_named(name: &str) -> Vec<ProcessInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(process_info)
        .filter(|info| {
            info.args
                .first()
                .and_then(|arg0| Path::new(arg0).file_name())
                .is_some_and(|file_name| file_name == name)
        })
        .collect()
}

/// What `/proc` says about `pid`, or `None` when it is gone or unreadable.
pub fn process_info(pid: u32) -> Option<ProcessInfo> {
    let dir = format!("/proc/{pid}");
    let uid = std::fs::metadata(&dir).ok()?.uid();
    let (state, ppid, start_ticks) = read_stat(pid)?;
    if state == 'Z' {
        return None;
    }
    let cmdline = std::fs::read(format!("{dir}/cmdline")).ok()?;
    let args = cmdline
        .split(|&byte| byte == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    Some(ProcessInfo {
        id: ProcessId { pid, start_ticks },
        uid,
        ppid,
        args,
    })
}

/// State, parent pid and start time from `/proc/<pid>/stat` (proc(5)). The command name
/// sits in parentheses and may itself hold spaces or parentheses, so fields are counted
/// from the last `)`.
fn read_stat(pid: u32) -> Option<(char, u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    // Field 22 of stat; the 20th after the command name.
    let start_ticks = fields.get(19)?.parse().ok()?;
    Some((state, ppid, start_ticks))
}

/// One variable of a process's environment; `None` when unset or not ours to read.
pub fn environment_variable(pid: u32, key: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{key}=");
    environ
        .split(|&byte| byte == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

/// Whether the process still runs (a zombie counts as gone: it runs nothing).
pub fn is_alive(id: ProcessId) -> bool {
    matches!(read_stat(id.pid), Some((state, _, start)) if state != 'Z' && start == id.start_ticks)
}

/// Waits until every process in `ids` is gone; returns those still alive at `timeout`.
pub fn wait_gone(ids: &[ProcessId], timeout: Duration) -> Vec<ProcessId> {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<ProcessId> = ids.iter().copied().filter(|&id| is_alive(id)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Sends SIGKILL, unless the pid now belongs to another process.
pub fn kill(id: ProcessId) {
    if is_alive(id) {
        if let Ok(pid) = i32::try_from(id.pid) {
            // SAFETY: kill(2) takes plain integers and has no memory effects; the pid was
            // checked just above to still name the process we recorded.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// What a command run with [`run_with_timeout`] did.
#[derive(Debug)]
pub struct CommandOutput {
    /// Exit status; `None` when it ran past the limit and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    /// Stdout and stderr together, trimmed, for error messages.
    pub fn text(&self) -> String {
        let joined = format!("{}\n{}", self.stdout.trim(), self.stderr.trim());
        joined.trim().to_string()
    }
}

/// Runs `command` with `input` on its stdin and waits at most `timeout` for it to exit,
/// killing it after that.
pub fn run_with_timeout(
    mut command: Command,
    input: &str,
    timeout: Duration,
) -> io::Result<CommandOutput> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that exits without reading its input closes the pipe; that is its
        // answer, not ours to report.
        let _ = stdin.write_all(input.as_bytes());
    }
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = wait_with_timeout(&mut child, timeout)?;
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(CommandOutput {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn read_in_background<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// The child's exit status, or `None` if it still runs at `timeout`.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child's `/proc` entry once its `exec` has finished: spawn returns as soon as
    /// the child leaves the parent's memory, a moment before its new command line and
    /// environment are in place.
    fn exec_done(child: &Child) -> ProcessInfo {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match process_info(child.id()) {
                Some(info) if !info.args.is_empty() => return info,
                _ if Instant::now() >= deadline => panic!("the child never finished exec"),
                _ => thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    #[test]
    fn finds_a_process_by_argv0_and_sees_it_go() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let info = exec_done(&child);
        assert_eq!(info.args, ["sleep", "30"]);
        assert_eq!(Some(info.uid), current_uid());
        assert!(processes_named("sleep").iter().any(|p| p.id == info.id));
        assert!(is_alive(info.id));

        kill(info.id);
        child.wait().unwrap();
        assert!(wait_gone(&[info.id], Duration::from_secs(2)).is_empty());
    }

    #[test]
    fn a_reused_pid_is_not_the_same_process() {
        let me = process_info(std::process::id()).unwrap();
        let other = ProcessId {
            pid: me.id.pid,
            start_ticks: me.id.start_ticks + 1,
        };
        assert!(is_alive(me.id));
        assert!(!is_alive(other));
    }

    #[test]
    fn reads_an_environment_variable_of_a_child() {
        let mut child = Command::new("sleep")
            .arg("30")
            .env("GPUSHARE_PROCS_TEST", "pipe-dir")
            .spawn()
            .unwrap();
        exec_done(&child);
        let value = environment_variable(child.id(), "GPUSHARE_PROCS_TEST");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(value.as_deref(), Some("pipe-dir"));
    }

    #[test]
    fn a_command_past_its_limit_is_killed() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let started = Instant::now();
        let output = run_with_timeout(command, "", Duration::from_millis(200)).unwrap();
        assert!(output.status.is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_command_gets_its_input_and_gives_its_output() {
        let output = run_with_timeout(
            Command::new("cat"),
            "get_server_list\n",
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(output.status.unwrap().success());
        assert_eq!(output.stdout, "get_server_list\n");
    }
}
