//! Every number a scenario can hold, fed extreme values: validation answers with a located
//! problem or accepts, and whatever it accepts expands into a plan and parses in the
//! worker without a panic. The fields come from `gpushare::limits` and the workload
//! registry, so a new field is covered without touching this file.

use std::path::Path;

use gpushare::limits;
use gpushare::scenario::{self, Plan, ScenarioError};
use gpushare::worker::{self, protocol::WorkerSpec};
use gpushare::workload::{self, ParamKind};
use proptest::prelude::*;

use crate::common::{gpushare, stderr, write_scenario};

/// TOML literals at the edges: huge, negative, zero, the floats TOML allows that are not
/// numbers, and the ends of i64.
const EDGES: &[&str] = &[
    "1e308",
    "-1e308",
    "1e12",
    "-1",
    "0",
    "0.0",
    "1",
    "0.5",
    "inf",
    "-inf",
    "nan",
    "9223372036854775807",
    "-9223372036854775808",
    "86400",
    "86400.5",
    "3600000",
];

/// A TOML number literal: one of the edges, or any f64 or i64.
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(EDGES).prop_map(str::to_string),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| {
            if v.is_nan() {
                "nan".to_string()
            } else if v.is_infinite() {
                if v > 0.0 { "inf" } else { "-inf" }.to_string()
            } else {
                // Debug writes a float TOML reads back: `1e308`, `0.5`, `-0.0`.
                format!("{v:?}")
            }
        }),
    ]
}

/// Where a number goes in a scenario: the scenario's text with `@` for the value.
#[derive(Debug, Clone)]
struct Field {
    /// As validation names it: `run.duration_s`, `tenants[0].params.step_ms`.
    name: String,
    template: String,
}

fn tenant(workload: &str, params: &str) -> String {
    format!("[[tenants]]\nname = \"a\"\nworkload = \"{workload}\"\nparams = {{ {params} }}\n")
}

fn fields() -> Vec<Field> {
    let modes = "[[modes]]\nmode = \"time-slicing\"\n";
    let header = "name = \"n\"\n";
    let cpu = tenant("cpu.synthetic", "");
    let mut out = vec![];
    let run_fields = limits::run::FLOAT_FIELDS
        .iter()
        .map(|(name, _)| *name)
        .chain(limits::run::INT_FIELDS.iter().map(|(name, _)| *name));
    for name in run_fields {
        out.push(Field {
            name: format!("run.{name}"),
            template: format!("{header}[run]\n{name} = @\n{modes}{cpu}"),
        });
    }
    for name in ["active_thread_percentage", "pinned_memory_limit_mib"] {
        out.push(Field {
            name: format!("modes[0].{name}"),
            template: format!("{header}[[modes]]\nmode = \"mps\"\n{name} = @\n{cpu}"),
        });
        out.push(Field {
            name: format!("tenants[0].mps.{name}"),
            template: format!(
                "{header}[[modes]]\nmode = \"mps\"\n[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nmps = {{ {name} = @ }}\n"
            ),
        });
    }
    out.push(Field {
        name: "tenants[0].replicas".into(),
        template: format!(
            "{header}{modes}[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nreplicas = @\n"
        ),
    });
    for name in ["percentile", "target_ms"] {
        let other = if name == "percentile" {
            "target_ms = 5.0"
        } else {
            "percentile = 99.0"
        };
        out.push(Field {
            name: format!("tenants[0].slo.{name}"),
            template: format!(
                "{header}{modes}[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nslo = {{ {other}, {name} = @ }}\n"
            ),
        });
    }
    for info in workload::registry() {
        for param in info.params {
            if matches!(param.kind, ParamKind::Int(_) | ParamKind::Float(_)) {
                out.push(Field {
                    name: format!("tenants[0].params.{}", param.name),
                    template: format!(
                        "{header}{modes}{}",
                        tenant(info.name, &format!("{} = @", param.name))
                    ),
                });
            }
        }
    }
    out
}

/// Validates `text`; on success, expands the plan and parses every worker's start message
/// and workload parameters as the worker does.
fn check(field: &Field, value: &str) -> Result<(), TestCaseError> {
    let text = field.template.replace('@', value);
    let line = field
        .template
        .lines()
        .position(|l| l.contains('@'))
        .map(|i| i + 1);
    match scenario::parse(Path::new("s.toml"), &text) {
        Err(ScenarioError::Invalid(problems)) => {
            prop_assert!(!problems.problems.is_empty());
            prop_assert!(
                problems
                    .problems
                    .iter()
                    .any(|p| Some(p.line) == line && p.column >= 1),
                "{}: no problem on line {line:?}: {problems}",
                field.name
            );
        }
        Err(other) => prop_assert!(false, "{}: {other}", field.name),
        Ok(scenario) => {
            let plan = Plan::expand(&scenario);
            prop_assert!(!plan.runs.is_empty());
            for config in &plan.configs {
                for instance in &config.tenants {
                    let spec = WorkerSpec {
                        tenant: instance.name.clone(),
                        workload: instance.workload.clone(),
                        params: instance.params.clone(),
                        seed: 1,
                        warmup_s: scenario.run.warmup_s,
                        flush_interval_ms: 100,
                    };
                    prop_assert!(worker::warmup(&spec).is_ok(), "{}", field.name);
                    let info = workload::find(&spec.workload).unwrap();
                    // Torch models allocate their network when built: their parameters
                    // are checked as the worker checks them before building.
                    let heavy = matches!(info.availability, workload::Availability::Available)
                        && (spec.workload.starts_with("train.")
                            || spec.workload.starts_with("infer.")
                            || spec.workload.starts_with("serve."))
                        && spec.workload != "serve.delay";
                    if heavy {
                        prop_assert!(spec.params.check(info.name, info.params).is_ok());
                    } else {
                        // A GPU workload without a GPU says so; what matters is no panic.
                        let _ = workload::build(&spec.workload, &spec.params, spec.seed);
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_numeric_field_answers_extremes_with_a_located_problem_or_a_plan(
        field in proptest::sample::select(fields()),
        value in literal(),
    ) {
        check(&field, &value)?;
    }
}

#[test]
fn every_field_meets_every_edge() {
    let fields = fields();
    // Every run setting, both mode settings, and the registry's numeric parameters.
    assert!(fields.len() > 30, "{} fields", fields.len());
    for field in &fields {
        for value in EDGES {
            check(field, value).unwrap_or_else(|e| panic!("{} = {value}: {e}", field.name));
        }
    }
}

#[test]
fn huge_values_are_refused_with_their_location_and_range() {
    let text = "name = \"n\"\n[run]\nduration_s = 1e308\nwarmup_s = 1e12\nready_timeout_s = inf\n[[modes]]\nmode = \"time-slicing\"\n[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nparams = { step_ms = 1e308 }\n";
    let Err(ScenarioError::Invalid(problems)) = scenario::parse(Path::new("s.toml"), text) else {
        panic!("accepted");
    };
    assert_eq!(
        problems.to_string(),
        "s.toml:3:14: `run.duration_s`: must be a number of seconds above 0 and at most 86400, got 1e308\n\
         s.toml:4:12: `run.warmup_s`: must be a number of seconds from 0 to 86400, got 1000000000000\n\
         s.toml:5:19: `run.ready_timeout_s`: must be a number of seconds above 0 and at most 86400, got inf\n\
         s.toml:11:22: `tenants[0].params.step_ms`: reading parameter `step_ms` of `cpu.synthetic`: must be a number of milliseconds from 0 to 3600000, got 1e308"
    );
}

#[test]
fn run_refuses_a_huge_duration_with_exit_2_and_the_range() {
    let out = gpushare()
        .args(["run", "smoke-cpu", "--dry-run", "--duration", "1e308"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "invalid value '1e308' for '--duration <DURATION>': must be a number of seconds above 0 and at most 86400, got 1e308"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_refuses_a_huge_stop_timeout_instead_of_panicking_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(
        dir.path(),
        "s.toml",
        "name = \"n\"\n[run]\nstop_timeout_s = 1e308\n[[modes]]\nmode = \"time-slicing\"\n[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\n",
    );
    let out = gpushare().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "{}:3:18: `run.stop_timeout_s`: must be a number of seconds above 0 and at most 86400, got 1e308\n1 of 1 file(s) invalid\n",
            path.display()
        )
    );
}
