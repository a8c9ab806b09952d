//! The HTML report: one self-contained page (inline CSS, charts as inline SVG, no
//! scripts, nothing fetched), so it opens offline and can be attached to an issue. The
//! tables are the text report's rows; the charts are `charts`'.

use super::charts::{self, CHARTS};
use super::text::{notes, run_rows, sharing_rows, tenant_rows};
use crate::metrics::recommend::recommend;
use crate::metrics::Analysis;
use crate::results::Study;
use crate::workload::Device;

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.invalid{color:#b00}figure{margin:1em 0}\
figcaption{font-size:.9em;color:#555}svg{max-width:100%;height:auto}\
.note{font-size:.9em;color:#444}.choice{background:#eef7ee;padding:.5em 1em;border-left:4px solid #2c2}";

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn table(rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table>\n");
    for (idx, row) in rows.iter().enumerate() {
        out.push_str("<tr>");
        for cell in row {
            let tag = if idx == 0 { "th" } else { "td" };
            let class = if cell == "INVALID" || cell.ends_with("(INVALID)") {
                " class=\"invalid\""
            } else {
                ""
            };
            out.push_str(&format!("<{tag}{class}>{}</{tag}>", escape(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// The recommendation's lines as HTML: `**x**` bold, `- ` lines as a list.
fn recommendation(study: &Study, analysis: &Analysis) -> String {
    let text = super::recommend::render(study, &recommend(study, analysis, None));
    let mut out = String::from("<div class=\"choice\">\n");
    let mut in_list = false;
    for line in text.lines() {
        let mut html = escape(line);
        while let (Some(a), true) = (html.find("**"), html.matches("**").count() >= 2) {
            html.replace_range(a..a + 2, "<strong>");
            if let Some(b) = html.find("**") {
                html.replace_range(b..b + 2, "</strong>");
            }
        }
        html = html.replace('`', "");
        if let Some(item) = html.strip_prefix("- ") {
            if !in_list {
                out.push_str("<ul>\n");
                in_list = true;
            }
            out.push_str(&format!("<li>{item}</li>\n"));
        } else {
            if in_list {
                out.push_str("</ul>\n");
                in_list = false;
            }
            out.push_str(&format!("<p>{html}</p>\n"));
        }
    }
    if in_list {
        out.push_str("</ul>\n");
    }
    out.push_str("</div>\n");
    out
}

fn environment(study: &Study) -> String {
    let env = &study.environment;
    let gpu = study
        .runs
        .iter()
        .find_map(|r| r.monitor.as_ref().and_then(|m| m.gpu_name.clone()))
        .unwrap_or_else(|| "none recorded".to_string());
    let rows = vec![
        vec!["".to_string(), "".into()],
        vec![
            "scenario".into(),
            format!("{} ({})", study.scenario.name, study.scenario_path),
        ],
        vec!["started".into(), study.started_at.clone()],
        vec![
            "finished".into(),
            study.finished_at.clone().unwrap_or_else(|| "-".into()),
        ],
        vec!["GPU".into(), gpu],
        vec![
            "host".into(),
            format!("{} ({}, {} CPUs)", env.host, env.cpu_model, env.n_cpus),
        ],
        vec!["OS".into(), env.os.clone()],
        vec![
            "gpushare".into(),
            format!("{} ({})", env.gpushare_version, env.git_commit),
        ],
        vec!["features".into(), env.features.join(", ")],
    ];
    // The header row is empty: drop it.
    table(&rows).replacen("<tr><th></th><th></th></tr>\n", "", 1)
}

/// Renders the whole page.
pub fn render(study: &Study, analysis: &Analysis) -> String {
    let name = escape(&study.scenario.name);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>gpushare study {name}</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>gpushare study <code>{name}</code></h1>\n"
    );
    if !study.scenario.description.is_empty() {
        out.push_str(&format!("<p>{}</p>\n", escape(&study.scenario.description)));
    }
    let n_valid = analysis.runs.iter().filter(|r| r.verdict.valid).count();
    out.push_str(&format!(
        "<p>{n_valid} of {} runs VALID{}.</p>\n",
        analysis.runs.len(),
        if study.interrupted {
            "; the study was INTERRUPTED"
        } else {
            ""
        }
    ));
    if analysis
        .groups
        .iter()
        .flat_map(|g| &g.tenants)
        .any(|t| t.device == Device::Cpu)
    {
        out.push_str("<p class=\"note\">CPU workloads are test fixtures: their figures are not GPU data.</p>\n");
    }
    out.push_str("<h2>Recommendation</h2>\n");
    out.push_str(&recommendation(study, analysis));
    out.push_str("<h2>Charts</h2>\n");
    for (chart, caption) in CHARTS {
        match charts::render(study, analysis, chart) {
            Ok(svg) => out.push_str(&format!(
                "<figure id=\"chart-{chart}\">\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
                escape(caption)
            )),
            Err(e) => out.push_str(&format!(
                "<p class=\"note\">{}</p>\n",
                escape(&e.to_string())
            )),
        }
    }
    out.push_str("<h2>Tenants</h2>\n<p class=\"note\">Mean over VALID repetitions, [95% bootstrap CI].</p>\n");
    out.push_str(&table(&tenant_rows(study, analysis)));
    for line in notes(analysis).lines() {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", escape(line)));
    }
    out.push_str(
        "<h2>Sharing</h2>\n<p class=\"note\">NP against exclusive; STP = sum NP, ANTT = mean \
         1/NP, fairness = Jain's index over NP.</p>\n",
    );
    out.push_str(&table(&sharing_rows(study, analysis)));
    out.push_str("<h2>Runs and verdicts</h2>\n");
    out.push_str(&table(&run_rows(analysis)));
    let reasons: Vec<String> = analysis
        .runs
        .iter()
        .filter(|r| !r.verdict.valid)
        .flat_map(|run| {
            run.verdict.failed.iter().map(move |check| {
                let who = check
                    .tenant
                    .as_deref()
                    .map(|t| format!(" tenant {t}:"))
                    .unwrap_or_default();
                format!(
                    "<li>{}:{} {}. Fix: {}.</li>",
                    escape(&run.id),
                    escape(&who),
                    escape(&check.problem),
                    escape(&check.fix)
                )
            })
        })
        .collect();
    if !reasons.is_empty() {
        out.push_str(&format!(
            "<h3>Why runs are INVALID</h3>\n<ul>\n{}\n</ul>\n",
            reasons.join("\n")
        ));
    }
    out.push_str("<h2>Environment</h2>\n");
    out.push_str(&environment(study));
    out.push_str("</body>\n</html>\n");
    out
}
