//! A torch job: one model, one synthetic batch, one optimizer, stepped by the caller. It
//! owns the libtorch state of one tenant and must not time or report anything itself: the
//! caller times [`TorchJob::step`], which returns only once the device has finished.
//!
//! A step does what one iteration of `bench/reference/pytorch_eager.py` does, so the two
//! can be compared: train is `zero_grad(set_to_none)`, forward and loss (in bf16 autocast
//! when asked), backward, fused optimizer step; infer is a forward pass in evaluation mode
//! without autograd.

use tch::{nn, Device};

use crate::models::layers::count_parameters;
use crate::models::shim;
use crate::models::{
    autocast_guard, build_on_device, step_error, synchronize_device, CudaGraph, GraphPool,
    ModelKind, Network, SyntheticBatch, TorchError, TorchJobSettings, TorchJobSpec,
};

use super::optim::Optimizer;

/// One tenant's model, synthetic batch and optimizer on one device, ready to step.
#[derive(Debug)]
pub struct TorchJob {
    settings: TorchJobSettings,
    network: Network,
    batch: SyntheticBatch,
    /// Present exactly for train jobs.
    optimizer: Option<Optimizer>,
    /// `cuda_graph` infer jobs, once warmed up: a step is a replay of this.
    graph: Option<CudaGraph>,
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
            graph: None,
            _var_store: var_store,
        })
    }

    /// Runs `n_steps` steps whose time does not count: the caching allocator reaches its
    /// steady state and cuDNN finishes choosing algorithms. A `cuda_graph` job captures
    /// its graph in the first.
    pub fn warm_up(&mut self, n_steps: usize) -> Result<(), TorchError> {
        for _ in 0..n_steps {
            self.step()?;
        }
        Ok(())
    }

    /// One train step or inference batch; returns once the device has finished it, with
    /// the number of items (images or sequences) it processed. A `cuda_graph` job's step
    /// replays a graph of an infer step, captured (after one eager step) in its first.
    pub fn step(&mut self) -> Result<u64, TorchError> {
        if self.settings.cuda_graph && self.graph.is_none() {
            self.capture()?;
        }
        match (&mut self.optimizer, &self.graph) {
            (Some(optimizer), _) => {
                train_step(&self.network, &self.batch, &self.settings, optimizer)?
            }
            (None, Some(graph)) => graph.replay()?,
            (None, None) => infer_step(&self.network, &self.batch, &self.settings)?,
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

    /// Captures one infer step (the same kernels on the same synthetic batch) as a CUDA
    /// graph. The step has run eagerly at least once, so cuDNN has chosen its algorithms.
    fn capture(&mut self) -> Result<(), TorchError> {
        let Device::Cuda(device_idx) = self.settings.device else {
            // `resolve` refuses cuda_graph off a CUDA device; nothing to capture here.
            return Ok(());
        };
        infer_step(&self.network, &self.batch, &self.settings)?;
        let (graph, ()) = CudaGraph::capture(device_idx, GraphPool::new()?, || {
            infer_step(&self.network, &self.batch, &self.settings)
        })?;
        self.graph = Some(graph);
        Ok(())
    }
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

// A worker may build the job on one thread and step it on another.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<TorchJob>();
};

#[cfg(test)]
mod tests {
    use tch::{Kind, Tensor};

    use super::*;
    use crate::models::{JobKind, OptimizerKind, Precision};

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
