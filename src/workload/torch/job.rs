//! A torch job: one model, one synthetic batch, one optimizer, stepped by the caller. It
//! owns the libtorch state of one tenant and must not time or report anything itself: the
//! caller times [`TorchJob::step`], which returns only once the device has finished.
//!
//! A step does what one iteration of `bench/reference/pytorch_eager.py` does, so the two
//! can be compared: train is `zero_grad(set_to_none)`, forward and loss (in bf16 autocast
//! when asked), backward, fused optimizer step; infer is a forward pass in evaluation mode
//! without autograd.

use std::panic::{self, AssertUnwindSafe};

use tch::{nn, Cuda, Device, TchError};

use super::error::TorchError;
use super::layers::count_parameters;
use super::network::{Network, SyntheticBatch};
use super::optim::Optimizer;
use super::shim::{self, AutocastGuard};
use super::spec::{device_name, ModelKind, Precision, TorchJobSettings, TorchJobSpec};

/// Whether libtorch can use a CUDA GPU: false when there is none, and also when the binary
/// was linked without libtorch_cuda (see build.rs).
pub fn cuda_available() -> bool {
    Cuda::is_available()
}

/// Trainable parameters of the network a job with this model runs, built on the CPU.
/// BERT's includes its 2-label classification head (1,538 above `bert-base-uncased`'s
/// 109,482,240); the other models' heads are part of their reference counts.
pub fn parameter_count(model: ModelKind, tiny: bool) -> Result<i64, TorchError> {
    let vs = nn::VarStore::new(Device::Cpu);
    build_network(&vs, model, tiny, None)?;
    Ok(count_parameters(&vs))
}

/// One tenant's model, synthetic batch and optimizer on one device, ready to step.
#[derive(Debug)]
pub struct TorchJob {
    settings: TorchJobSettings,
    network: Network,
    batch: SyntheticBatch,
    /// Present exactly for train jobs.
    optimizer: Option<Optimizer>,
    n_parameters: i64,
    /// Owns the parameters that `network` and `optimizer` hold handles to.
    _var_store: nn::VarStore,
}

impl TorchJob {
    /// Builds the model on the spec's device, seeds and makes the synthetic batch, and sets
    /// up the optimizer. Downloads nothing.
    pub fn new(spec: &TorchJobSpec) -> Result<Self, TorchError> {
        let settings = spec.resolve()?;
        let device = settings.device;
        let (var_store, network) = build_on_device(&settings)?;
        let batch = SyntheticBatch::new(&settings)?;
        let optimizer = settings
            .optimizer
            .map(|kind| Optimizer::new(kind, var_store.trainable_variables()));
        if let Device::Cuda(idx) = device {
            shim::cuda_reset_peak_stats(idx)?;
        }
        Ok(Self {
            n_parameters: count_parameters(&var_store),
            settings,
            network,
            batch,
            optimizer,
            _var_store: var_store,
        })
    }

    /// Runs `n_steps` steps whose time does not count: the caching allocator reaches its
    /// steady state and cuDNN finishes choosing algorithms.
    pub fn warm_up(&mut self, n_steps: usize) -> Result<(), TorchError> {
        for _ in 0..n_steps {
            self.step()?;
        }
        Ok(())
    }

    /// One train step or inference batch; returns once the device has finished it, with
    /// the number of items (images or sequences) it processed.
    pub fn step(&mut self) -> Result<u64, TorchError> {
        match &mut self.optimizer {
            Some(optimizer) => train_step(&self.network, &self.batch, &self.settings, optimizer)?,
            None => infer_step(&self.network, &self.batch, &self.settings)?,
        }
        self.synchronize()?;
        // The rows of the batch just processed, not the setting it was built from, so a
        // wrongly shaped batch shows in the count.
        let rows = self.batch.inputs.size().first().copied().unwrap_or(0);
        Ok(u64::try_from(rows).unwrap_or(0))
    }

    /// What [`TorchJob::step`] counts: `images` or `sequences`.
    pub fn item_name(&self) -> &'static str {
        if self.settings.model.takes_images() {
            "images"
        } else {
            "sequences"
        }
    }

    /// Tokens per step for GPT-2 (batch size x sequence length), whose throughput is
    /// usually quoted in tokens; `None` for the other models.
    pub fn tokens_per_step(&self) -> Option<u64> {
        match self.settings.model {
            ModelKind::Gpt2Small => self
                .settings
                .seq_len
                .map(|seq_len| (self.settings.batch_size * seq_len) as u64),
            _ => None,
        }
    }

    /// Peak bytes the CUDA caching allocator handed out since the job was built
    /// (`torch.cuda.max_memory_allocated`): tensors only, without the CUDA context and the
    /// allocator's cached free blocks. `None` on the CPU or if libtorch cannot say.
    pub fn memory_peak_bytes(&self) -> Option<u64> {
        match self.settings.device {
            Device::Cuda(idx) => shim::cuda_peak_allocated_bytes(idx).ok(),
            _ => None,
        }
    }

    /// Trainable parameters of the network (see [`parameter_count`]).
    pub fn parameter_count(&self) -> i64 {
        self.n_parameters
    }

    /// The spec with every default resolved.
    pub fn settings(&self) -> &TorchJobSettings {
        &self.settings
    }

    fn synchronize(&self) -> Result<(), TorchError> {
        synchronize_device(self.settings.device)
    }
}

/// Checks the device, seeds libtorch and builds the network of `settings` on its device
/// (channels-last when asked): what a train or infer job and the inference server share.
pub(super) fn build_on_device(
    settings: &TorchJobSettings,
) -> Result<(nn::VarStore, Network), TorchError> {
    let device = settings.device;
    if let Device::Cuda(idx) = device {
        let n_devices = Cuda::device_count();
        if !Cuda::is_available() || idx as i64 >= n_devices {
            return Err(TorchError::DeviceUnavailable {
                model: settings.model,
                device: device_name(device),
                n_devices,
            });
        }
        // cuDNN times the candidate algorithms of each new convolution shape during the
        // first steps and keeps the fastest, as `torch.backends.cudnn.benchmark = True`.
        Cuda::cudnn_set_benchmark(true);
    }
    if device == Device::Cpu {
        // CPU models are test fixtures next to other tenants on the same cores. libtorch's
        // intra-op pool would start a thread per core in every tenant process, and their
        // OpenMP spin-waits starve each other (a tiny trainer was seen completing steps
        // over only 0.9 s of a 3 s window); one thread each shares the cores fairly.
        tch::set_num_threads(1);
    }
    // One seed for initialisation, inputs and dropout; `manual_seed` seeds the CPU and
    // every GPU generator.
    tch::manual_seed(i64::from_ne_bytes(settings.seed.to_ne_bytes()));

    let var_store = nn::VarStore::new(device);
    let network = build_network(
        &var_store,
        settings.model,
        settings.tiny,
        settings.image_size,
    )?;
    if settings.channels_last {
        convert_to_channels_last(&var_store).map_err(|message| TorchError::Build {
            model: settings.model,
            device: device_name(device),
            message,
        })?;
    }
    Ok((var_store, network))
}

/// Waits until `device` has finished all queued work (a no-op on the CPU, whose
/// operations have finished when they return).
pub(super) fn synchronize_device(device: Device) -> Result<(), TorchError> {
    let Device::Cuda(idx) = device else {
        return Ok(());
    };
    // tch's `synchronize` panics when CUDA reports an error from earlier asynchronous
    // work (an illegal access, a fault under MPS); that is an error of this job.
    panic::catch_unwind(|| Cuda::synchronize(idx as i64)).map_err(|payload| {
        TorchError::Synchronize {
            device: device_name(device),
            message: panic_message(payload.as_ref()),
        }
    })
}

fn train_step(
    network: &Network,
    batch: &SyntheticBatch,
    settings: &TorchJobSettings,
    optimizer: &mut Optimizer,
) -> Result<(), TorchError> {
    optimizer.zero_grad()?;
    let loss = {
        // Python's reference computes the loss inside the autocast region and runs backward
        // outside it, as PyTorch's AMP guide says.
        let _autocast = autocast_guard(settings)?;
        let logits = network
            .forward_t(&batch.inputs, true)
            .map_err(step_error(settings, "forward"))?;
        network
            .loss(&logits, &batch.targets)
            .map_err(step_error(settings, "loss"))?
    };
    loss.f_backward()
        .map_err(step_error(settings, "backward"))?;
    optimizer.step()
}

fn infer_step(
    network: &Network,
    batch: &SyntheticBatch,
    settings: &TorchJobSettings,
) -> Result<(), TorchError> {
    let _no_grad = tch::no_grad_guard();
    let _autocast = autocast_guard(settings)?;
    // The logits are dropped: an inference step is measured, not its answer.
    let _logits = network
        .forward_t(&batch.inputs, false)
        .map_err(step_error(settings, "forward"))?;
    Ok(())
}

pub(super) fn autocast_guard(
    settings: &TorchJobSettings,
) -> Result<Option<AutocastGuard>, TorchError> {
    match settings.precision {
        Precision::Fp32 => Ok(None),
        Precision::Bf16 => AutocastGuard::bf16(settings.device).map(Some),
    }
}

pub(super) fn step_error(
    settings: &TorchJobSettings,
    during: &'static str,
) -> impl FnOnce(TchError) -> TorchError {
    let (model, kind) = (settings.model, settings.kind);
    move |source| TorchError::Step {
        model,
        kind,
        during,
        source,
    }
}

/// Builds the network, turning a panic of tch's layer constructors (which allocate the
/// parameters, and panic when that fails) into an error.
fn build_network(
    var_store: &nn::VarStore,
    model: ModelKind,
    tiny: bool,
    image_size: Option<usize>,
) -> Result<Network, TorchError> {
    let root = var_store.root();
    panic::catch_unwind(AssertUnwindSafe(|| {
        Network::build(&root, model, tiny, image_size)
    }))
    .map_err(|payload| TorchError::Build {
        model,
        device: device_name(var_store.device()),
        message: panic_message(payload.as_ref()),
    })
}

/// `model.to(memory_format=torch.channels_last)`: every 4-d parameter (the convolution
/// weights) is re-laid out in place, so the optimizer and the network see the new layout.
fn convert_to_channels_last(var_store: &nn::VarStore) -> Result<(), String> {
    for mut param in var_store.trainable_variables() {
        if param.dim() == 4 {
            let converted = shim::channels_last(&param).map_err(|err| err.to_string())?;
            let _no_grad = tch::no_grad_guard();
            param
                .f_set_data(&converted)
                .map_err(|err| format!("making weights channels-last: {err}"))?;
        }
    }
    Ok(())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else {
        "panic without a message".to_owned()
    }
}

// A worker may build the job on one thread and step it on another.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<TorchJob>();
};

#[cfg(test)]
mod tests {
    use tch::{Kind, Tensor};

    use super::*;
    use crate::workload::torch::spec::{JobKind, OptimizerKind};

    fn tiny_cpu_spec(model: ModelKind, kind: JobKind, precision: Precision) -> TorchJobSpec {
        TorchJobSpec {
            kind,
            precision,
            device: Device::Cpu,
            tiny: true,
            ..TorchJobSpec::new(model)
        }
    }

    /// Copies of every variable, trainable or not (batch-norm statistics included).
    fn snapshot(job: &TorchJob) -> Vec<(String, Tensor)> {
        let mut vars: Vec<_> = job
            ._var_store
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.detach().copy()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Names of the variables whose values differ between the snapshot and now.
    fn changed(before: &[(String, Tensor)], job: &TorchJob) -> Vec<String> {
        let now = job._var_store.variables();
        before
            .iter()
            .filter(|(name, old)| {
                let diff = (&now[name] - old).abs().max().double_value(&[]);
                diff > 0.0
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    #[test]
    fn train_steps_update_every_parameter_of_every_model_with_both_optimizers_and_precisions() {
        for model in ModelKind::ALL {
            for precision in [Precision::Fp32, Precision::Bf16] {
                for optimizer in [OptimizerKind::Sgd, OptimizerKind::AdamW] {
                    let spec = TorchJobSpec {
                        optimizer: Some(optimizer),
                        ..tiny_cpu_spec(model, JobKind::Train, precision)
                    };
                    let mut job = TorchJob::new(&spec).unwrap();
                    let before = snapshot(&job);
                    assert_eq!(
                        job.step().unwrap(),
                        2,
                        "{model} {precision:?} {optimizer:?}"
                    );
                    let changed = changed(&before, &job);
                    let unchanged: Vec<_> = job
                        ._var_store
                        .variables()
                        .into_iter()
                        .filter(|(name, t)| t.requires_grad() && !changed.contains(name))
                        .map(|(name, _)| name)
                        .collect();
                    assert!(
                        unchanged.is_empty(),
                        "{model} {precision:?} {optimizer:?}: unchanged {unchanged:?}"
                    );
                    job.step().unwrap();
                }
            }
        }
    }

    #[test]
    fn infer_steps_change_nothing_and_record_no_gradients() {
        for model in ModelKind::ALL {
            for precision in [Precision::Fp32, Precision::Bf16] {
                let mut job =
                    TorchJob::new(&tiny_cpu_spec(model, JobKind::Infer, precision)).unwrap();
                let before = snapshot(&job);
                job.warm_up(1).unwrap();
                assert_eq!(job.step().unwrap(), 2);
                assert_eq!(changed(&before, &job), Vec::<String>::new(), "{model}");
                let any_grad = job
                    ._var_store
                    .trainable_variables()
                    .iter()
                    .any(|p| p.grad().defined());
                assert!(!any_grad, "{model} {precision:?}");
            }
        }
    }

    #[test]
    fn gpt2_targets_are_the_inputs_shifted_left_with_the_last_ignored() {
        let job = TorchJob::new(&tiny_cpu_spec(
            ModelKind::Gpt2Small,
            JobKind::Train,
            Precision::Fp32,
        ))
        .unwrap();
        let (inputs, targets) = (&job.batch.inputs, &job.batch.targets);
        assert_eq!(targets.size(), [2, 16]);
        assert!(inputs.narrow(1, 1, 15).equal(&targets.narrow(1, 0, 15)));
        let last = Tensor::full([2, 1], -100, (Kind::Int64, Device::Cpu));
        assert!(targets.narrow(1, 15, 1).equal(&last));
    }

    #[test]
    fn channels_last_relays_convolution_weights_and_images() {
        for model in [ModelKind::Resnet50, ModelKind::VitB16] {
            let spec = TorchJobSpec {
                channels_last: true,
                ..tiny_cpu_spec(model, JobKind::Train, Precision::Bf16)
            };
            let mut job = TorchJob::new(&spec).unwrap();
            let channels_innermost = |t: &Tensor| t.stride()[1] == 1;
            assert!(channels_innermost(&job.batch.inputs), "{model} images");
            for param in job._var_store.trainable_variables() {
                if param.dim() == 4 {
                    assert!(
                        channels_innermost(&param),
                        "{model} weight {:?}",
                        param.size()
                    );
                }
            }
            job.step().unwrap();
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_batch() {
        let spec = tiny_cpu_spec(ModelKind::BertBase, JobKind::Infer, Precision::Fp32);
        let (a, b) = (TorchJob::new(&spec).unwrap(), TorchJob::new(&spec).unwrap());
        assert!(a.batch.inputs.equal(&b.batch.inputs));
        let other = TorchJob::new(&TorchJobSpec { seed: 1, ..spec }).unwrap();
        assert!(!a.batch.inputs.equal(&other.batch.inputs));
    }
}
