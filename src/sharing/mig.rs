//! `mig`: tenants on MIG instances that already exist, one instance per worker.
//!
//! gpushare never creates, destroys or resizes instances, and never turns MIG on or off:
//! users do that with `gpu-configs/setup_mig.sh` on their own hosts. This mode reads what
//! exists ([`MigInventory`], through the `gpu` module's NVML layer), places each worker on
//! a free instance of its profile ([`place`], a pure function), and hands each worker
//! `CUDA_VISIBLE_DEVICES=MIG-<uuid>`. Its guard has nothing to undo.

use std::collections::BTreeMap;

use super::MigSetting;
use super::{worker, ModeContext, ModeGuard, ModeRecord, SharingError, WorkerSharing};
use crate::gpu::{self, GpuInfo, MigInstance, MigState};

/// The MIG instances of one GPU, as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct MigInventory {
    /// NVML index of the parent GPU.
    pub gpu_index: u32,
    /// Product name of the parent GPU.
    pub gpu_name: String,
    /// MIG mode and instances; `None` when NVML could not say.
    pub state: Option<MigState>,
}

/// Where one worker runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MigPlacement {
    pub worker_idx: usize,
    /// The worker's label, as in [`WorkerSharing::label`].
    pub label: String,
    /// The profile the worker asked for, e.g. `3g.71gb`.
    pub profile: String,
    /// The instance's `MIG-...` UUID, as `CUDA_VISIBLE_DEVICES` takes it.
    pub instance_uuid: String,
}

impl MigInventory {
    /// Reads GPU `gpu_index`'s MIG state through NVML.
    pub fn read(gpu_index: u32) -> Result<MigInventory, SharingError> {
        let info = gpu::gpu_info(gpu_index).map_err(|source| SharingError::ReadingGpu {
            mode: "mig",
            gpu_index,
            source,
        })?;
        Ok(MigInventory::from_gpu(&info))
    }

    pub fn from_gpu(info: &GpuInfo) -> MigInventory {
        MigInventory {
            gpu_index: info.index,
            gpu_name: info.name.clone(),
            state: info.mig.clone(),
        }
    }

    /// The instances, or the error saying why there are none to use.
    fn instances(&self) -> Result<&[MigInstance], SharingError> {
        let gpu_index = self.gpu_index;
        let gpu_name = self.gpu_name.clone();
        match &self.state {
            Some(MigState::Enabled { instances, .. }) => Ok(instances),
            Some(MigState::Disabled { pending_enabled }) => Err(SharingError::MigDisabled {
                gpu_index,
                gpu_name,
                pending: if *pending_enabled {
                    ", enabled after the next GPU reset"
                } else {
                    ""
                },
            }),
            Some(MigState::NotSupported) => Err(SharingError::MigNotSupported {
                gpu_index,
                gpu_name,
            }),
            None => Err(SharingError::MigUnknown {
                gpu_index,
                gpu_name,
            }),
        }
    }
}

/// Places each worker on its own instance of its profile (the tenant's `mig_profile`, else
/// the mode's), in worker order, taking instances in NVML index order so the same layout
/// gives the same placement.
pub fn place(
    inventory: &MigInventory,
    setting: &MigSetting,
    workers: &[WorkerSharing],
) -> Result<Vec<MigPlacement>, SharingError> {
    let instances = inventory.instances()?;
    let mut by_profile: BTreeMap<&str, Vec<&MigInstance>> = BTreeMap::new();
    for instance in instances {
        by_profile
            .entry(instance.profile.as_str())
            .or_default()
            .push(instance);
    }
    let wanted = |worker: &WorkerSharing| -> String {
        worker
            .sharing
            .mig_profile
            .clone()
            .unwrap_or_else(|| setting.profile.clone())
    };

    let mut n_used: BTreeMap<String, usize> = BTreeMap::new();
    let mut placements = Vec::with_capacity(workers.len());
    for (worker_idx, worker) in workers.iter().enumerate() {
        let profile = wanted(worker);
        let used = n_used.entry(profile.clone()).or_default();
        let free = by_profile
            .get(profile.as_str())
            .and_then(|list| list.get(*used));
        let Some(instance) = free else {
            let n_needed = workers.iter().filter(|w| wanted(w) == profile).count();
            return Err(SharingError::MigTooFewInstances {
                gpu_index: inventory.gpu_index,
                n_found: by_profile.get(profile.as_str()).map_or(0, Vec::len),
                profile,
                n_needed,
                available: available_text(&by_profile),
            });
        };
        *used += 1;
        placements.push(MigPlacement {
            worker_idx,
            label: worker.label.clone(),
            profile,
            instance_uuid: cuda_visible_device(&instance.uuid),
        });
    }
    Ok(placements)
}

/// `2 x 1g.18gb, 1 x 3g.71gb`, or `no instances`.
fn available_text(by_profile: &BTreeMap<&str, Vec<&MigInstance>>) -> String {
    if by_profile.is_empty() {
        return "no instances".to_string();
    }
    by_profile
        .iter()
        .map(|(profile, list)| format!("{} x {profile}", list.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Drivers since R470 name MIG devices `MIG-<uuid>` in NVML and in `CUDA_VISIBLE_DEVICES`
/// (https://docs.nvidia.com/datacenter/tesla/mig-user-guide/#cuda-visible-devices); older
/// answers without the prefix get it.
fn cuda_visible_device(uuid: &str) -> String {
    if uuid.starts_with("MIG-") {
        uuid.to_string()
    } else {
        format!("MIG-{uuid}")
    }
}

/// What a dry run shows: where each worker would run, or why it cannot.
pub fn describe_placement(
    inventory: &MigInventory,
    setting: &MigSetting,
    workers: &[WorkerSharing],
) -> String {
    let header = format!(
        "MIG on GPU {} ({})",
        inventory.gpu_index, inventory.gpu_name
    );
    match place(inventory, setting, workers) {
        Ok(placements) => {
            let mut text = match &inventory.state {
                Some(MigState::Enabled { instances, .. }) => {
                    let mut by_profile: BTreeMap<&str, Vec<&MigInstance>> = BTreeMap::new();
                    for instance in instances {
                        by_profile
                            .entry(instance.profile.as_str())
                            .or_default()
                            .push(instance);
                    }
                    format!("{header}: {}\n", available_text(&by_profile))
                }
                _ => format!("{header}\n"),
            };
            for placement in placements {
                text.push_str(&format!(
                    "  {} -> {} ({})\n",
                    placement.label, placement.instance_uuid, placement.profile
                ));
            }
            text
        }
        Err(error) => format!("{header}: cannot place workers: failed {error}\n"),
    }
}

/// [`describe_placement`] on this host's GPU `gpu_index`, read through NVML.
pub fn describe_placement_on_host(
    gpu_index: u32,
    setting: &MigSetting,
    workers: &[WorkerSharing],
) -> String {
    match MigInventory::read(gpu_index) {
        Ok(inventory) => describe_placement(&inventory, setting, workers),
        Err(error) => format!(
            "MIG on GPU {gpu_index}: cannot place workers: failed {}\n",
            crate::errors::error_chain(&error)
        ),
    }
}

/// The guard of an entered `mig` mode: the placement, and nothing to undo.
pub struct MigGuard {
    placements: Vec<MigPlacement>,
    workers: Vec<WorkerSharing>,
}

impl MigGuard {
    /// Reads the GPU's instances and places the context's workers on them.
    pub fn enter(setting: &MigSetting, context: &ModeContext) -> Result<MigGuard, SharingError> {
        let inventory = MigInventory::read(context.gpu_index)?;
        MigGuard::enter_with(&inventory, setting, context)
    }

    /// As [`MigGuard::enter`], on an inventory already read.
    pub fn enter_with(
        inventory: &MigInventory,
        setting: &MigSetting,
        context: &ModeContext,
    ) -> Result<MigGuard, SharingError> {
        Ok(MigGuard {
            placements: place(inventory, setting, &context.workers)?,
            workers: context.workers.clone(),
        })
    }

    pub fn placements(&self) -> &[MigPlacement] {
        &self.placements
    }
}

impl ModeGuard for MigGuard {
    fn tenant_env(&self, worker_idx: usize) -> Result<Vec<(String, String)>, SharingError> {
        worker(&self.workers, worker_idx)?;
        let placement = &self.placements[worker_idx];
        Ok(vec![(
            "CUDA_VISIBLE_DEVICES".to_string(),
            placement.instance_uuid.clone(),
        )])
    }

    fn record(&self) -> ModeRecord {
        ModeRecord {
            notes: self
                .placements
                .iter()
                .map(|p| {
                    format!(
                        "{} on MIG instance {} ({})",
                        p.label, p.instance_uuid, p.profile
                    )
                })
                .collect(),
        }
    }

    fn exit(self: Box<Self>) -> Result<(), SharingError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharing::TenantSharing;

    fn instance(index: u32, profile: &str) -> MigInstance {
        MigInstance {
            index,
            uuid: format!("MIG-0000000{index}-aaaa-bbbb-cccc-dddddddddddd"),
            profile: profile.to_string(),
            memory_total_bytes: None,
        }
    }

    fn enabled(instances: Vec<MigInstance>) -> MigInventory {
        MigInventory {
            gpu_index: 0,
            gpu_name: "NVIDIA H200".into(),
            state: Some(MigState::Enabled {
                pending_enabled: true,
                instances,
            }),
        }
    }

    fn inventory_with(state: Option<MigState>) -> MigInventory {
        MigInventory {
            state,
            ..enabled(Vec::new())
        }
    }

    fn workers(profiles: &[Option<&str>]) -> Vec<WorkerSharing> {
        profiles
            .iter()
            .enumerate()
            .map(|(idx, profile)| WorkerSharing {
                label: format!("t#{idx}"),
                sharing: TenantSharing {
                    mig_profile: profile.map(str::to_string),
                    ..TenantSharing::default()
                },
            })
            .collect()
    }

    fn setting(profile: &str) -> MigSetting {
        MigSetting {
            profile: profile.into(),
        }
    }

    #[test]
    fn each_worker_gets_its_own_instance_in_index_order() {
        let inventory = enabled(vec![
            instance(0, "3g.71gb"),
            instance(1, "1g.18gb"),
            instance(2, "3g.71gb"),
        ]);
        let placed = place(&inventory, &setting("3g.71gb"), &workers(&[None, None])).unwrap();
        let uuids: Vec<&str> = placed.iter().map(|p| p.instance_uuid.as_str()).collect();
        assert_eq!(
            uuids,
            [
                "MIG-00000000-aaaa-bbbb-cccc-dddddddddddd",
                "MIG-00000002-aaaa-bbbb-cccc-dddddddddddd"
            ]
        );
        assert_eq!(placed[1].worker_idx, 1);
        assert_eq!(placed[1].label, "t#1");
    }

    #[test]
    fn a_tenant_profile_overrides_the_mode_profile() {
        let inventory = enabled(vec![instance(0, "3g.71gb"), instance(1, "1g.18gb")]);
        let placed = place(
            &inventory,
            &setting("3g.71gb"),
            &workers(&[Some("1g.18gb"), None]),
        )
        .unwrap();
        assert_eq!(placed[0].profile, "1g.18gb");
        assert_eq!(placed[0].instance_uuid, instance(1, "").uuid);
        assert_eq!(placed[1].profile, "3g.71gb");
    }

    #[test]
    fn too_few_instances_names_what_exists() {
        let inventory = enabled(vec![
            instance(0, "3g.71gb"),
            instance(1, "1g.18gb"),
            instance(2, "1g.18gb"),
        ]);
        let error = place(
            &inventory,
            &setting("3g.71gb"),
            &workers(&[None, None, None]),
        )
        .unwrap_err();
        assert!(matches!(
            &error,
            SharingError::MigTooFewInstances {
                n_needed: 3,
                n_found: 1,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            "placing 3 worker(s) on MIG profile `3g.71gb` of GPU 0: it has 1 instance(s) of \
             that profile (2 x 1g.18gb, 1 x 3g.71gb); one instance per worker is needed, \
             create more with `gpu-configs/setup_mig.sh`"
        );
    }

    #[test]
    fn an_unknown_profile_finds_none() {
        let inventory = enabled(vec![instance(0, "1g.18gb")]);
        let error = place(&inventory, &setting("7g.141gb"), &workers(&[None])).unwrap_err();
        assert!(matches!(
            error,
            SharingError::MigTooFewInstances { n_needed: 1, n_found: 0, ref available, .. }
                if available == "1 x 1g.18gb"
        ));
    }

    #[test]
    fn mig_enabled_without_instances_says_so() {
        let error =
            place(&enabled(Vec::new()), &setting("1g.18gb"), &workers(&[None])).unwrap_err();
        assert!(error.to_string().contains("(no instances)"), "{error}");
    }

    #[test]
    fn mig_disabled_names_the_setup_script() {
        let inventory = inventory_with(Some(MigState::Disabled {
            pending_enabled: false,
        }));
        let error = place(&inventory, &setting("1g.18gb"), &workers(&[None])).unwrap_err();
        assert!(matches!(
            error,
            SharingError::MigDisabled { gpu_index: 0, .. }
        ));
        assert_eq!(
            error.to_string(),
            "placing tenants on MIG instances: MIG is disabled on GPU 0 (NVIDIA H200); enable \
             it and create instances with `gpu-configs/setup_mig.sh` (gpushare never changes \
             GPU settings)"
        );
    }

    #[test]
    fn mig_pending_says_a_reset_is_due() {
        let inventory = inventory_with(Some(MigState::Disabled {
            pending_enabled: true,
        }));
        let error = place(&inventory, &setting("1g.18gb"), &workers(&[None])).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("(NVIDIA H200), enabled after the next GPU reset;"),
            "{error}"
        );
    }

    #[test]
    fn mig_not_supported_or_unknown_is_an_error() {
        let error = place(
            &inventory_with(Some(MigState::NotSupported)),
            &setting("1g.18gb"),
            &workers(&[None]),
        )
        .unwrap_err();
        assert!(matches!(error, SharingError::MigNotSupported { .. }));
        let error = place(
            &inventory_with(None),
            &setting("1g.18gb"),
            &workers(&[None]),
        )
        .unwrap_err();
        assert!(matches!(error, SharingError::MigUnknown { .. }));
    }

    #[test]
    fn an_unprefixed_uuid_gets_the_mig_prefix() {
        assert_eq!(cuda_visible_device("abcd"), "MIG-abcd");
        assert_eq!(cuda_visible_device("MIG-abcd"), "MIG-abcd");
    }

    #[test]
    fn dry_run_shows_each_worker_on_its_instance() {
        let inventory = enabled(vec![instance(0, "3g.71gb"), instance(1, "3g.71gb")]);
        let text = describe_placement(&inventory, &setting("3g.71gb"), &workers(&[None, None]));
        assert_eq!(
            text,
            "MIG on GPU 0 (NVIDIA H200): 2 x 3g.71gb\n\
             \x20 t#0 -> MIG-00000000-aaaa-bbbb-cccc-dddddddddddd (3g.71gb)\n\
             \x20 t#1 -> MIG-00000001-aaaa-bbbb-cccc-dddddddddddd (3g.71gb)\n"
        );
    }

    #[test]
    fn dry_run_shows_why_it_cannot_place() {
        let inventory = inventory_with(Some(MigState::Disabled {
            pending_enabled: false,
        }));
        let text = describe_placement(&inventory, &setting("3g.71gb"), &workers(&[None]));
        assert!(
            text.starts_with("MIG on GPU 0 (NVIDIA H200): cannot place workers: failed placing"),
            "{text}"
        );
    }

    #[test]
    fn the_guard_gives_each_worker_its_instance() {
        let inventory = enabled(vec![instance(0, "1g.18gb"), instance(1, "1g.18gb")]);
        let context = ModeContext {
            workers: workers(&[None, None]),
            ..ModeContext::default()
        };
        let guard: Box<dyn ModeGuard> =
            Box::new(MigGuard::enter_with(&inventory, &setting("1g.18gb"), &context).unwrap());
        assert_eq!(
            guard.tenant_env(1).unwrap(),
            [(
                "CUDA_VISIBLE_DEVICES".to_string(),
                "MIG-00000001-aaaa-bbbb-cccc-dddddddddddd".to_string()
            )]
        );
        assert!(matches!(
            guard.tenant_env(2),
            Err(SharingError::NoSuchWorker {
                worker_idx: 2,
                n_workers: 2
            })
        ));
        assert_eq!(
            guard.record().notes[0],
            "t#0 on MIG instance MIG-00000000-aaaa-bbbb-cccc-dddddddddddd (1g.18gb)"
        );
        guard.exit().unwrap();
    }
}
