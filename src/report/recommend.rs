//! The recommendation as text: which mode to choose for the mix, the runner-up, what each
//! tenant keeps under it, and one line per rejected mode saying why. A section of the
//! Markdown and HTML reports and the output of `gpushare recommend`.

use super::format::sig3;
use crate::metrics::recommend::{Candidate, Recommendation, SloMargin};
use crate::results::Study;

fn keeps(candidate: &Candidate) -> String {
    candidate
        .keeps
        .iter()
        .map(|t| {
            let pace = match t.kept_up {
                Some(true) => ", kept up with its offered load",
                Some(false) => ", fell behind its offered load",
                None => "",
            };
            format!("`{}` NP {}{pace}", t.name, sig3(t.np))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn figures(c: &Candidate) -> String {
    let closed = c
        .stp_closed_loop
        .map(|s| format!(", STP closed-loop {}", sig3(s)))
        .unwrap_or_default();
    let slo = c
        .tightest_slo
        .as_ref()
        .map(|m| format!(", tightest SLO {}", margin(m)))
        .unwrap_or_default();
    format!(
        "STP {}{closed}, fairness {}, {}/{} runs VALID{slo}",
        sig3(c.stp),
        sig3(c.fairness),
        c.n_valid,
        c.n_runs
    )
}

/// "`svc` P99 44.7 of 50 ms".
fn margin(m: &SloMargin) -> String {
    format!(
        "`{}` P{} {} of {} ms",
        m.tenant,
        m.percentile,
        sig3(m.observed_ms),
        m.target_ms
    )
}

/// Renders the recommendations as Markdown-friendly lines (also read fine in a terminal).
pub fn render(study: &Study, recommendations: &[Recommendation]) -> String {
    let mut out = String::new();
    for rec in recommendations {
        let config = study
            .plan
            .configs
            .get(rec.config_idx)
            .map(|c| c.label.as_str())
            .filter(|l| !l.is_empty())
            .map(|l| format!(" (c{} {l})", rec.config_idx))
            .unwrap_or_else(|| {
                if recommendations.len() > 1 {
                    format!(" (c{})", rec.config_idx)
                } else {
                    String::new()
                }
            });
        match &rec.choice {
            Some(choice) => {
                out.push_str(&format!(
                    "Choose **{}**{config}: {}.\n",
                    choice.mode,
                    figures(choice)
                ));
                out.push_str(&format!("- Each tenant keeps: {}.\n", keeps(choice)));
                if !rec.ties.is_empty() {
                    let tied: Vec<String> = rec.ties.iter().map(|m| m.to_string()).collect();
                    out.push_str(&format!(
                        "- A tie on STP with {}: the measurement cannot tell them apart, and \
                         {} is the simplest to run.\n",
                        tied.join(", "),
                        choice.mode
                    ));
                }
                if let Some(roomier) = &rec.roomier_tie {
                    if let (Some(theirs), Some(ours)) =
                        (&roomier.tightest_slo, &choice.tightest_slo)
                    {
                        out.push_str(&format!(
                            "- {} leaves more room under the SLOs: its tightest, {}, against \
                             {} under {}. Choose it where headroom matters more than the \
                             simpler setup.\n",
                            roomier.mode,
                            margin(theirs),
                            margin(ours),
                            choice.mode
                        ));
                    }
                }
                if let Some(second) = &rec.runner_up {
                    out.push_str(&format!(
                        "- Runner-up: {} ({}).\n",
                        second.mode,
                        figures(second)
                    ));
                }
            }
            None => out.push_str(&format!(
                "No mode{config} met every SLO in every VALID repetition: none can be \
                 recommended.\n"
            )),
        }
        for r in &rec.rejected {
            out.push_str(&format!("- Not {}: {}.\n", r.mode, r.reason));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{analyze, recommend::recommend};
    use crate::results::testing;

    #[test]
    fn a_tie_says_which_tied_mode_leaves_more_room_under_the_slo() {
        let study = testing::serving_tied_study();
        let text = render(&study, &recommend(&study, &analyze(&study), None));
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with(
                "Choose **exclusive**: STP 1.00, fairness 1.00, 2/2 runs VALID, \
                 tightest SLO `api` P90 5.0"
            ),
            "{text}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with(
                "- mps leaves more room under the SLOs: its \
                 tightest, `api` P90 3.0"
            ) && l.ends_with(
                "of 10 ms under exclusive. Choose it where headroom matters \
                     more than the simpler setup."
            )),
            "{text}"
        );
    }
}
