//! Bad command-line values exit 2 in every subcommand, with a message that says what to
//! write instead.

use crate::common::{gpushare, stderr, stdout};

fn run(args: &[&str]) -> std::process::Output {
    gpushare().args(args).output().unwrap()
}

#[test]
fn a_negative_number_gets_gpushare_advice_not_clap_tip() {
    let out = run(&["run", "--repetitions", "-3"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: --repetitions -3: no gpushare option takes a negative number (every count, rate and duration is positive); `gpushare run --help` gives each option's range\n"
    );
    let out = run(&["load", "http://127.0.0.1:9/", "--rate", "-5"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: --rate -5: no gpushare option takes a negative number (every count, rate and duration is positive); `gpushare load --help` gives each option's range\n"
    );
}

#[test]
fn bad_values_exit_2_in_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("run.json");
    std::fs::write(&empty, "{}").unwrap();
    let missing = dir.path().join("nothing");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["run".into(), "--repetitions".into(), "0".into()],
            "error: invalid value '0' for '--repetitions <REPETITIONS>': 0 is not in 1..=1000".into(),
        ),
        (
            vec!["run".into(), "--duration".into(), "1e12".into()],
            "error: invalid value '1e12' for '--duration <DURATION>': must be a number of seconds above 0 and at most 86400, got 1000000000000".into(),
        ),
        (
            vec!["run".into(), "--monitor-interval-ms".into(), u64::MAX.to_string()],
            format!("error: invalid value '{0}' for '--monitor-interval-ms <MONITOR_INTERVAL_MS>': {0} is not in 0..=60000", u64::MAX),
        ),
        (
            vec!["report".into(), "--format".into(), "bogus".into(), ".".into()],
            "error: invalid value 'bogus' for '--format <FORMAT>'".into(),
        ),
        (
            vec!["report".into(), missing.display().to_string()],
            format!(
                "error: reading {}: No such file or directory (os error 2)",
                missing.display()
            ),
        ),
        (
            vec!["report".into(), empty.display().to_string()],
            format!(
                "error: reading {}: not a gpushare study (no `schema_version`; a study's run.json is written by `gpushare run`)",
                empty.display()
            ),
        ),
        (
            vec!["load".into(), "not-a-url".into()],
            "error: parsing the URL \"not-a-url\"".into(),
        ),
        (
            vec!["run".into(), "smoke-cpu".into(), "--shard".into(), "2/2".into()],
            "error: invalid value '2/2' for '--shard <I/N>': shard index 2 is out of range for 2 shard(s): use 0 to 1\n".into(),
        ),
        (
            vec!["run".into(), "smoke-cpu".into(), "--shard".into(), "0/0".into()],
            "error: invalid value '0/0' for '--shard <I/N>': 0 shards: a sweep needs at least 1 shard\n".into(),
        ),
        (
            vec!["run".into(), "smoke-cpu".into(), "--shard".into(), "1/2".into(), "--dry-run".into()],
            "error: sharding scenario `smoke-cpu`: 2 shards but the sweep has 1 configuration(s), so a shard would run nothing: use at most 1 shard(s), or run the whole scenario on every node instead (repetitions across nodes: `k8s render --per-node whole`, or `run` without --shard)\n".into(),
        ),
        (
            vec!["k8s".into(), "render".into(), "scaling-serve".into(), "--nodes".into(), "6".into(), "--per-node".into(), "shard".into()],
            "error: sharding scenario `scaling-serve`: 6 shards but the sweep has 5 configuration(s)".into(),
        ),
        (
            vec!["serve".into(), "--max-batches-in-flight".into(), "3".into()],
            "error: invalid value '3' for '--max-batches-in-flight <MAX_BATCHES_IN_FLIGHT>': 3 is not in 1..=2".into(),
        ),
        (vec!["validate".into()], "error: the following required arguments were not provided".into()),
        (vec!["doctor".into(), "--bogus".into()], "error: unexpected argument '--bogus' found".into()),
    ];
    for (args, start) in cases {
        let out = gpushare().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with(&start),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        format!("gpushare {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["report", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("4 it is incomplete"),
        "{}",
        stdout(&out)
    );
    let out = run(&["--help"]);
    assert!(stdout(&out).contains("4 `report` of an incomplete study"));
}

#[test]
fn list_keeps_names_apart_and_shows_only_parameters_that_apply() {
    let out = run(&["list", "--params"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    // The longest shipped scenario name still has two spaces before its description.
    assert!(
        text.contains("  resnet50-train-bert-serve  serve.bert-base at 200 req/s"),
        "{text}"
    );
    assert!(text.contains("  infer.batch.gpt2-small  GPU, counts sequences  "));
    assert!(text.contains("  cpu.synthetic           CPU, counts items      "));
    let block = |name: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.starts_with(&format!("  {name} ")))
            .skip(1)
            .take_while(|l| l.starts_with("      "))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        block("train.resnet50"),
        [
            "batch_size",
            "image_size",
            "precision",
            "channels_last",
            "optimizer",
            "device",
            "tiny"
        ]
    );
    assert_eq!(
        block("infer.batch.bert-base"),
        [
            "batch_size",
            "seq_len",
            "precision",
            "device",
            "tiny",
            "cuda_graph"
        ]
    );
}
