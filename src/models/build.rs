//! Building a network on its device and the guards around running it: what a torch job
//! (`workload::torch`) and the inference server (`serve`) share. Checks the device, seeds
//! libtorch, turns tch's constructor panics into errors, and waits for the GPU.

use std::panic::{self, AssertUnwindSafe};

use tch::{nn, Cuda, Device, TchError};

use super::error::TorchError;
use super::layers::count_parameters;
use super::network::Network;
use super::shim::{self, AutocastGuard};
use super::spec::{device_name, ModelKind, Precision, TorchJobSettings};

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

/// Checks the device, seeds libtorch and builds the network of `settings` on its device
/// (channels-last when asked): what a train or infer job and the inference server share.
pub fn build_on_device(settings: &TorchJobSettings) -> Result<(nn::VarStore, Network), TorchError> {
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
pub fn synchronize_device(device: Device) -> Result<(), TorchError> {
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

pub fn autocast_guard(settings: &TorchJobSettings) -> Result<Option<AutocastGuard>, TorchError> {
    match settings.precision {
        Precision::Fp32 => Ok(None),
        Precision::Bf16 => AutocastGuard::bf16(settings.device).map(Some),
    }
}

pub fn step_error(
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
