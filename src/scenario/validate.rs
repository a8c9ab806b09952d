//! From the file as written ([`ScenarioSpec`]) to its meaning ([`Scenario`]), collecting
//! every problem with its location so one `gpushare validate` shows them all.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::{locate, Problem, Problems};
use super::model::{IsolationKind, RunSettings, Scenario, Slo, Tenant};
use super::spec::{ContainerSpec, ModeSpec, ReplicasSpec, RunSpec, ScenarioSpec, TenantSpec};
use crate::limits::{self, run, tenant, FloatLimit, IntLimit};
use crate::sharing::{mig_profiles, MigSetting, ModeSetting, MpsSetting, TenantSharing};
use crate::workload::{self, ParamValue, Params};

mod container;

/// The most replicas one tenant may have: each is a process with its own GPU context.
pub const MAX_REPLICAS: i64 = tenant::REPLICAS.max;

/// Parses and validates scenario text. `path` is only used in messages.
pub fn parse(path: &Path, source: &str) -> Result<Scenario, Problems> {
    let mut checker = Checker {
        source,
        problems: Vec::new(),
    };
    let root = match toml::de::DeTable::parse(source) {
        Ok(root) => root,
        Err(err) => {
            checker.toml_error(&err, 0..0);
            return Err(checker.finish(path));
        }
    };
    let spec = match ScenarioSpec::deserialize(toml::de::Deserializer::from(root.clone())) {
        Ok(spec) => spec,
        Err(first) => {
            // Serde stops at the first mistake; each table deserialized on its own finds
            // the mistakes of the others too.
            checker.format_problems(root);
            if checker.problems.is_empty() {
                checker.toml_error(&first, 0..0);
            }
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

    fn toml_error(&mut self, err: &toml::de::Error, fallback: Range<usize>) {
        let span = err.span().unwrap_or(fallback);
        self.problem(span, "", err.message().trim_end().to_string());
    }

    /// Every format problem (unknown or missing fields, wrong types) of a document that
    /// did not deserialize: each top-level field, `[run]`, and every mode and tenant alone.
    fn format_problems(&mut self, root: Spanned<toml::de::DeTable<'_>>) {
        const FIELDS: [&str; 6] = [
            "name",
            "description",
            "run",
            "modes",
            "tenants",
            "container",
        ];
        let table = root.into_inner();
        for required in ["name", "modes", "tenants"] {
            if !table.keys().any(|k| k.get_ref() == required) {
                self.problem(0..0, "", format!("missing field `{required}`"));
            }
        }
        for (key, value) in table {
            let span = value.span();
            let result = match key.get_ref().as_ref() {
                "name" | "description" => piece::<String>(value),
                "run" => piece::<RunSpec>(value),
                "modes" => pieces::<ModeSpec>(value),
                "tenants" => pieces::<TenantSpec>(value),
                "container" => piece::<ContainerSpec>(value),
                other => {
                    let expected = FIELDS.map(|f| format!("`{f}`")).join(", ");
                    self.problem(
                        key.span(),
                        "",
                        format!("unknown field `{other}`, expected one of {expected}"),
                    );
                    vec![]
                }
            };
            for err in result {
                self.toml_error(&err, span.clone());
            }
        }
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
        let container = spec
            .container
            .as_ref()
            .map(|c| self.container(c.get_ref(), &tenants));
        Scenario {
            name,
            description: spec.description.trim().to_string(),
            run,
            modes,
            tenants,
            container,
        }
    }

    fn run(&mut self, spec: &RunSpec) -> RunSettings {
        let duration_s = self.float(
            &spec.duration_s,
            "run.duration_s",
            run::DURATION_S,
            RunSettings::DEFAULT_DURATION_S,
        );
        let warmup_s = self.float(
            &spec.warmup_s,
            "run.warmup_s",
            run::WARMUP_S,
            RunSettings::DEFAULT_WARMUP_S,
        );
        let repetitions = self.int(
            &spec.repetitions,
            "run.repetitions",
            run::REPETITIONS,
            i64::from(RunSettings::DEFAULT_REPETITIONS),
        ) as u32;
        let min_samples = self.int(
            &spec.min_samples,
            "run.min_samples",
            run::MIN_SAMPLES,
            RunSettings::DEFAULT_MIN_SAMPLES as i64,
        ) as u64;
        let min_duration_s = spec.min_duration_s.as_ref().map(|v| {
            let value = *v.get_ref();
            if !run::MIN_DURATION_S.contains(value) {
                let reason = run::MIN_DURATION_S.check(value).unwrap_err();
                self.problem(v.span(), "run.min_duration_s", reason);
                return 0.0;
            }
            if value > duration_s {
                self.problem(
                    v.span(),
                    "run.min_duration_s",
                    format!(
                        "must be at most run.duration_s ({}), got {}",
                        limits::number(duration_s),
                        limits::number(value)
                    ),
                );
            }
            value
        });
        let exclusive_replicas = spec.exclusive_replicas.as_ref().map(|_| {
            self.int(
                &spec.exclusive_replicas,
                "run.exclusive_replicas",
                tenant::REPLICAS,
                1,
            ) as u32
        });
        let seed = self.int(
            &spec.seed,
            "run.seed",
            run::SEED,
            RunSettings::DEFAULT_SEED as i64,
        ) as u64;
        let ready_timeout_s = self.float(
            &spec.ready_timeout_s,
            "run.ready_timeout_s",
            run::READY_TIMEOUT_S,
            RunSettings::DEFAULT_READY_TIMEOUT_S,
        );
        let stop_timeout_s = self.float(
            &spec.stop_timeout_s,
            "run.stop_timeout_s",
            run::STOP_TIMEOUT_S,
            RunSettings::DEFAULT_STOP_TIMEOUT_S,
        );
        let isolation = match &spec.isolation {
            None => IsolationKind::Process,
            Some(v) => match v.get_ref().as_str() {
                "process" => IsolationKind::Process,
                "container" => IsolationKind::Container,
                other => {
                    self.problem(
                        v.span(),
                        "run.isolation",
                        format!("must be \"process\" or \"container\", got {other:?}"),
                    );
                    IsolationKind::Process
                }
            },
        };
        RunSettings {
            isolation,
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

    /// A number in `limit`, or the default when absent; a value outside is a problem
    /// and reads as the default, so later checks see a usable value.
    fn float(
        &mut self,
        value: &Option<Spanned<f64>>,
        field: &str,
        limit: FloatLimit,
        default: f64,
    ) -> f64 {
        let Some(v) = value else { return default };
        match limit.check(*v.get_ref()) {
            Ok(x) => x,
            Err(reason) => {
                self.problem(v.span(), field, reason);
                default
            }
        }
    }

    /// An integer in `limit`, or the default when absent (or outside, with a problem).
    fn int(
        &mut self,
        value: &Option<Spanned<i64>>,
        field: &str,
        limit: IntLimit,
        default: i64,
    ) -> i64 {
        let Some(v) = value else { return default };
        match limit.check(*v.get_ref()) {
            Ok(x) => x,
            Err(reason) => {
                self.problem(v.span(), field, reason);
                default
            }
        }
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
                    tenant::MPS_ACTIVE_THREAD_PERCENTAGE,
                );
                let mems = self.int_axis(
                    &spec.pinned_memory_limit_mib,
                    &field("pinned_memory_limit_mib"),
                    tenant::MPS_PINNED_MEMORY_LIMIT_MIB,
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
                Some(profile) => {
                    let names = self.string_axis(profile, &field("profile"));
                    for name in names.iter().filter(|n| !mig_profiles::is_known(n)) {
                        self.problem(
                            profile.span(),
                            field("profile"),
                            mig_profiles::unknown_profile_message(name),
                        );
                    }
                    names
                        .into_iter()
                        .map(|profile| ModeSetting::Mig(MigSetting { profile }))
                        .collect()
                }
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
        limit: IntLimit,
    ) -> Vec<Option<i64>> {
        let Some(v) = value else { return vec![None] };
        let mut out = vec![];
        for item in self.axis_items(v, field) {
            match item {
                toml::Value::Integer(x) if limit.contains(*x) => out.push(Some(*x)),
                other => {
                    self.problem(
                        v.span(),
                        field,
                        format!("must be {limit} (or a list of them), got {other}"),
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
        // A set, so ten thousand tenants validate in linear time.
        let mut names = std::collections::BTreeSet::new();
        for (idx, spec) in specs.get_ref().iter().enumerate() {
            let tenant = self.tenant(idx, spec.get_ref());
            if !names.insert(tenant.name.clone()) {
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
                        format!("must be above 0 and below 100, got {}", limits::number(v)),
                    );
                }
                v
            });
            let target_ms = self.float(
                &Some(slo_spec.target_ms.clone()),
                &field("slo.target_ms"),
                tenant::SLO_TARGET_MS,
                1.0,
            );
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
                    self.int(
                        &mps.active_thread_percentage,
                        &field("mps.active_thread_percentage"),
                        tenant::MPS_ACTIVE_THREAD_PERCENTAGE,
                        100,
                    ) as u32
                });
            sharing.mps_pinned_memory_limit_mib = mps.pinned_memory_limit_mib.as_ref().map(|_| {
                self.int(
                    &mps.pinned_memory_limit_mib,
                    &field("mps.pinned_memory_limit_mib"),
                    tenant::MPS_PINNED_MEMORY_LIMIT_MIB,
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
            } else if !mig_profiles::is_known(&profile) {
                self.problem(
                    mig.get_ref().profile.span(),
                    field("mig.profile"),
                    mig_profiles::unknown_profile_message(&profile),
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

/// The error of deserializing one value as a `T`, if any.
fn piece<T: serde::de::DeserializeOwned>(
    value: Spanned<toml::de::DeValue<'_>>,
) -> Vec<toml::de::Error> {
    T::deserialize(toml::de::ValueDeserializer::from(value))
        .err()
        .into_iter()
        .collect()
}

/// The errors of deserializing each item of an array as a `T` (or the whole value, when
/// it is not an array).
fn pieces<T: serde::de::DeserializeOwned>(
    value: Spanned<toml::de::DeValue<'_>>,
) -> Vec<toml::de::Error> {
    let span = value.span();
    match value.into_inner() {
        toml::de::DeValue::Array(items) => items.into_iter().flat_map(piece::<T>).collect(),
        other => piece::<Vec<T>>(Spanned::new(span, other)),
    }
}

impl Checker<'_> {
    /// `replicas`: an integer within [`tenant::REPLICAS`], or a list of them (a sweep axis).
    fn replicas(&mut self, value: &Option<Spanned<ReplicasSpec>>, field: &str) -> Vec<u32> {
        let Some(v) = value else { return vec![1] };
        if v.get_ref().0.is_empty() {
            self.problem(
                v.span(),
                field,
                "an empty list sweeps nothing: give at least one value",
            );
        }
        let mut out = vec![];
        for &n in &v.get_ref().0 {
            match tenant::REPLICAS.check(n) {
                Ok(x) => out.push(x as u32),
                Err(reason) => self.problem(v.span(), field, reason),
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
