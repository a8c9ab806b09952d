//! The tenant's load generator: a child process running this executable's
//! `load --stream`, and a thread that reads its stream of finished requests.
//!
//! A separate process so the load's threads never compete with the server's inside one
//! runtime, and so the generator is what a real client is: another process on the host.
//! It never outlives the worker: its stdin is a pipe from the worker (end of stdin makes it
//! exit), the kernel sends it SIGKILL when the worker dies (`PR_SET_PDEATHSIG`, as the
//! runner does for workers), and dropping [`GeneratorProcess`] kills and reaps it.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so the
//! generator must be started from a thread that lives as long as the worker: the worker's
//! main thread, which runs `prepare`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use super::params::ServeTenantSpec;
use crate::load::{parse_line, StreamLine};

/// Something the generator said or did, stamped with when the worker read it.
#[derive(Debug)]
pub enum GeneratorEvent {
    Line {
        arrived: Instant,
        line: StreamLine,
    },
    /// A stdout line that is not part of the stream.
    Garbled(String),
    /// Its stdout closed: it exited or is about to.
    Closed,
}

pub struct GeneratorProcess {
    child: Child,
    /// Held open for the generator's life; closing it tells the generator to exit.
    _stdin: Option<ChildStdin>,
    events: Receiver<GeneratorEvent>,
}

/// The `gpushare load` arguments of a tenant's generator.
pub fn load_args(
    spec: &ServeTenantSpec,
    addr: SocketAddr,
    seed: u64,
    body: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "load".into(),
        format!("http://{addr}/v1/infer").into(),
        "--stream".into(),
        "--rate".into(),
        spec.rate_per_s.to_string().into(),
        "--seed".into(),
        seed.to_string().into(),
        "--connections".into(),
        spec.connections.to_string().into(),
        "--threads".into(),
        "1".into(),
        "--content-type".into(),
        crate::serve::body::BINARY_CONTENT_TYPE.into(),
        "--body".into(),
        body.as_os_str().to_owned(),
    ];
    if spec.poisson {
        args.push("--poisson".into());
    }
    args
}

impl GeneratorProcess {
    /// Starts `exe` with `args` and a reader thread on its stdout. Call it from the
    /// worker's main thread (see the module documentation).
    pub fn start(exe: &Path, args: &[OsString]) -> Result<Self, String> {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its messages join the worker's, which the runner keeps for failure reports.
            .stderr(Stdio::inherit());
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: die_with_parent is async-signal-safe (one prctl call).
            unsafe {
                cmd.pre_exec(crate::isolation::die_with_parent);
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|err| format!("starting the load generator {}: {err}", exe.display()))?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("starting the load generator: its stdout was not piped".to_owned());
        };
        let (tx, events) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("gpushare-serve-stream".to_owned())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let arrived = Instant::now();
                    let event = match parse_line(&line) {
                        Ok(line) => GeneratorEvent::Line { arrived, line },
                        Err(err) => GeneratorEvent::Garbled(format!("{line:?}: {err}")),
                    };
                    if tx.send(event).is_err() {
                        return;
                    }
                }
                let _ = tx.send(GeneratorEvent::Closed);
            });
        if let Err(err) = spawned {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "starting the load generator's reader thread: {err}"
            ));
        }
        Ok(Self {
            child,
            _stdin: stdin,
            events,
        })
    }

    /// The generator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next event; blocks until there is one.
    pub fn next_event(&self) -> GeneratorEvent {
        // The reader thread sends Closed before it ends, so a closed channel means the
        // same.
        self.events.recv().unwrap_or(GeneratorEvent::Closed)
    }

    /// How the generator ended, once its stdout has closed.
    pub fn exit_status(&mut self) -> String {
        match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(err) => format!("unknown status ({err})"),
        }
    }
}

impl Drop for GeneratorProcess {
    fn drop(&mut self) {
        // Killed rather than asked: its figures are not wanted any more, and a kill cannot
        // be ignored. Waiting reaps it, so no zombie is left either.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::serve::ServeTenantModel;
    use crate::workload::Params;

    #[test]
    fn the_arguments_are_a_valid_streaming_load_command() {
        use clap::Parser;
        let mut spec =
            ServeTenantSpec::from_params(ServeTenantModel::Delay, &Params::default()).unwrap();
        spec.rate_per_s = 250.5;
        spec.poisson = true;
        let args = load_args(
            &spec,
            "127.0.0.1:4321".parse().unwrap(),
            7,
            Path::new("/tmp/body"),
        );
        let cli = crate::cli::Cli::try_parse_from(
            std::iter::once(OsString::from("gpushare")).chain(args),
        )
        .unwrap();
        let crate::cli::Command::Load(load) = cli.command else {
            panic!("not a load command");
        };
        assert!(load.stream && load.poisson);
        assert_eq!(load.url, "http://127.0.0.1:4321/v1/infer");
        assert_eq!(load.rate, 250.5);
        assert_eq!(load.seed, 7);
        assert_eq!(load.connections, 64);
        assert_eq!(load.threads, 1);
        assert_eq!(load.body.as_deref(), Some(Path::new("/tmp/body")));
        assert_eq!(
            load.content_type.as_deref(),
            Some("application/octet-stream")
        );
    }

    #[test]
    fn lines_become_events_and_the_end_is_closed() {
        // `sh` stands in for the generator: two stream lines, one stray line, then exit.
        let script = r#"echo '{"event":"started","connections":2}'; echo hello; echo '{"event":"done","intended_s":0.0,"latency_s":0.004,"outcome":"ok"}'; exit 3"#;
        let mut generator =
            GeneratorProcess::start(Path::new("sh"), &["-c".into(), script.into()]).unwrap();
        assert!(matches!(
            generator.next_event(),
            GeneratorEvent::Line {
                line: StreamLine::Started { connections: 2 },
                ..
            }
        ));
        assert!(
            matches!(generator.next_event(), GeneratorEvent::Garbled(l) if l.starts_with("\"hello\": "))
        );
        assert!(matches!(
            generator.next_event(),
            GeneratorEvent::Line {
                line: StreamLine::Done(_),
                ..
            }
        ));
        assert!(matches!(generator.next_event(), GeneratorEvent::Closed));
        assert_eq!(generator.exit_status(), "exit status: 3");
    }

    #[test]
    fn dropping_it_kills_and_reaps_the_process() {
        let generator = GeneratorProcess::start(Path::new("sleep"), &["600".into()]).unwrap();
        let pid = generator.pid() as i32;
        drop(generator);
        // Reaped: the pid no longer names a process of ours (not even a zombie).
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "generator {pid} survived its handle");
    }
}
