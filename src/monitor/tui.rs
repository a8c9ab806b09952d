//! The live terminal view of `gpushare monitor` (ratatui): per GPU its utilization,
//! memory, SM clock, power, temperature and throttle reasons, history sparklines of
//! utilization and power, and a row per process with its name, memory and SM
//! utilization, as nvitop shows them. Drawing is a pure function of [`MonitorView`], so
//! it is tested on ratatui's `TestBackend` and printed as plain text by `--frames`.

use std::collections::VecDeque;

use ratatui::backend::TestBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table};
use ratatui::{Frame, Terminal};

use super::dcgm::GpuLabels;
use super::series::Sample;

/// Samples of history the sparklines keep.
pub const HISTORY: usize = 120;
/// Process rows shown per GPU.
const MAX_PROCESSES: usize = 6;

/// One GPU as the view shows it.
#[derive(Debug, Clone)]
pub struct GpuView {
    pub labels: GpuLabels,
    pub latest: Option<Sample>,
    util_pct: VecDeque<u64>,
    power_w: VecDeque<u64>,
    /// Process names by pid, looked up once per pid.
    names: Vec<(u32, String)>,
}

/// Everything the view draws.
#[derive(Debug, Clone)]
pub struct MonitorView {
    pub gpus: Vec<GpuView>,
    /// Said under the title: the interval, and that synthetic data is not GPU data.
    pub subtitle: String,
}

impl GpuView {
    pub fn new(labels: GpuLabels) -> Self {
        GpuView {
            labels,
            latest: None,
            util_pct: VecDeque::new(),
            power_w: VecDeque::new(),
            names: vec![],
        }
    }

    /// Adds a sample; `name_of` finds a process's name from its pid.
    pub fn push(&mut self, sample: Sample, name_of: &dyn Fn(u32) -> String) {
        let keep = |history: &mut VecDeque<u64>, v: Option<f64>| {
            if let Some(v) = v {
                if history.len() == HISTORY {
                    history.pop_front();
                }
                history.push_back(v.max(0.0).round() as u64);
            }
        };
        keep(&mut self.util_pct, sample.util_gpu_pct.map(f64::from));
        keep(&mut self.power_w, sample.power_w);
        for p in &sample.processes {
            if !self.names.iter().any(|(pid, _)| *pid == p.pid) {
                self.names.push((p.pid, name_of(p.pid)));
            }
        }
        self.latest = Some(sample);
    }

    fn name(&self, pid: u32) -> &str {
        self.names
            .iter()
            .find(|(p, _)| *p == pid)
            .map_or("?", |(_, n)| n.as_str())
    }
}

fn or_dash<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map_or("-".to_string(), |v| format!("{v}{unit}"))
}

fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 30) as f64)
}

/// The figures of a sample, one line each.
fn figure_lines(s: &Sample) -> Vec<Line<'static>> {
    let memory = match (s.memory_used_bytes, s.memory_total_bytes) {
        (Some(u), Some(t)) => format!("{} / {} GiB", gib(u), gib(t)),
        (Some(u), None) => format!("{} GiB", gib(u)),
        _ => "-".to_string(),
    };
    let throttle = match &s.throttle_reasons {
        None => "-".to_string(),
        Some(r) if r.is_empty() => "none".to_string(),
        Some(r) => r.join(", "),
    };
    vec![
        Line::from(format!(
            "util {}  memory util {}  memory {memory}",
            or_dash(s.util_gpu_pct, "%"),
            or_dash(s.util_memory_pct, "%"),
        )),
        Line::from(format!(
            "SM clock {}  memory clock {}  power {}  temperature {}",
            or_dash(s.sm_clock_mhz, " MHz"),
            or_dash(s.memory_clock_mhz, " MHz"),
            or_dash(s.power_w.map(|p| format!("{p:.0}")), " W"),
            or_dash(s.temperature_c, " C"),
        )),
        Line::from(format!("throttle reasons: {throttle}")),
    ]
}

fn draw_gpu(frame: &mut Frame, area: Rect, gpu: &GpuView) {
    let block = Block::default().borders(Borders::ALL).title(format!(
        " GPU {}: {} ",
        gpu.labels.gpu, gpu.labels.model_name
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(sample) = &gpu.latest else {
        frame.render_widget(Paragraph::new("waiting for the first sample"), inner);
        return;
    };
    let n_rows = sample.processes.len().min(MAX_PROCESSES) as u16;
    let [figures, sparks, processes] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Min(n_rows + 1),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(figure_lines(sample)), figures);
    let [util, power] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(sparks);
    let tail = |h: &VecDeque<u64>, width: u16| -> Vec<u64> {
        h.iter()
            .skip(h.len().saturating_sub(width as usize))
            .copied()
            .collect()
    };
    let util_data = tail(&gpu.util_pct, util.width);
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().title("util % (history)"))
            .data(&util_data)
            .max(100)
            .style(Style::default().fg(Color::Green)),
        util,
    );
    let power_data = tail(&gpu.power_w, power.width);
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().title("power W (history)"))
            .data(&power_data)
            .style(Style::default().fg(Color::Yellow)),
        power,
    );
    let rows: Vec<Row> = sample
        .processes
        .iter()
        .take(MAX_PROCESSES)
        .map(|p| {
            Row::new(vec![
                p.pid.to_string(),
                gpu.name(p.pid).to_string(),
                if p.mps_client { "MPS" } else { "C" }.to_string(),
                or_dash(p.memory_used_bytes.map(|b| b >> 20), " MiB"),
                or_dash(p.util_sm_pct, "%"),
                or_dash(p.util_memory_pct, "%"),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(18),
            Constraint::Length(5),
            Constraint::Length(11),
            Constraint::Length(7),
            Constraint::Length(8),
        ],
    )
    .header(
        Row::new(vec!["pid", "process", "type", "memory", "SM", "mem bw"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    );
    frame.render_widget(table, processes);
}

/// Draws the whole view into a frame.
pub fn draw(frame: &mut Frame, view: &MonitorView) {
    let area = frame.area();
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(
        Paragraph::new(format!("gpushare monitor: {}", view.subtitle)),
        title,
    );
    let n = view.gpus.len().max(1) as u32;
    let areas = Layout::vertical(vec![Constraint::Ratio(1, n); n as usize]).split(body);
    for (gpu, area) in view.gpus.iter().zip(areas.iter()) {
        draw_gpu(frame, *area, gpu);
    }
}

/// Height a frame needs to show every GPU with its processes.
pub fn frame_height(view: &MonitorView) -> u16 {
    let per_gpu: u16 = view
        .gpus
        .iter()
        .map(|g| {
            let rows = g
                .latest
                .as_ref()
                .map_or(0, |s| s.processes.len().min(MAX_PROCESSES));
            2 + 3 + 3 + 1 + rows as u16
        })
        .sum();
    1 + per_gpu.max(3)
}

/// The view as plain text, `width` columns wide, one line per terminal row (trailing
/// spaces trimmed).
pub fn render_text(view: &MonitorView, width: u16) -> String {
    let height = frame_height(view);
    // TestBackend's draw cannot fail: it writes into memory.
    let Ok(mut terminal) = Terminal::new(TestBackend::new(width, height)) else {
        return String::new();
    };
    if terminal.draw(|f| draw(f, view)).is_err() {
        return String::new();
    }
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::sampler::GpuSource;
    use crate::monitor::SyntheticSource;

    fn labels() -> GpuLabels {
        GpuLabels {
            gpu: 0,
            uuid: String::new(),
            model_name: "synthetic GPU".into(),
            hostname: "test".into(),
        }
    }

    #[test]
    fn a_frame_shows_the_figures_the_history_and_the_processes() {
        let mut source = SyntheticSource::new();
        let mut gpu = GpuView::new(labels());
        for i in 0..12 {
            let reading = source.sample(i % 10 == 0 || i == 11);
            gpu.push(reading.sample, &|_| "python3".to_string());
        }
        let view = MonitorView {
            gpus: vec![gpu],
            subtitle: "every 100 ms; synthetic source, not GPU data".into(),
        };
        let text = render_text(&view, 100);
        assert!(
            text.starts_with("gpushare monitor: every 100 ms; synthetic source"),
            "{text}"
        );
        assert!(text.contains(" GPU 0: synthetic GPU "), "{text}");
        assert!(text.contains("SM clock 1980 MHz"), "{text}");
        assert!(text.contains("power 400 W  temperature 45 C"), "{text}");
        assert!(text.contains("memory 1.0 / 80.0 GiB"), "{text}");
        assert!(text.contains("throttle reasons: none"), "{text}");
        assert!(text.contains("util % (history)"), "{text}");
        // The slow reading's process row with its name, as the latest sample carries it.
        let row = text.lines().find(|l| l.contains("python3")).unwrap();
        assert!(row.contains("1024 MiB"), "{row}");
        // The sparkline drew bars.
        assert!(text.chars().any(|c| "▁▂▃▄▅▆▇█".contains(c)), "{text}");
    }

    #[test]
    fn a_gpu_without_samples_says_it_waits() {
        let view = MonitorView {
            gpus: vec![GpuView::new(labels())],
            subtitle: String::new(),
        };
        assert!(render_text(&view, 80).contains("waiting for the first sample"));
    }
}
