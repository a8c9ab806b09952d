//! Scenario files: every shipped file validates, every kind of mistake is reported with
//! file:line:column and what is allowed, and sweeps expand as documented.

use std::path::Path;

use gpushare::scenario::{self, Plan, Scenario, ScenarioError};
use gpushare::sharing::{ModeSetting, MpsSetting};
use gpushare::workload::ParamValue;

use crate::common::{gpushare, root, stderr, stdout, write_scenario};

const GOOD: &str = r#"name = "t"
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "a"
workload = "cpu.synthetic"
"#;

fn problems(text: &str) -> String {
    match scenario::parse(Path::new("s.toml"), text) {
        Err(ScenarioError::Invalid(p)) => p.to_string(),
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = root().join(scenario::SHIPPED_DIR);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (s, _) = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!Plan::expand(&s).runs.is_empty());
            n += 1;
        }
    }
    assert!(n >= 1);
    // The embedded copies are the files themselves.
    assert_eq!(n, scenario::SHIPPED.len());
    for (name, text) in scenario::SHIPPED {
        assert_eq!(
            *text,
            std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap()
        );
    }
}

#[test]
fn validate_command_accepts_shipped_files_and_rejects_a_broken_one_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_scenario(
        dir.path(),
        "bad.toml",
        &GOOD.replace("cpu.synthetic", "cpu.synth"),
    );
    let out = gpushare()
        .arg("validate")
        .arg(root().join("scenarios/smoke-cpu.toml"))
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("smoke-cpu.toml: ok, scenario `smoke-cpu`, 6 run(s)"));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:6:12: `tenants[0].workload`: unknown workload \"cpu.synth\" (did you mean \"cpu.synthetic\"?); known: ",
            bad.display()
        )),
        "{err}"
    );
    assert!(err.contains("1 of 2 file(s) invalid"));
}

#[test]
fn toml_syntax_errors_are_located() {
    assert_eq!(
        problems("name = \"t\"\nmodes = [\n"),
        "s.toml:2:10: unclosed array, expected `]`"
    );
}

#[test]
fn unknown_fields_are_rejected_with_what_is_allowed() {
    let p = problems(&GOOD.replace("[[modes]]", "duraton_s = 3\n[[modes]]"));
    assert!(
        p.starts_with("s.toml:2:1: unknown field `duraton_s`, expected one of"),
        "{p}"
    );
}

#[test]
fn missing_required_fields_are_named() {
    let p = problems("name = \"t\"\n[[modes]]\nmode = \"exclusive\"\n");
    assert_eq!(p, "s.toml:1:1: missing field `tenants`");
}

#[test]
fn every_value_problem_is_reported_at_once() {
    let text = r#"name = "t"
[run]
duration_s = -1.0
repetitions = 0
[[modes]]
mode = "mps"
active_thread_percentage = [50, 150]
[[modes]]
mode = "time-slicing"
profile = "1g.18gb"
[[modes]]
mode = "mig"
[[tenants]]
name = "a"
workload = "cpu.synthetic"
replicas = 0
params = { step_ms = "fast", nope = 1, fault = "explode" }
slo = { percentile = 100.0, target_ms = 0 }
[[tenants]]
name = "a"
workload = "cpu.synthetic"
"#;
    assert_eq!(
        problems(text),
        [
            "s.toml:3:14: `run.duration_s`: must be a number of seconds above 0 and at most 86400, got -1",
            "s.toml:4:15: `run.repetitions`: must be an integer from 1 to 1000, got 0",
            "s.toml:7:28: `modes[0].active_thread_percentage`: must be an integer from 1 to 100 percent (or a list of them), got 150",
            "s.toml:10:11: `modes[1].profile`: applies only to mode \"mig\"",
            "s.toml:12:8: `modes[2].profile`: mode \"mig\" needs a profile, for example profile = \"3g.71gb\"",
            "s.toml:16:12: `tenants[0].replicas`: must be an integer from 1 to 64, got 0",
            "s.toml:17:22: `tenants[0].params.step_ms`: reading parameter `step_ms` of `cpu.synthetic`: expected a number, got a string (\"fast\")",
            "s.toml:17:30: `tenants[0].params.nope`: reading parameter `nope` of `cpu.synthetic`: unknown parameter (allowed: step_ms, jitter_ms, items_per_step, setup_ms, fault, fault_after_steps)",
            "s.toml:17:48: `tenants[0].params.fault`: reading parameter `fault` of `cpu.synthetic`: \"explode\" is not one of none, crash, hang, exit, error",
            "s.toml:18:22: `tenants[0].slo.percentile`: must be above 0 and below 100, got 100",
            "s.toml:18:41: `tenants[0].slo.target_ms`: must be a number of milliseconds above 0 and at most 3600000, got 0",
            "s.toml:20:8: `tenants[1].name`: tenant name \"a\" is used twice",
        ]
        .join("\n")
    );
}

#[test]
fn sweeps_expand_to_the_product_of_their_axes_with_exclusive_first() {
    let text = r#"name = "sweep"
[run]
repetitions = 2
[[modes]]
mode = "mps"
active_thread_percentage = [25, 50]
[[tenants]]
name = "a"
workload = "cpu.synthetic"
params = { step_ms = [1.0, 2.0], items_per_step = 3 }
[[tenants]]
name = "b"
workload = "cpu.synthetic"
replicas = 2
params = { jitter_ms = [0.0, 0.5, 1.0] }
"#;
    let s = scenario::parse(Path::new("s.toml"), text).unwrap();
    assert_eq!(
        s.modes,
        vec![
            ModeSetting::Exclusive,
            ModeSetting::Mps(MpsSetting {
                active_thread_percentage: Some(25),
                pinned_memory_limit_mib: None
            }),
            ModeSetting::Mps(MpsSetting {
                active_thread_percentage: Some(50),
                pinned_memory_limit_mib: None
            }),
        ]
    );
    let plan = Plan::expand(&s);
    // 2 x 3 configurations, 3 modes, 2 repetitions.
    assert_eq!(plan.configs.len(), 6);
    assert_eq!(plan.runs.len(), 36);
    assert_eq!(plan.configs[4].label, "a.step_ms=2 b.jitter_ms=0.5");
    let c4 = &plan.configs[4];
    let names: Vec<&str> = c4.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b#0", "b#1"]);
    assert_eq!(c4.tenants[0].params.0["items_per_step"], ParamValue::Int(3));
    assert_eq!(c4.tenants[2].params.0["jitter_ms"], ParamValue::Float(0.5));
    let ids: Vec<&str> = plan.runs.iter().take(4).map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "exclusive/c0/r0",
            "mps(atp=25)/c0/r0",
            "mps(atp=50)/c0/r0",
            "exclusive/c1/r0"
        ]
    );
    assert_eq!(plan.runs[18].id, "exclusive/c0/r1");
}

#[test]
fn seeds_differ_per_replica_and_repetition_and_never_change() {
    let s = scenario::parse(
        Path::new("s.toml"),
        &GOOD.replace(
            "workload = \"cpu.synthetic\"",
            "workload = \"cpu.synthetic\"\nreplicas = 2",
        ),
    )
    .unwrap();
    let plan = Plan::expand(&s);
    let t = &plan.configs[0].tenants;
    let seeds = [
        Plan::seed(42, &t[0], 0),
        Plan::seed(42, &t[1], 0),
        Plan::seed(42, &t[0], 1),
    ];
    assert!(seeds[0] != seeds[1] && seeds[0] != seeds[2] && seeds[1] != seeds[2]);
    assert_eq!(seeds[0], Plan::seed(42, &t[0], 0));
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = gpushare()
        .current_dir(dir.path())
        .args(["run", "smoke-cpu", "--dry-run", "--repetitions", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "scenario `smoke-cpu`: 2 run(s) = 1 configuration(s) x 2 mode(s) x 1 repetition(s)"
        ),
        "{text}"
    );
    assert!(
        text.contains("  exclusive/c0/r0\n  time-slicing/c0/r0\n"),
        "{text}"
    );
    assert!(!dir.path().join("results").exists());
}

#[test]
fn a_duration_shorter_than_an_explicit_minimum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(
        dir.path(),
        "s.toml",
        &GOOD.replace("[[modes]]", "[run]\nmin_duration_s = 5.0\n[[modes]]"),
    );
    let out = gpushare()
        .args(["run", "--dry-run", "--duration", "2s"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: planning scenario `t`: --duration 2 s is shorter than the scenario's run.min_duration_s (5 s): lengthen it or lower min_duration_s"
    );
}

#[test]
fn mig_probes_plans_without_a_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let out = gpushare()
        .current_dir(dir.path())
        .args(["run", "mig-probes", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "scenario `mig-probes`: 6 run(s) = 1 configuration(s) x 2 mode(s) x 3 repetition(s)"
        ),
        "{text}"
    );
    assert!(
        text.contains("  exclusive/c0/r0\n  mig(2g.35gb)/c0/r0\n"),
        "{text}"
    );
}

/// A shipped scenario comparing exclusive, time-slicing, MPS and MPS at 50% SMs, three
/// repetitions each: its plan, checked.
fn four_mode_study(name: &str) -> (Scenario, Plan) {
    let (s, _, _) = scenario::resolve(Path::new(name)).unwrap();
    let plan = Plan::expand(&s);
    let ids: Vec<&str> = plan.runs.iter().take(4).map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "exclusive/c0/r0",
            "time-slicing/c0/r0",
            "mps/c0/r0",
            "mps(atp=50)/c0/r0"
        ]
    );
    assert_eq!(plan.runs.len(), 12);
    (s, plan)
}

#[test]
fn probes_mix_compares_four_modes_with_the_latency_slo_stated() {
    let (s, plan) = four_mode_study("probes-mix");
    // 1 kHz for the window must leave room above the 1,000 samples a P99 needs.
    let latency = plan.configs[0]
        .tenants
        .iter()
        .find(|t| t.name == "latency")
        .unwrap();
    let slo = latency.slo.unwrap();
    let interval_s = latency.params.f64_or("interval_us", f64::NAN) / 1e6;
    let needed = (10.0 / (1.0 - slo.percentile / 100.0)).round();
    assert!(s.run.duration_s / interval_s >= 4.0 * needed);
}

#[test]
fn resnet50_train_bert_serve_states_its_p99_in_every_mode() {
    let (s, plan) = four_mode_study("resnet50-train-bert-serve");
    let tenants = &plan.configs[0].tenants;
    let serve = tenants
        .iter()
        .find(|t| t.workload == "serve.bert-base")
        .unwrap();
    assert!(tenants.iter().any(|t| t.workload == "train.resnet50"));
    let slo = serve.slo.unwrap();
    assert_eq!((slo.percentile, slo.target_ms), (99.0, 50.0));
    // The window must hold well over the 1,000 requests a P99 needs.
    let needed = (10.0 / (1.0 - slo.percentile / 100.0)).round();
    let requests = s.run.duration_s * serve.params.f64_or("rate", f64::NAN);
    assert!(requests >= 4.0 * needed, "{requests} requests per window");
    // Its workloads are known with or without the torch feature; `validate` accepts it.
    let out = gpushare()
        .arg("validate")
        .arg(root().join("scenarios/resnet50-train-bert-serve.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok, scenario `resnet50-train-bert-serve`, 12 run(s)"));
}

#[test]
fn without_a_scenario_run_names_the_default_for_this_host_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = gpushare()
        .current_dir(dir.path())
        .args(["run", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    // Which default depends on whether this host has a GPU; either way it says why and
    // plans that scenario.
    let name = if err.contains("running the shipped `probes-mix` (this host has GPU 0 (") {
        "probes-mix"
    } else {
        assert!(
            err.contains("no scenario given: running the shipped `smoke-cpu` (")
                && err.contains("it runs on any host)"),
            "{err}"
        );
        "smoke-cpu"
    };
    assert!(
        stdout(&out).starts_with(&format!("scenario `{name}`: ")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn format_problems_in_several_tables_are_all_reported() {
    let text = r#"name = "t"
colour = "blue"
[run]
duraton_s = 3
[[modes]]
mode = 7
[[tenants]]
name = "a"
workload = "cpu.synthetic"
params = "two"
[[tenants]]
name = "b"
workload = "cpu.synthetic"
parms = { step_ms = 1.0 }
"#;
    let p = problems(text);
    let lines: Vec<&str> = p.lines().collect();
    assert_eq!(lines.len(), 5, "{p}");
    assert_eq!(
        lines[0],
        "s.toml:2:1: unknown field `colour`, expected one of `name`, `description`, `run`, `modes`, `tenants`, `container`"
    );
    assert!(
        lines[1].starts_with(
            "s.toml:4:1: unknown field `duraton_s`, expected one of `isolation`, `warmup_s`"
        ),
        "{p}"
    );
    assert_eq!(
        lines[2],
        "s.toml:6:8: invalid type: integer `7`, expected a string"
    );
    assert_eq!(
        lines[3],
        "s.toml:10:10: invalid type: string \"two\", expected a map"
    );
    assert!(
        lines[4].starts_with("s.toml:14:1: unknown field `parms`, expected one of `name`"),
        "{p}"
    );
}

/// Three sweep axes of 100 values: 6,000,000 runs.
fn huge_sweep() -> String {
    let list = (1..=100)
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "name = \"huge\"\n[[modes]]\nmode = \"time-slicing\"\n[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nparams = {{ step_ms = [{list}], jitter_ms = [{list}], setup_ms = [{list}] }}\n"
    )
}

#[test]
fn a_plan_beyond_the_limits_is_refused_at_once_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(dir.path(), "huge.toml", &huge_sweep());
    let out = gpushare().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "planning scenario `huge`: 6000000 runs is more than the limit of 10000, about 868 days is more than the limit of 24 h (6000000 run(s) = 1000000 configuration(s) x 2 mode(s) x 3 repetition(s), 1 worker(s) per run, about 868 days (exclusive baseline, tenants one after another: 434 days)): shrink the sweep, or add --force to accept it\n1 of 1 file(s) invalid\n"
    );
    let started = std::time::Instant::now();
    let forced = gpushare()
        .args(["validate", "--force"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(stdout(&forced).contains(": ok, scenario `huge`, 6000000 run(s) = "));
    // Counting, not expanding: the old validate took 7 s and 2.1 GB for this file in a
    // release build (far longer in a debug one); the bound leaves room for a loaded
    // machine and a torch build's start-up.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let run = gpushare()
        .args(["run", "--dry-run"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).starts_with(
        "error: planning scenario `huge`: 6000000 runs is more than the limit of 10000"
    ));
}

#[test]
fn ten_thousand_tenants_are_refused_with_the_length_of_the_baseline() {
    let mut text =
        "name = \"crowd\"\n[run]\nrepetitions = 1\nduration_s = 2.0\nwarmup_s = 0.5\n[[modes]]\nmode = \"time-slicing\"\n"
            .to_string();
    for idx in 0..10_000 {
        text.push_str(&format!(
            "[[tenants]]\nname = \"t{idx}\"\nworkload = \"cpu.synthetic\"\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(dir.path(), "crowd.toml", &text);
    let out = gpushare().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "planning scenario `crowd`: 10000 workers per run is more than the limit of 1024 (2 run(s) = 1 configuration(s) x 2 mode(s) x 1 repetition(s), 10000 worker(s) per run, about 8.3 h (exclusive baseline, tenants one after another: 8.3 h)): shrink the sweep, or add --force to accept it\n1 of 1 file(s) invalid\n"
    );
}

#[test]
fn validate_takes_shipped_names_as_run_does() {
    let out = gpushare().args(["validate", "smoke-cpu"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "scenarios/smoke-cpu.toml: ok, scenario `smoke-cpu`, 6 run(s) = 1 configuration(s) x 2 mode(s) x 3 repetition(s), 2 worker(s) per run, about 24 s (exclusive baseline, tenants one after another: 16 s)\n"
    );
}

#[test]
fn unreadable_scenarios_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"name = \"x\"\n\xff\xfe\x00").unwrap();
    let missing = dir.path().join("missing.toml");
    let out = gpushare()
        .arg("validate")
        .arg("smoke-cpi")
        .arg(dir.path())
        .arg(&binary)
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let shipped = scenario::SHIPPED
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        stderr(&out),
        format!(
            "finding scenario smoke-cpi: no such file and no shipped scenario of that name (did you mean `smoke-cpu`?); shipped: {shipped}\n\
             reading scenario {}: Is a directory (os error 21)\n\
             reading scenario {}: it is not a text file (no UTF-8 at byte 11); a scenario is a TOML file\n\
             reading scenario {}: No such file or directory (os error 2)\n\
             4 of 4 file(s) invalid\n",
            dir.path().display(),
            binary.display(),
            missing.display()
        )
    );
}

#[test]
fn an_unknown_mig_profile_is_refused_at_validation() {
    let text = "name = \"m\"\n[[modes]]\nmode = \"mig\"\nprofile = \"9g.999gb\"\n[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nmig = { profile = \"3g.70gb\" }\n";
    let p = problems(text);
    let lines: Vec<&str> = p.lines().collect();
    assert_eq!(lines.len(), 2, "{p}");
    assert!(
        lines[0].starts_with(
            "s.toml:4:11: `modes[0].profile`: \"9g.999gb\" is not a MIG profile of any GPU gpushare knows; known: A30 24GB: 1g.6gb, 2g.12gb, 4g.24gb; "
        ),
        "{p}"
    );
    assert!(
        lines[1].starts_with(
            "s.toml:8:19: `tenants[0].mig.profile`: \"3g.70gb\" is not a MIG profile of any GPU gpushare knows (did you mean \"3g.71gb\"?); known: "
        ),
        "{p}"
    );
}

/// A build without the torch feature refuses a torch scenario before its first run, with
/// the fix; `validate` stays host-independent unless `--host`.
#[cfg(not(feature = "torch"))]
#[test]
fn run_refuses_what_this_build_cannot_run_before_the_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(
        dir.path(),
        "torch.toml",
        "name = \"t\"\n[[modes]]\nmode = \"time-slicing\"\n[[tenants]]\nname = \"r\"\nworkload = \"train.resnet50\"\nparams = { device = \"cpu\", tiny = true }\n",
    );
    let study = dir.path().join("study");
    let out = gpushare()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&study)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let fix = "built without the `torch` feature: build with `scripts/with-libtorch.sh cargo build --release --features torch` (README, \"Torch workloads\")";
    assert_eq!(
        stderr(&out),
        format!(
            "error: checking this host for scenario `t`: tenant `r` (train.resnet50) cannot run with this build: {fix}\n"
        )
    );
    assert!(!study.exists(), "nothing ran, nothing was written");
    let plain = gpushare().arg("validate").arg(&path).output().unwrap();
    assert_eq!(plain.status.code(), Some(0));
    let here = gpushare()
        .args(["validate", "--host"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(here.status.code(), Some(2));
    assert_eq!(
        stderr(&here),
        format!(
            "checking this host for scenario `t`: tenant `r` (train.resnet50) cannot run with this build: {fix}\n1 of 1 file(s) invalid\n"
        )
    );
}

#[test]
fn a_model_parameter_that_does_not_apply_is_refused() {
    let p = problems(
        "name = \"t\"\n[[modes]]\nmode = \"time-slicing\"\n[[tenants]]\nname = \"r\"\nworkload = \"train.resnet50\"\nparams = { seq_len = 128 }\n",
    );
    assert_eq!(
        p,
        "s.toml:7:12: `tenants[0].params.seq_len`: reading parameter `seq_len` of `train.resnet50`: unknown parameter (allowed: batch_size, image_size, precision, channels_last, optimizer, device, tiny)"
    );
}
