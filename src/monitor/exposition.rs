//! Writing Prometheus's text exposition format 0.0.4: one family at a time, its HELP and
//! TYPE lines once, then its series. The dcgm-named GPU figures (`dcgm`) and a running
//! study's figures (`live`) are both written through it.

use std::fmt::Write;

/// A label value escaped for the text format: backslash, double quote and newline.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes a family's `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one family: its header, then `name{labels} value` for each row (`labels` is
/// the text between the braces, already escaped). A row whose value is not finite is
/// left out, and a family with no rows left is not written at all.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str, rows: &[(String, f64)]) {
    let mut rows = rows.iter().filter(|(_, v)| v.is_finite()).peekable();
    if rows.peek().is_none() {
        return;
    }
    header(out, name, kind, help);
    for (labels, value) in rows {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_writes_its_header_once_and_only_finite_rows() {
        let mut out = String::new();
        let rows = [
            ("a=\"1\"".to_string(), 2.5),
            ("a=\"2\"".to_string(), f64::NAN),
            ("a=\"3\"".to_string(), 0.0),
        ];
        family(&mut out, "m", "gauge", "Help.", &rows);
        assert_eq!(
            out,
            "# HELP m Help.\n# TYPE m gauge\nm{a=\"1\"} 2.5\nm{a=\"3\"} 0\n"
        );
        let mut none = String::new();
        family(
            &mut none,
            "m",
            "gauge",
            "Help.",
            &[("a=\"1\"".into(), f64::INFINITY)],
        );
        assert_eq!(none, "");
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
