//! From the file as written ([`ScenarioSpec`]) to its meaning ([`Scenario`]), collecting
//! every problem with its location so one `gpushare validate` shows them all.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::error::{locate, Problem, Problems};
use super::model::{RunSettings, Scenario, Slo, Tenant};
use super::spec::{ModeSpec, RunSpec, ScenarioSpec, TenantSpec};
use crate::sharing::{MigSetting, ModeSetting, MpsSetting, TenantSharing};
use crate::workload::{self, ParamValue, Params};

/// The most replicas one tenant may have: each is a process with its own GPU context.
pub const MAX_REPLICAS: i64 = 64;

/// Parses and validates scenario text. `path` is only used in messages.
pub fn parse(path: &Path, source: &str) -> Result<Scenario, Problems> {
    let mut checker = Checker {
        source,
        problems: Vec::new(),
    };
    let spec: ScenarioSpec = match toml::from_str(source) {
        Ok(spec) => spec,
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            checker.problem(span, "", err.message().trim_end().to_string());
            return Err(checker.finish(path));
        }
    };
    let scenario = checker.scenario(spec);
    if checker.problems.is_empty() {
        Ok(scenario)
    } else {
        Err(checker.finish(path))
    }
}

struct Checker<'a> {
    source: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(
        &mut self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = locate(self.source, span.start);
        self.problems.push(Problem {
            line,
            column,
            field: field.into(),
            message: message.into(),
        });
    }

    fn finish(mut self, path: &Path) -> Problems {
        self.problems.sort_by_key(|p| (p.line, p.column));
        Problems {
            path: path.to_path_buf(),
            problems: self.problems,
        }
    }

    fn scenario(&mut self, spec: ScenarioSpec) -> Scenario {
        let name = spec.name.get_ref().trim().to_string();
        if !is_identifier(&name) {
            self.problem(
                spec.name.span(),
                "name",
                format!("{name:?} is not a valid name: use letters, digits, '-', '_' and '.'"),
            );
        }
        let run = match &spec.run {
            Some(run) => self.run(run.get_ref()),
            None => self.run(&RunSpec::default()),
        };
        let modes = self.modes(&spec.modes);
        let tenants = self.tenants(&spec.tenants);
        Scenario {
            name,
            description: spec.description.trim().to_string(),
            run,
            modes,
            tenants,
        }
    }

    fn run(&mut self, spec: &RunSpec) -> RunSettings {
        let duration_s = self.positive(
            &spec.duration_s,
            "run.duration_s",
            RunSettings::DEFAULT_DURATION_S,
        );
        let warmup_s = self.non_negative(
            &spec.warmup_s,
            "run.warmup_s",
            RunSettings::DEFAULT_WARMUP_S,
        );
        let repetitions = self.int_in(
            &spec.repetitions,
            "run.repetitions",
            1..=1000,
            i64::from(RunSettings::DEFAULT_REPETITIONS),
        ) as u32;
        let min_samples = self.int_in(
            &spec.min_samples,
            "run.min_samples",
            1..=i64::MAX,
            RunSettings::DEFAULT_MIN_SAMPLES as i64,
        ) as u64;
        let min_duration_s = spec.min_duration_s.as_ref().map(|v| {
            let value = *v.get_ref();
            if !(value >= 0.0 && value <= duration_s) {
                self.problem(
                    v.span(),
                    "run.min_duration_s",
                    format!("must be between 0 and run.duration_s ({duration_s}), got {value}"),
                );
            }
            value
        });
        let exclusive_replicas = spec.exclusive_replicas.as_ref().map(|_| {
            self.int_in(
                &spec.exclusive_replicas,
                "run.exclusive_replicas",
                1..=MAX_REPLICAS,
                1,
            ) as u32
        });
        let seed = self.int_in(
            &spec.seed,
            "run.seed",
            0..=i64::MAX,
            RunSettings::DEFAULT_SEED as i64,
        ) as u64;
        let ready_timeout_s = self.positive(
            &spec.ready_timeout_s,
            "run.ready_timeout_s",
            RunSettings::DEFAULT_READY_TIMEOUT_S,
        );
        let stop_timeout_s = self.positive(
            &spec.stop_timeout_s,
            "run.stop_timeout_s",
            RunSettings::DEFAULT_STOP_TIMEOUT_S,
        );
        RunSettings {
            warmup_s,
            duration_s,
            repetitions,
            min_samples,
            min_duration_s,
            exclusive_replicas,
            seed,
            ready_timeout_s,
            stop_timeout_s,
        }
    }

    fn positive(&mut self, value: &Option<Spanned<f64>>, field: &str, default: f64) -> f64 {
        let Some(v) = value else { return default };
        let x = *v.get_ref();
        if !(x.is_finite() && x > 0.0) {
            self.problem(
                v.span(),
                field,
                format!("must be a positive number of seconds, got {x}"),
            );
        }
        x
    }

    fn non_negative(&mut self, value: &Option<Spanned<f64>>, field: &str, default: f64) -> f64 {
        let Some(v) = value else { return default };
        let x = *v.get_ref();
        if !(x.is_finite() && x >= 0.0) {
            self.problem(
                v.span(),
                field,
                format!("must be zero or a positive number of seconds, got {x}"),
            );
        }
        x
    }

    fn int_in(
        &mut self,
        value: &Option<Spanned<i64>>,
        field: &str,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> i64 {
        let Some(v) = value else { return default };
        let x = *v.get_ref();
        if !range.contains(&x) {
            let allowed = if *range.end() == i64::MAX {
                format!("at least {}", range.start())
            } else {
                format!("between {} and {}", range.start(), range.end())
            };
            self.problem(v.span(), field, format!("must be {allowed}, got {x}"));
            return default;
        }
        x
    }

    fn modes(&mut self, specs: &Spanned<Vec<Spanned<ModeSpec>>>) -> Vec<ModeSetting> {
        if specs.get_ref().is_empty() {
            self.problem(
                specs.span(),
                "modes",
                "list at least one sharing mode: exclusive, time-slicing, mps or mig",
            );
        }
        let mut modes = vec![];
        for (idx, spec) in specs.get_ref().iter().enumerate() {
            for setting in self.mode(idx, spec.get_ref()) {
                if modes.contains(&setting) {
                    self.problem(
                        spec.span(),
                        format!("modes[{idx}]"),
                        format!("`{setting}` is listed twice"),
                    );
                } else {
                    modes.push(setting);
                }
            }
        }
        // Normalized progress needs each tenant's isolated throughput, so the baseline is
        // always measured, first.
        if !modes.contains(&ModeSetting::Exclusive) {
            modes.insert(0, ModeSetting::Exclusive);
        }
        modes
    }

    fn mode(&mut self, idx: usize, spec: &ModeSpec) -> Vec<ModeSetting> {
        let field = |name: &str| format!("modes[{idx}].{name}");
        let name = spec.mode.get_ref().as_str();
        let params = [
            (
                "active_thread_percentage",
                &spec.active_thread_percentage,
                "mps",
            ),
            (
                "pinned_memory_limit_mib",
                &spec.pinned_memory_limit_mib,
                "mps",
            ),
            ("profile", &spec.profile, "mig"),
        ];
        for (param, value, owner) in params {
            if let Some(v) = value {
                if name != owner {
                    self.problem(
                        v.span(),
                        field(param),
                        format!("applies only to mode \"{owner}\""),
                    );
                }
            }
        }
        match name {
            "exclusive" => vec![ModeSetting::Exclusive],
            "time-slicing" => vec![ModeSetting::TimeSlicing],
            "mps" => {
                let atps = self.int_axis(
                    &spec.active_thread_percentage,
                    &field("active_thread_percentage"),
                    1,
                    100,
                );
                let mems = self.int_axis(
                    &spec.pinned_memory_limit_mib,
                    &field("pinned_memory_limit_mib"),
                    1,
                    i64::MAX,
                );
                let mut settings = vec![];
                for atp in &atps {
                    for mem in &mems {
                        settings.push(ModeSetting::Mps(MpsSetting {
                            active_thread_percentage: atp.map(|v| v as u32),
                            pinned_memory_limit_mib: mem.map(|v| v as u64),
                        }));
                    }
                }
                settings
            }
            "mig" => match &spec.profile {
                None => {
                    self.problem(
                        spec.mode.span(),
                        field("profile"),
                        "mode \"mig\" needs a profile, for example profile = \"3g.71gb\"",
                    );
                    vec![]
                }
                Some(profile) => self
                    .string_axis(profile, &field("profile"))
                    .into_iter()
                    .map(|profile| ModeSetting::Mig(MigSetting { profile }))
                    .collect(),
            },
            other => {
                self.problem(
                    spec.mode.span(),
                    field("mode"),
                    format!("unknown mode {other:?}: use exclusive, time-slicing, mps or mig"),
                );
                vec![]
            }
        }
    }

    /// An optional integer parameter that may be a sweep axis; `[None]` when absent.
    fn int_axis(
        &mut self,
        value: &Option<Spanned<toml::Value>>,
        field: &str,
        min: i64,
        max: i64,
    ) -> Vec<Option<i64>> {
        let Some(v) = value else { return vec![None] };
        let mut out = vec![];
        for item in self.axis_items(v, field) {
            match item {
                toml::Value::Integer(x) if (min..=max).contains(x) => out.push(Some(*x)),
                other => {
                    let allowed = if max == i64::MAX {
                        format!("an integer of at least {min}")
                    } else {
                        format!("an integer between {min} and {max}")
                    };
                    self.problem(
                        v.span(),
                        field,
                        format!("must be {allowed} (or a list of them), got {other}"),
                    );
                }
            }
        }
        out
    }

    fn string_axis(&mut self, value: &Spanned<toml::Value>, field: &str) -> Vec<String> {
        let mut out = vec![];
        for item in self.axis_items(value, field) {
            match item {
                toml::Value::String(s) if !s.is_empty() => out.push(s.clone()),
                other => self.problem(
                    value.span(),
                    field,
                    format!("must be a non-empty string (or a list of them), got {other}"),
                ),
            }
        }
        out
    }

    /// A value's sweep points: the items of a list, or the value itself.
    fn axis_items<'v>(
        &mut self,
        value: &'v Spanned<toml::Value>,
        field: &str,
    ) -> Vec<&'v toml::Value> {
        match value.get_ref() {
            toml::Value::Array(items) if items.is_empty() => {
                self.problem(
                    value.span(),
                    field,
                    "an empty list sweeps nothing: give at least one value",
                );
                vec![]
            }
            toml::Value::Array(items) => items.iter().collect(),
            scalar => vec![scalar],
        }
    }

    fn tenants(&mut self, specs: &Spanned<Vec<Spanned<TenantSpec>>>) -> Vec<Tenant> {
        if specs.get_ref().is_empty() {
            self.problem(specs.span(), "tenants", "list at least one tenant");
        }
        let mut tenants: Vec<Tenant> = vec![];
        for (idx, spec) in specs.get_ref().iter().enumerate() {
            let tenant = self.tenant(idx, spec.get_ref());
            if tenants.iter().any(|t| t.name == tenant.name) {
                self.problem(
                    spec.get_ref().name.span(),
                    format!("tenants[{idx}].name"),
                    format!("tenant name {:?} is used twice", tenant.name),
                );
            }
            tenants.push(tenant);
        }
        tenants
    }

    fn tenant(&mut self, idx: usize, spec: &TenantSpec) -> Tenant {
        let field = |name: &str| format!("tenants[{idx}].{name}");
        let name = spec.name.get_ref().trim().to_string();
        if !is_identifier(&name) {
            self.problem(
                spec.name.span(),
                field("name"),
                format!("{name:?} is not a valid name: use letters, digits, '-', '_' and '.'"),
            );
        }
        let workload_name = spec.workload.get_ref().as_str();
        let info = match workload::find(workload_name) {
            Ok(info) => Some(info),
            Err(_) => {
                let known: Vec<&str> = workload::registry().iter().map(|w| w.name).collect();
                // The closest name, when it is close: a typo rather than another workload.
                let suggestion = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(k, workload_name), k))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, k)| format!(" (did you mean {k:?}?)"))
                    .unwrap_or_default();
                self.problem(
                    spec.workload.span(),
                    field("workload"),
                    format!(
                        "unknown workload {workload_name:?}{suggestion}; known: {}",
                        known.join(", ")
                    ),
                );
                None
            }
        };
        let replicas_axis = self.replicas(&spec.replicas, &field("replicas"));
        let replicas = replicas_axis.first().copied().unwrap_or(1);
        let replicas_sweep = if replicas_axis.len() > 1 {
            replicas_axis
        } else {
            vec![]
        };
        let mut params = BTreeMap::new();
        for (key, value) in &spec.params {
            let param_field = field(&format!("params.{}", key.get_ref()));
            let mut values = vec![];
            for item in self.axis_items(value, &param_field) {
                match to_param(item) {
                    Some(v) => values.push(v),
                    None => self.problem(
                        value.span(),
                        &param_field,
                        format!(
                            "must be a string, number or boolean (or a list of them), got {item}"
                        ),
                    ),
                }
            }
            if let Some(info) = info {
                for v in &values {
                    let single = Params(BTreeMap::from([(key.get_ref().clone(), v.clone())]));
                    if let Err(err) = single.check(info.name, info.params) {
                        let span = if matches!(err, workload::WorkloadError::UnknownParam { .. }) {
                            key.span()
                        } else {
                            value.span()
                        };
                        self.problem(span, &param_field, err.to_string());
                    }
                }
            }
            params.insert(key.get_ref().clone(), values);
        }
        let slo = spec.slo.as_ref().map(|slo| {
            let slo_spec = slo.get_ref();
            let percentile = slo_spec.percentile.as_ref().map_or(99.0, |p| {
                let v = *p.get_ref();
                if !(v > 0.0 && v < 100.0) {
                    self.problem(
                        p.span(),
                        field("slo.percentile"),
                        format!("must be above 0 and below 100, got {v}"),
                    );
                }
                v
            });
            let target_ms = *slo_spec.target_ms.get_ref();
            if !(target_ms.is_finite() && target_ms > 0.0) {
                self.problem(
                    slo_spec.target_ms.span(),
                    field("slo.target_ms"),
                    format!("must be a positive number of milliseconds, got {target_ms}"),
                );
            }
            Slo {
                percentile,
                target_ms,
            }
        });
        let mut sharing = TenantSharing::default();
        if let Some(mps) = &spec.mps {
            let mps = mps.get_ref();
            sharing.mps_active_thread_percentage =
                mps.active_thread_percentage.as_ref().map(|_| {
                    self.int_in(
                        &mps.active_thread_percentage,
                        &field("mps.active_thread_percentage"),
                        1..=100,
                        100,
                    ) as u32
                });
            sharing.mps_pinned_memory_limit_mib = mps.pinned_memory_limit_mib.as_ref().map(|_| {
                self.int_in(
                    &mps.pinned_memory_limit_mib,
                    &field("mps.pinned_memory_limit_mib"),
                    1..=i64::MAX,
                    1,
                ) as u64
            });
        }
        if let Some(mig) = &spec.mig {
            let profile = mig.get_ref().profile.get_ref().trim().to_string();
            if profile.is_empty() {
                self.problem(
                    mig.get_ref().profile.span(),
                    field("mig.profile"),
                    "must name a MIG profile, for example \"1g.18gb\"",
                );
            }
            sharing.mig_profile = Some(profile);
        }
        Tenant {
            name,
            workload: workload_name.to_string(),
            replicas,
            replicas_sweep,
            params,
            slo,
            sharing,
        }
    }
}

impl Checker<'_> {
    /// `replicas`: an integer from 1 to [`MAX_REPLICAS`], or a list of them (a sweep axis).
    fn replicas(&mut self, value: &Option<Spanned<toml::Value>>, field: &str) -> Vec<u32> {
        let Some(v) = value else { return vec![1] };
        let mut out = vec![];
        for item in self.axis_items(v, field) {
            match item {
                toml::Value::Integer(x) if (1..=MAX_REPLICAS).contains(x) => out.push(*x as u32),
                other => self.problem(
                    v.span(),
                    field,
                    format!("must be between 1 and {MAX_REPLICAS}, got {other}"),
                ),
            }
        }
        if out.is_empty() {
            out.push(1);
        }
        out
    }
}

fn to_param(value: &toml::Value) -> Option<ParamValue> {
    match value {
        toml::Value::Boolean(b) => Some(ParamValue::Bool(*b)),
        toml::Value::Integer(i) => Some(ParamValue::Int(*i)),
        toml::Value::Float(f) => Some(ParamValue::Float(*f)),
        toml::Value::String(s) => Some(ParamValue::Str(s.clone())),
        _ => None,
    }
}

/// Names end up in run ids and file names, so they stay to a safe character set.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
