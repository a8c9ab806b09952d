use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::monitor::dcgm::{self, GpuLabels};
use crate::monitor::exporter;
use crate::monitor::tui::{self, GpuView, MonitorView};
use crate::monitor::{self, MonitorConfig, MonitorHandle, SyntheticSource};

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// How often to sample each GPU: `100ms`, `1s`.
    #[arg(long, default_value = "100ms", value_parser = parse_interval)]
    pub interval: Duration,
    /// Also serve the latest samples as Prometheus text on http://ADDR/metrics, with
    /// dcgm-exporter's metric names (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_POWER_USAGE, ...),
    /// e.g. 127.0.0.1:9400 (port 0 picks a free port, printed on stderr).
    #[arg(long, value_name = "ADDR", value_parser = exporter::parse_addr)]
    pub prometheus: Option<SocketAddr>,
    /// Show a synthetic GPU instead of NVML's (demos and tests; never GPU data).
    #[arg(long)]
    pub synthetic: bool,
    /// Run non-interactively: take N samples, print the view once as plain text, exit.
    #[arg(long, value_name = "N")]
    pub frames: Option<u32>,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; write e.g. 100ms or 1s"))?;
    if d < Duration::from_millis(10) {
        return Err(format!("must be at least 10ms, got {text}"));
    }
    Ok(d)
}

/// One sampler per GPU with its labels, or why there is none.
fn start(args: &MonitorArgs) -> Result<Vec<(GpuLabels, MonitorHandle)>, CliError> {
    let hostname = crate::environment::Environment::capture().host;
    let config = |gpu_index| MonitorConfig {
        interval_ms: args.interval.as_millis() as u64,
        gpu_index,
        slow_interval_ms: 1000,
    };
    if args.synthetic {
        let labels = GpuLabels {
            gpu: 0,
            uuid: String::new(),
            model_name: "synthetic GPU".into(),
            hostname,
        };
        let handle = monitor::start_live_with_source(config(0), Box::new(SyntheticSource::new()))?;
        return Ok(vec![(labels, handle)]);
    }
    let host = crate::gpu::host_gpus().map_err(|e| {
        CliError::NoGpu(format!(
            "no GPU to monitor ({}); `gpushare monitor --synthetic` shows the view with synthetic data",
            crate::errors::error_chain(&e)
        ))
    })?;
    if host.gpus.is_empty() {
        return Err(CliError::NoGpu(
            "no GPU to monitor: NVML lists none; `gpushare monitor --synthetic` shows the view \
             with synthetic data"
                .into(),
        ));
    }
    host.gpus
        .iter()
        .map(|g| {
            let labels = GpuLabels::of(g, &hostname);
            Ok((labels, monitor::start_live(config(g.index))?))
        })
        .collect()
}

pub fn run(args: MonitorArgs) -> Result<ExitCode, CliError> {
    let samplers = start(&args)?;
    let mut view = MonitorView {
        gpus: samplers
            .iter()
            .map(|(l, _)| GpuView::new(l.clone()))
            .collect(),
        subtitle: format!(
            "every {}{}",
            humantime::format_duration(args.interval),
            if args.synthetic {
                "; synthetic source, not GPU data"
            } else {
                ""
            }
        ),
    };
    let metrics = Arc::new(Mutex::new(String::new()));
    if let Some(addr) = args.prometheus {
        let text = metrics.clone();
        let bound = exporter::serve(
            addr,
            Arc::new(move || text.lock().map(|t| t.clone()).unwrap_or_default()),
        )?;
        eprintln!("serving Prometheus text on http://{bound}/metrics");
    }
    let mut update = |view: &mut MonitorView| {
        let mut latest = vec![];
        for ((labels, handle), gpu) in samplers.iter().zip(view.gpus.iter_mut()) {
            if let Some(sample) = handle.latest() {
                gpu.push(sample.clone(), &monitor::process_name);
                latest.push((labels.clone(), sample));
            }
        }
        if let Ok(mut text) = metrics.lock() {
            *text = dcgm::render(&latest, &monitor::process_name);
        }
    };
    if let Some(frames) = args.frames {
        for _ in 0..frames {
            std::thread::sleep(args.interval);
            update(&mut view);
        }
        print!("{}", tui::render_text(&view, 100));
        return Ok(ExitCode::SUCCESS);
    }
    interactive(&args, &mut view, &mut update)
}

/// The live view until q, Esc or Ctrl-C.
fn interactive(
    args: &MonitorArgs,
    view: &mut MonitorView,
    update: &mut dyn FnMut(&mut MonitorView),
) -> Result<ExitCode, CliError> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    let mut terminal = ratatui::init();
    let result = (|| -> std::io::Result<()> {
        loop {
            update(view);
            terminal.draw(|f| tui::draw(f, view))?;
            if event::poll(args.interval)? {
                if let Event::Key(key) = event::read()? {
                    let ctrl_c = key.code == KeyCode::Char('c')
                        && key.modifiers.contains(KeyModifiers::CONTROL);
                    if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result.map_err(CliError::Terminal)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_interval;
    use std::time::Duration;

    #[test]
    fn intervals_take_units() {
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(
            parse_interval("1ms").unwrap_err(),
            "must be at least 10ms, got 1ms"
        );
    }
}
