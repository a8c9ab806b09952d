//! The MPS janitor: stops our MPS daemon when the process that started it dies without
//! tearing it down (SIGKILL, OOM killer, a crash in the middle of a run).
//!
//! The MPS control daemon forks away from whoever starts it, so nothing ties its life to
//! the runner's, and `Drop` does not run on SIGKILL. The janitor is a small `sh` process
//! started next to the daemon, in its own process group (a Ctrl-C at the terminal does
//! not reach it) and ignoring the usual termination signals. It blocks reading a pipe
//! whose only writer is the guard. The kernel closes that pipe however the guard's
//! process ends, so end-of-file means "the runner is gone": the janitor sends `quit`,
//! waits for the control daemon and servers of our pipe directory to exit, kills those
//! still there after the stop timeout, and removes the run's MPS directories. After a
//! normal teardown the guard kills the janitor instead, so it never acts twice.
//!
//! It only touches processes whose program name is the control or server program *and*
//! whose environment names our private pipe directory, so it cannot hit another run's
//! daemon or a recycled pid.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The janitor's script. Inputs come through the environment, never spliced into the text.
const SCRIPT: &str = r#"
trap '' INT TERM HUP QUIT PIPE
while read -r _; do :; done
# End of file: the process holding the guard is gone.
ours() {
    for proc in /proc/[0-9]*; do
        [ "${proc#/proc/}" = "$$" ] && continue
        arg0=$(tr '\0' '\n' <"$proc/cmdline" 2>/dev/null | head -n 1) || continue
        case "${arg0##*/}" in
            "$GS_CONTROL_NAME" | "$GS_SERVER_NAME") ;;
            *) continue ;;
        esac
        tr '\0' '\n' <"$proc/environ" 2>/dev/null | grep -qxF "CUDA_MPS_PIPE_DIRECTORY=$GS_PIPE_DIR" \
            && echo "${proc#/proc/}"
    done
}
echo quit | CUDA_MPS_PIPE_DIRECTORY="$GS_PIPE_DIR" CUDA_MPS_LOG_DIRECTORY="$GS_LOG_DIR" \
    "$GS_CONTROL" >/dev/null 2>&1
tenths=0
while [ -n "$(ours)" ] && [ "$tenths" -lt "$GS_STOP_TENTHS" ]; do
    sleep 0.1
    tenths=$((tenths + 1))
done
for pid in $(ours); do
    kill -9 "$pid" 2>/dev/null
done
rm -rf "$GS_RUN_DIR"
"#;

/// What the janitor cleans up after.
pub(super) struct JanitorTarget<'a> {
    /// The control program, as the guard runs it (a name on PATH or a path).
    pub control: &'a Path,
    pub control_name: &'a str,
    pub server_name: &'a str,
    pub pipe_dir: &'a Path,
    pub log_dir: &'a Path,
    /// The run's directory holding `pipe/` and `log/`, removed at the end.
    pub run_dir: &'a Path,
    pub stop_timeout: Duration,
}

/// A running janitor. Dropping it without [`Janitor::dismiss`] closes the pipe, which is
/// the signal to clean up: what a dying guard process does.
pub(super) struct Janitor {
    child: Child,
}

impl Janitor {
    /// Starts the janitor for `target`.
    pub(super) fn start(target: &JanitorTarget<'_>) -> io::Result<Janitor> {
        let stop_tenths = target.stop_timeout.as_millis().div_ceil(100).max(1);
        let child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .env("GS_CONTROL", target.control)
            .env("GS_CONTROL_NAME", target.control_name)
            .env("GS_SERVER_NAME", target.server_name)
            .env("GS_PIPE_DIR", target.pipe_dir)
            .env("GS_LOG_DIR", target.log_dir)
            .env("GS_RUN_DIR", target.run_dir)
            .env("GS_STOP_TENTHS", stop_tenths.to_string())
            .env_remove("CUDA_MPS_PIPE_DIRECTORY")
            .env_remove("CUDA_MPS_LOG_DIRECTORY")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Janitor { child })
    }

    /// The janitor's pid, for notes.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the janitor without letting it act: the guard tore down itself.
    pub(super) fn dismiss(mut self) {
        // SIGKILL before the pipe closes, so it never sees end-of-file and acts.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
