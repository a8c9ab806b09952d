//! One study's figures as `gpushare report` prints them (or a raw file's), and the claim
//! templates that quote them.
//!
//! A study's figures are the tables of the Markdown report (Tenants, Baselines, Sharing,
//! Along the sweep, Runs), its Recommendation, and a few figures only `--format json`
//! prints, added as columns (each tenant's throughput CV across repetitions, each run's
//! steps and windowed CV per tenant). A template is text with placeholders
//! `{KIND[@CONFIG]:KEY...:COLUMN|MODIFIER...}`:
//!
//! | kind | table | keys |
//! | --- | --- | --- |
//! | `T` | Tenants (`throughput CV %` from the JSON) | mode, tenant |
//! | `S` | Sharing | mode |
//! | `B` | Baselines | tenant |
//! | `A` | Along the sweep | mode |
//! | `R` | Runs (`TENANT items/s`; `TENANT steps`, `TENANT windowed CV` from the JSON) | mode |
//! | `Rec` | Recommendation: `choose`, `runner-up` | - |
//! | `P` | the plan: `repetitions`, `window s`, `runs VALID` (`12 of 12`) | - |
//! | `F` | a raw log's `FIGURE name value unit` lines: `value`, `unit` | name |
//! | `L` | the `mps` bench's launch-latency table: `P50 us`, `P99 us`, `max us` | case |
//! | `J` | a JSON file's values by pointer: `/latency_ms/p99_ms` | - |
//! | `JL` | the serving side-by-side `runs.jsonl`, by pointer | rep, model, what, body |
//!
//! `@c2` picks the configuration (the first word of the report's config column; `@c2,c3`
//! either). A key matches a row's cell exactly; `*` matches any, `a,b` either. Modifiers,
//! applied in order to every matching row's cell: `mean` (the figure without its CI or
//! unit), `lo` / `hi` (the CI's ends), `int`, `.N` (rounded to N decimals), `sig3` (three
//! significant digits, as the report prints), `pct` (rounded, with `%`), `percent` (a
//! fraction as a rounded percentage), `/N` (divided by N), `thousands` (`86,188`), `of`
//! (`2/3` as `2 of 3`), `met` (`true` as `met`, `false` as `missed`), `label` (a mode as
//! the recommendation table names it: `MPS at 50% SMs`); then at most one of `all` (the
//! one value every row has), `range` (`min-max`), `min`, `max`. A placeholder must end
//! with one value.

use std::collections::BTreeMap;

use gpushare::metrics::Analysis;
use gpushare::report::{self, sig3, Format};
use gpushare::results::Study;

type Row = BTreeMap<String, String>;

/// The kinds of placeholder: the table each reads and the key columns it matches, in the
/// order a placeholder gives them.
const KINDS: &[(&str, &str, &[&str])] = &[
    ("T", "Tenants", &["mode", "tenant"]),
    ("S", "Sharing", &["mode"]),
    ("B", "Baselines", &["tenant"]),
    ("A", "Along", &["mode"]),
    ("R", "Runs", &["mode"]),
    ("Rec", "Recommendation", &[]),
    ("P", "Plan", &[]),
    ("F", "FIGURE", &["name"]),
    ("L", "Launch", &["case"]),
    ("J", "JSON", &[]),
    ("JL", "JSONL", &["/rep", "/model", "/what", "/body"]),
];

/// A study's report as tables of rows: table name (its heading's first word) -> rows of
/// cells by column.
pub struct Figures {
    tables: BTreeMap<String, Vec<Row>>,
}

impl Figures {
    /// The figures of `study`, whose `metrics::analyze` is `analysis`.
    pub fn of(study: &Study, analysis: &Analysis) -> Figures {
        let markdown = report::render_analyzed(study, analysis, Format::Markdown);
        let mut tables = markdown_tables(&markdown);
        tables.insert("Recommendation".into(), recommendations(&markdown));
        tables.insert("Plan".into(), vec![plan(study, &markdown)]);
        let mut figures = Figures { tables };
        figures.add_json_columns(analysis);
        figures
    }

    /// The figures of a raw log: its `FIGURE name value [unit]` lines (the GPU tests' and
    /// benches' convention) and the `mps` bench's launch-latency table (`case P50 us ...`).
    pub fn of_log(log: &str) -> Figures {
        let mut tables: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        let mut launch_columns: Vec<String> = vec![];
        for line in log.lines() {
            if let Some((_, figure)) = line.split_once("FIGURE ") {
                let mut words = figure.split_whitespace();
                let row = Row::from([
                    ("name".to_string(), words.next().unwrap_or("").to_string()),
                    ("value".to_string(), words.next().unwrap_or("").to_string()),
                    ("unit".to_string(), words.collect::<Vec<_>>().join(" ")),
                ]);
                tables.entry("FIGURE".into()).or_default().push(row);
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with("case ") && line.contains("P50 us") {
                launch_columns = ["case", "P50 us", "P99 us", "max us"]
                    .map(String::from)
                    .to_vec();
            } else if words.len() == launch_columns.len() && !words.is_empty() {
                let row = launch_columns
                    .iter()
                    .cloned()
                    .zip(words.iter().map(|w| w.to_string()));
                tables
                    .entry("Launch".into())
                    .or_default()
                    .push(row.collect());
            } else {
                launch_columns.clear();
            }
        }
        Figures { tables }
    }

    /// The values of a JSON document (a load generator's report), one column per leaf by
    /// its JSON pointer.
    pub fn of_json(json: &str) -> Result<Figures, String> {
        let mut row = Row::new();
        leaves(
            &serde_json::from_str(json).map_err(|e| e.to_string())?,
            String::new(),
            &mut row,
        );
        Ok(Figures {
            tables: BTreeMap::from([("JSON".to_string(), vec![row])]),
        })
    }

    /// The values of JSON lines, one row per line (a table `JL` placeholders read). A `:`
    /// in a key cell (the body kind `u8:serial`) reads `+` (`u8+serial`), since `:`
    /// separates a placeholder's fields.
    pub fn of_json_lines(lines: &str) -> Result<Figures, String> {
        let rows = lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                let value =
                    serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
                let mut row = Row::new();
                leaves(&value, String::new(), &mut row);
                for key in ["/rep", "/model", "/what", "/body"] {
                    if let Some(cell) = row.get_mut(key) {
                        *cell = cell.replace(':', "+");
                    }
                }
                Ok(row)
            })
            .collect::<Result<Vec<Row>, String>>()?;
        Ok(Figures {
            tables: BTreeMap::from([("JSONL".to_string(), rows)]),
        })
    }

    /// The template with every placeholder replaced by its figure, or what is wrong with
    /// the template.
    pub fn fill(&self, template: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let len = rest[start..]
                .find('}')
                .ok_or_else(|| "a `{` without its `}`".to_string())?;
            out.push_str(&self.value(&rest[start + 1..start + len])?);
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn value(&self, placeholder: &str) -> Result<String, String> {
        let err = |e: String| format!("{{{placeholder}}}: {e}");
        let mut parts = placeholder.split('|');
        let fields: Vec<&str> = parts.next().unwrap_or_default().split(':').collect();
        let (kind, config) = match fields[0].split_once('@') {
            Some((kind, config)) => (kind, Some(config)),
            None => (fields[0], None),
        };
        let Some(&(_, table, keys)) = KINDS.iter().find(|(k, ..)| *k == kind) else {
            let known: Vec<&str> = KINDS.iter().map(|(k, ..)| *k).collect();
            return Err(err(format!("no kind {kind:?} ({})", known.join(", "))));
        };
        if fields.len() != keys.len() + 2 {
            return Err(err(format!(
                "{kind} takes {} key(s) ({}) and a column",
                keys.len(),
                keys.join(", ")
            )));
        }
        let column = fields[fields.len() - 1];
        let rows = self
            .tables
            .get(table)
            .ok_or_else(|| err(format!("the report has no {table} table")))?;
        let matching: Vec<&Row> = rows
            .iter()
            .filter(|row| {
                let config_ok = config.is_none_or(|want| {
                    let cell = row.get("config").map(String::as_str).unwrap_or("c0");
                    any_of(want, cell.split_whitespace().next().unwrap_or(""))
                });
                config_ok
                    && keys
                        .iter()
                        .zip(&fields[1..])
                        .all(|(key, want)| row.get(*key).is_some_and(|cell| any_of(want, cell)))
            })
            .collect();
        if matching.is_empty() {
            return Err(err(format!("no row of the {table} table matches")));
        }
        let mut values = matching
            .iter()
            .map(|row| {
                row.get(column).cloned().ok_or_else(|| {
                    let columns: Vec<&str> = row.keys().map(String::as_str).collect();
                    err(format!(
                        "the {table} table has no column {column:?} (it has {})",
                        columns.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for modifier in parts {
            values = apply(modifier, values).map_err(err)?;
        }
        match values.as_slice() {
            [one] => Ok(one.clone()),
            many => Err(err(format!(
                "{} rows match ({}); add |all, |range, |min or |max, or narrow the keys",
                many.len(),
                many.join(", ")
            ))),
        }
    }

    /// The figures only the JSON report prints, as columns of the Tenants and Runs rows.
    fn add_json_columns(&mut self, analysis: &Analysis) {
        for row in self.tables.entry("Tenants".into()).or_default() {
            let group = analysis.groups.iter().find(|g| {
                Some(&g.mode.to_string()) == row.get("mode")
                    && config_of(row) == format!("c{}", g.config_idx)
            });
            let tenant = group.and_then(|g| {
                g.tenants
                    .iter()
                    .find(|t| Some(&t.name) == row.get("tenant"))
            });
            if let Some(throughput) = tenant.and_then(|t| t.throughput_items_per_s.as_ref()) {
                row.insert(
                    "throughput CV %".into(),
                    format!("{:.4}", 100.0 * throughput.cv),
                );
            }
        }
        for row in self.tables.entry("Runs".into()).or_default() {
            let id = row.get("run").cloned().unwrap_or_default();
            let mut path = id.split('/');
            row.insert("mode".into(), path.next().unwrap_or("").into());
            row.insert("config".into(), path.next().unwrap_or("").into());
            let per_tenant = row
                .get("throughput per tenant (items/s)")
                .cloned()
                .unwrap_or_default();
            for entry in per_tenant.split(", ") {
                if let Some((tenant, value)) = entry.rsplit_once(' ') {
                    row.insert(format!("{tenant} items/s"), value.into());
                }
            }
            let Some(run) = analysis.runs.iter().find(|r| r.id == id) else {
                continue;
            };
            for t in &run.tenants {
                row.insert(format!("{} steps", t.name), t.steps.to_string());
                row.insert(
                    format!("{} windowed CV", t.name),
                    format!("{:.4}", t.windowed_cv),
                );
            }
        }
    }
}

/// Every leaf of `value` into `row`, by its JSON pointer (strings as they are, other
/// values as JSON).
fn leaves(value: &serde_json::Value, pointer: String, row: &mut Row) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                leaves(v, format!("{pointer}/{key}"), row);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, format!("{pointer}/{i}"), row);
            }
        }
        serde_json::Value::String(text) => {
            row.insert(pointer, text.clone());
        }
        other => {
            row.insert(pointer, other.to_string());
        }
    }
}

/// Whether `cell` is `want`, or one of `want`'s comma-separated choices, or `want` is `*`.
/// Commas inside parentheses (`mps(atp=50,mem=1024MiB)`) do not separate.
fn any_of(want: &str, cell: &str) -> bool {
    if want == "*" || want == cell {
        return true;
    }
    let mut depth = 0;
    let mut start = 0;
    let mut choices = vec![];
    for (i, c) in want.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                choices.push(&want[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    choices.push(&want[start..]);
    choices.contains(&cell)
}

fn config_of(row: &Row) -> String {
    let cell = row.get("config").map(String::as_str).unwrap_or("c0");
    cell.split_whitespace().next().unwrap_or("").to_string()
}

/// The Markdown report's tables by their heading's first word.
fn markdown_tables(markdown: &str) -> BTreeMap<String, Vec<Row>> {
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut heading = String::new();
    let mut columns: Vec<String> = vec![];
    for line in markdown.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            heading = h.split_whitespace().next().unwrap_or("").to_string();
            columns.clear();
            continue;
        }
        if !line.starts_with('|') {
            columns.clear();
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if columns.is_empty() {
            columns = cells;
        } else if !cells[0].starts_with("---") {
            let row = columns.iter().cloned().zip(cells).collect();
            out.entry(heading.clone()).or_default().push(row);
        }
    }
    out
}

/// The Recommendation section: one row per `Choose **mode**` line, with its runner-up.
fn recommendations(markdown: &str) -> Vec<Row> {
    let section = markdown.split("## Recommendation").nth(1).unwrap_or("");
    let mut rows: Vec<Row> = vec![];
    for line in section.lines() {
        if let Some(rest) = line.strip_prefix("Choose **") {
            let (mode, rest) = rest.split_once("**").unwrap_or((rest, ""));
            let config = rest
                .strip_prefix(" (")
                .and_then(|r| r.split([' ', ')']).next())
                .unwrap_or("c0");
            rows.push(Row::from([
                ("config".to_string(), config.to_string()),
                ("choose".to_string(), mode.to_string()),
            ]));
        } else if let Some(rest) = line.strip_prefix("- Runner-up: ") {
            let mode = rest.split(" (").next().unwrap_or(rest);
            if let Some(row) = rows.last_mut() {
                row.insert("runner-up".into(), mode.to_string());
            }
        }
    }
    rows
}

/// The study's plan as its report states it.
fn plan(study: &Study, markdown: &str) -> Row {
    let run = &study.scenario.run;
    let valid = markdown
        .lines()
        .find_map(|l| l.strip_suffix(" runs VALID"))
        .unwrap_or("-");
    Row::from([
        ("repetitions".to_string(), run.repetitions.to_string()),
        ("window s".to_string(), run.duration_s.to_string()),
        ("runs VALID".to_string(), valid.to_string()),
    ])
}

fn apply(modifier: &str, values: Vec<String>) -> Result<Vec<String>, String> {
    let each = |f: &dyn Fn(&str) -> Result<String, String>| -> Result<Vec<String>, String> {
        values.iter().map(|v| f(v)).collect()
    };
    match modifier {
        "mean" => each(&|v| Ok(v.split_whitespace().next().unwrap_or("").to_string())),
        "lo" | "hi" => each(&|v| {
            let inner = v
                .split_once('[')
                .and_then(|(_, r)| r.split_once(']'))
                .map(|(ci, _)| ci)
                .ok_or_else(|| format!("{v:?} has no CI"))?;
            let (lo, hi) = inner.split_once(", ").unwrap_or((inner, inner));
            Ok(if modifier == "lo" { lo } else { hi }.to_string())
        }),
        "int" => each(&|v| Ok(format!("{:.0}", number(v)?))),
        "pct" => each(&|v| Ok(format!("{:.0}%", number(v)?))),
        "percent" => each(&|v| Ok(format!("{:.0}%", 100.0 * number(v)?))),
        "of" => each(&|v| {
            v.split_once('/')
                .map(|(a, b)| format!("{a} of {b}"))
                .ok_or_else(|| format!("{v:?} is not a count like 2/3"))
        }),
        "label" => each(&|v| Ok(mode_label(v))),
        "sig3" => each(&|v| Ok(sig3(number(v)?))),
        "thousands" => each(&|v| Ok(thousands(&format!("{:.0}", number(v)?)))),
        "met" => each(&|v| match v {
            "true" => Ok("met".to_string()),
            "false" => Ok("missed".to_string()),
            other => Err(format!("{other:?} is not true or false")),
        }),
        m if m.starts_with('/') => {
            let divisor: f64 = m[1..].parse().map_err(|_| format!("bad modifier {m:?}"))?;
            each(&|v| Ok((number(v)? / divisor).to_string()))
        }
        "all" => Ok(if values.iter().all(|v| v == &values[0]) {
            vec![values[0].clone()]
        } else {
            vec![format!("(differs: {})", values.join(", "))]
        }),
        "range" | "min" | "max" => {
            let mut sorted = values
                .iter()
                .map(|v| Ok((number(v)?, v.clone())))
                .collect::<Result<Vec<(f64, String)>, String>>()?;
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (min, max) = (&sorted[0].1, &sorted[sorted.len() - 1].1);
            Ok(vec![match modifier {
                "min" => min.clone(),
                "max" => max.clone(),
                _ => format!("{min}-{max}"),
            }])
        }
        m if m.starts_with('.') => {
            let decimals: usize = m[1..].parse().map_err(|_| format!("bad modifier {m:?}"))?;
            each(&|v| Ok(format!("{:.*}", decimals, number(v)?)))
        }
        other => Err(format!("no modifier {other:?}")),
    }
}

/// The number a cell starts with (`64773 [64623, 64898] GFLOP/s`, `100.0%`).
fn number(cell: &str) -> Result<f64, String> {
    let first = cell.split_whitespace().next().unwrap_or("");
    first
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{cell:?} is not a number"))
}

/// An integer with commas between thousands: `86,188`.
fn thousands(digits: &str) -> String {
    let (sign, digits) = digits.split_at(usize::from(digits.starts_with('-')));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// A mode as the recommendation table of `results/h200/README.md` names it.
fn mode_label(mode: &str) -> String {
    match mode {
        "mps" => "MPS".to_string(),
        m => match m.strip_prefix("mps(atp=").and_then(|p| p.strip_suffix(')')) {
            Some(p) => format!("MPS at {p}% SMs"),
            None => m.to_string(),
        },
    }
}
