//! The `[container]` table: images, environment, mounts, user, GPUs of tenants' containers.

use toml::Spanned;

use super::Checker;
use crate::isolation::container::{BindMount, ContainerSettings, GpuRequest};
use crate::scenario::model::Tenant;
use crate::scenario::spec::ContainerSpec;

impl Checker<'_> {
    pub(super) fn container(
        &mut self,
        spec: &ContainerSpec,
        tenants: &[Tenant],
    ) -> ContainerSettings {
        let defaults = ContainerSettings::default();
        let mut settings = ContainerSettings {
            image: self.non_empty(&spec.image, "container.image", &defaults.image),
            network: self.non_empty(&spec.network, "container.network", &defaults.network),
            user: spec.user.as_ref().map(|u| u.get_ref().clone()),
            entrypoint: spec.entrypoint.as_ref().map(|e| e.get_ref().clone()),
            ..defaults
        };
        if let Some(entrypoint) = &spec.entrypoint {
            if entrypoint.get_ref().is_empty() {
                self.problem(
                    entrypoint.span(),
                    "container.entrypoint",
                    "list the program and its arguments, or leave it out",
                );
            }
        }
        for (name, image) in &spec.tenant_images {
            let field = format!("container.tenant_images.{}", name.get_ref());
            if !tenants.iter().any(|t| &t.name == name.get_ref()) {
                let known: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
                self.problem(
                    name.span(),
                    &field,
                    format!(
                        "no tenant is named {:?} (tenants: {})",
                        name.get_ref(),
                        known.join(", ")
                    ),
                );
            }
            let image = self.non_empty(&Some(image.clone()), &field, "");
            settings.tenant_images.insert(name.get_ref().clone(), image);
        }
        for (key, value) in &spec.env {
            if key.get_ref().is_empty() || key.get_ref().contains('=') {
                self.problem(
                    key.span(),
                    "container.env",
                    format!("{:?} is not a variable name", key.get_ref()),
                );
            }
            settings
                .env
                .insert(key.get_ref().clone(), value.get_ref().clone());
        }
        for (idx, mount) in spec.mounts.iter().enumerate() {
            let mount = mount.get_ref();
            for (path, what) in [(&mount.source, "source"), (&mount.target, "target")] {
                if !path.get_ref().starts_with('/') {
                    self.problem(
                        path.span(),
                        format!("container.mounts[{idx}].{what}"),
                        format!("must be an absolute path, got {:?}", path.get_ref()),
                    );
                }
            }
            settings.mounts.push(BindMount {
                source: mount.source.get_ref().clone(),
                target: mount.target.get_ref().clone(),
                read_only: mount.read_only,
            });
        }
        if let Some(gpus) = &spec.gpus {
            settings.gpus = self.gpus(gpus);
        }
        settings
    }

    fn non_empty(&mut self, value: &Option<Spanned<String>>, field: &str, default: &str) -> String {
        let Some(v) = value else {
            return default.to_string();
        };
        let text = v.get_ref().trim();
        if text.is_empty() {
            self.problem(v.span(), field, "must not be empty");
        }
        text.to_string()
    }

    fn gpus(&mut self, value: &Spanned<toml::Value>) -> GpuRequest {
        const EXPECTED: &str = "write \"all\", a number of GPUs, or a list of GPU or MIG UUIDs";
        match value.get_ref() {
            toml::Value::String(s) if s == "all" => GpuRequest::All,
            toml::Value::Integer(n) if (1..=i64::from(u32::MAX)).contains(n) => {
                GpuRequest::Count(*n as u32)
            }
            toml::Value::Array(items)
                if !items.is_empty()
                    && items
                        .iter()
                        .all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty())) =>
            {
                GpuRequest::Ids(
                    items
                        .iter()
                        .filter_map(|i| i.as_str())
                        .map(|s| s.trim().to_string())
                        .collect(),
                )
            }
            other => {
                self.problem(
                    value.span(),
                    "container.gpus",
                    format!("{EXPECTED}, got {other}"),
                );
                GpuRequest::All
            }
        }
    }
}
