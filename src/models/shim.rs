//! Safe wrappers over `shim.cpp`, the few ATen calls tch 0.24 does not expose: bf16
//! autocast per device type, the CUDA caching allocator's peak, CUDA events, PyTorch's
//! fused optimizer kernels, clearing gradients to None, channels-last copies and pinning
//! host memory. This module owns the
//! `unsafe` FFI of the torch workloads; nothing else here calls C.

use std::ffi::{c_char, c_int, c_void, CStr};

use tch::{Device, Tensor};
use torch_sys::C_tensor;

use super::error::TorchError;

// Every function returns NULL on success, or a message that stays valid until the next
// shim call on the same thread (shim.cpp keeps it in a thread-local string).
extern "C" {
    fn gpushare_autocast_bf16_enter(
        is_cuda: c_int,
        prev_enabled: *mut bool,
        prev_dtype: *mut i8,
    ) -> *const c_char;
    fn gpushare_autocast_exit(is_cuda: c_int, prev_enabled: bool, prev_dtype: i8) -> *const c_char;
    fn gpushare_autocast_state(is_cuda: c_int, enabled: *mut bool, dtype: *mut i8)
        -> *const c_char;
    fn gpushare_cuda_peak_allocated_bytes(device_idx: c_int, peak_bytes: *mut i64)
        -> *const c_char;
    fn gpushare_cuda_reset_peak_stats(device_idx: c_int) -> *const c_char;
    fn gpushare_cuda_event_record(device_idx: c_int, out: *mut *mut c_void) -> *const c_char;
    fn gpushare_cuda_event_synchronize(event: *mut c_void) -> *const c_char;
    fn gpushare_cuda_event_free(event: *mut c_void);
    fn gpushare_fused_adamw_step(
        params: *const *const C_tensor,
        grads: *const *const C_tensor,
        exp_avgs: *const *const C_tensor,
        exp_avg_sqs: *const *const C_tensor,
        steps: *const *const C_tensor,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
    ) -> *const c_char;
    fn gpushare_fused_sgd_step(
        params: *const *const C_tensor,
        grads: *const *const C_tensor,
        momentum_buffers: *const *const C_tensor,
        n: usize,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
        is_first_step: bool,
    ) -> *const c_char;
    fn gpushare_clear_grads(params: *const *const C_tensor, n: usize) -> *const c_char;
    fn gpushare_channels_last(tensor: *const C_tensor, out: *mut *mut C_tensor) -> *const c_char;
    fn gpushare_pin_memory(tensor: *const C_tensor, out: *mut *mut C_tensor) -> *const c_char;
}

/// Turns a shim result into a `Result`, keeping libtorch's message without the C++ stack
/// trace it appends.
pub(super) fn check(call: &'static str, message: *const c_char) -> Result<(), TorchError> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result points at shim.cpp's NUL-terminated thread-local message,
    // which nothing overwrites before this thread's next shim call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    let message = text
        .split("\nException raised from")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    Err(TorchError::Shim { call, message })
}

fn is_cuda(device: Device) -> c_int {
    c_int::from(device.is_cuda())
}

fn pointers(tensors: &[Tensor]) -> Vec<*const C_tensor> {
    tensors.iter().map(Tensor::as_ptr).collect()
}

/// Runs ops in bf16 autocast on `device`'s type until dropped, as
/// `torch.autocast(device, dtype=torch.bfloat16)` does; the previous state comes back on drop.
#[must_use = "autocast ends when the guard is dropped"]
#[derive(Debug)]
pub struct AutocastGuard {
    is_cuda: c_int,
    prev_enabled: bool,
    prev_dtype: i8,
}

impl AutocastGuard {
    pub fn bf16(device: Device) -> Result<Self, TorchError> {
        let mut guard = Self {
            is_cuda: is_cuda(device),
            prev_enabled: false,
            prev_dtype: 0,
        };
        // SAFETY: both out-pointers are valid for writes for the call's duration.
        let message = unsafe {
            gpushare_autocast_bf16_enter(
                guard.is_cuda,
                &mut guard.prev_enabled,
                &mut guard.prev_dtype,
            )
        };
        check("at::autocast::set_autocast_enabled", message)?;
        Ok(guard)
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // SAFETY: plain values in; the message, if any, is read by `check` right away.
        let message =
            unsafe { gpushare_autocast_exit(self.is_cuda, self.prev_enabled, self.prev_dtype) };
        // Restoring thread-local flags that `bf16` read moments ago cannot fail in practice,
        // and a destructor has no caller to hand an error to.
        let _ = check("at::autocast::set_autocast_enabled", message);
    }
}

/// Whether autocast is on for `device`'s type on this thread.
pub fn autocast_enabled(device: Device) -> Result<bool, TorchError> {
    let (mut enabled, mut dtype) = (false, 0_i8);
    // SAFETY: both out-pointers are valid for writes for the call's duration.
    let message = unsafe { gpushare_autocast_state(is_cuda(device), &mut enabled, &mut dtype) };
    check("at::autocast::is_autocast_enabled", message)?;
    Ok(enabled)
}

/// Peak bytes the CUDA caching allocator handed out on `device_idx` since the last reset
/// (`torch.cuda.max_memory_allocated`).
pub fn cuda_peak_allocated_bytes(device_idx: usize) -> Result<u64, TorchError> {
    let mut peak_bytes = 0_i64;
    // SAFETY: the out-pointer is valid for writes for the call's duration.
    let message =
        unsafe { gpushare_cuda_peak_allocated_bytes(device_index(device_idx), &mut peak_bytes) };
    check("c10 DeviceAllocator::getDeviceStats", message)?;
    Ok(u64::try_from(peak_bytes).unwrap_or(0))
}

/// Starts the peak of [`cuda_peak_allocated_bytes`] again from what is allocated now.
pub fn cuda_reset_peak_stats(device_idx: usize) -> Result<(), TorchError> {
    // SAFETY: a plain value in.
    let message = unsafe { gpushare_cuda_reset_peak_stats(device_index(device_idx)) };
    check("c10 DeviceAllocator::resetPeakStats", message)
}

/// A marker in a CUDA device's current stream (`torch.cuda.Event().record()`): it completes
/// once everything queued on that stream before it has, so a caller can wait for one batch
/// while later batches are still queued behind it.
#[derive(Debug)]
pub struct CudaEvent {
    raw: *mut c_void,
}

// SAFETY: a c10::Event is a handle to a CUDA event, which any host thread of the process
// may wait on or destroy; only the owner of this value touches it.
unsafe impl Send for CudaEvent {}

impl CudaEvent {
    /// Records an event on the current stream of CUDA device `device_idx`.
    pub fn record(device_idx: usize) -> Result<Self, TorchError> {
        let mut raw: *mut c_void = std::ptr::null_mut();
        // SAFETY: the out-pointer is valid for writes; on success it holds a fresh event.
        let message = unsafe { gpushare_cuda_event_record(device_index(device_idx), &mut raw) };
        check("c10::Event::record", message)?;
        Ok(Self { raw })
    }

    /// Waits until the event has completed. An error of the device work queued before it
    /// (an illegal access, a fault under MPS) comes back here.
    pub fn synchronize(&self) -> Result<(), TorchError> {
        // SAFETY: `raw` is a live event owned by `self`.
        let message = unsafe { gpushare_cuda_event_synchronize(self.raw) };
        check("c10::Event::synchronize", message)
    }
}

impl Drop for CudaEvent {
    fn drop(&mut self) {
        // SAFETY: `raw` came from gpushare_cuda_event_record and is freed only here.
        unsafe { gpushare_cuda_event_free(self.raw) }
    }
}

pub(super) fn device_index(device_idx: usize) -> c_int {
    // CUDA device indices are small (c10 stores them in an i8); saturating keeps an absurd
    // index an error from libtorch instead of a wrapped, valid-looking one.
    c_int::try_from(device_idx).unwrap_or(c_int::MAX)
}

/// AdamW hyperparameters, PyTorch's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWParams {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
}

/// One `torch.optim.AdamW(fused=True)` step: increments `steps` and updates `params`,
/// `exp_avgs` and `exp_avg_sqs` in place. All slices have one entry per parameter.
pub fn fused_adamw_step(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    steps: &[Tensor],
    hyper: AdamWParams,
) -> Result<(), TorchError> {
    let n = params.len();
    if [grads.len(), exp_avgs.len(), exp_avg_sqs.len(), steps.len()] != [n; 4] {
        return Err(TorchError::Shim {
            call: "at::_fused_adamw_",
            message: "tensor lists of different lengths".to_owned(),
        });
    }
    let (p, g, m, v, s) = (
        pointers(params),
        pointers(grads),
        pointers(exp_avgs),
        pointers(exp_avg_sqs),
        pointers(steps),
    );
    // SAFETY: five arrays of `n` live tensor pointers, borrowed for the call's duration.
    let message = unsafe {
        gpushare_fused_adamw_step(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            s.as_ptr(),
            n,
            hyper.lr,
            hyper.beta1,
            hyper.beta2,
            hyper.weight_decay,
            hyper.eps,
        )
    };
    check("at::_fused_adamw_", message)
}

/// SGD hyperparameters (no dampening, no Nesterov), PyTorch's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdParams {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

/// One `torch.optim.SGD(fused=True)` step, updating `params` and `momentum_buffers` in
/// place. On the first step the buffers are uninitialised and the kernel fills them.
pub fn fused_sgd_step(
    params: &[Tensor],
    grads: &[Tensor],
    momentum_buffers: &[Tensor],
    hyper: SgdParams,
    is_first_step: bool,
) -> Result<(), TorchError> {
    let n = params.len();
    if [grads.len(), momentum_buffers.len()] != [n; 2] {
        return Err(TorchError::Shim {
            call: "at::_fused_sgd_",
            message: "tensor lists of different lengths".to_owned(),
        });
    }
    let (p, g, b) = (
        pointers(params),
        pointers(grads),
        pointers(momentum_buffers),
    );
    // SAFETY: three arrays of `n` live tensor pointers, borrowed for the call's duration.
    let message = unsafe {
        gpushare_fused_sgd_step(
            p.as_ptr(),
            g.as_ptr(),
            b.as_ptr(),
            n,
            hyper.lr,
            hyper.momentum,
            hyper.weight_decay,
            is_first_step,
        )
    };
    check("at::_fused_sgd_", message)
}

/// Sets the gradients of `params` to undefined (PyTorch's `zero_grad(set_to_none=True)`).
pub fn clear_grads(params: &[Tensor]) -> Result<(), TorchError> {
    let p = pointers(params);
    // SAFETY: an array of `p.len()` live tensor pointers, borrowed for the call's duration.
    let message = unsafe { gpushare_clear_grads(p.as_ptr(), p.len()) };
    check("at::Tensor::mutable_grad", message)
}

/// A channels-last (NHWC in memory) copy of a 4-d tensor, or the same storage if it is one
/// already (`tensor.contiguous(memory_format=torch.channels_last)`).
pub fn channels_last(tensor: &Tensor) -> Result<Tensor, TorchError> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: a live tensor in; on success `out` is a fresh `new at::Tensor`.
    let message = unsafe { gpushare_channels_last(tensor.as_ptr(), &mut out) };
    check("at::Tensor::contiguous(ChannelsLast)", message)?;
    // SAFETY: `out` came from `new at::Tensor` and nothing else owns it; tch's `Tensor`
    // frees it with libtch's `at_free` (`delete`), which matches.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// A page-locked copy of a CPU tensor (`tensor.pin_memory()`), from which copies to a GPU
/// are one asynchronous DMA transfer. Needs a CUDA device in the process.
pub fn pin_memory(tensor: &Tensor) -> Result<Tensor, TorchError> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: a live tensor in; on success `out` is a fresh `new at::Tensor`.
    let message = unsafe { gpushare_pin_memory(tensor.as_ptr(), &mut out) };
    check("at::Tensor::pin_memory", message)?;
    // SAFETY: as in `channels_last`: `out` came from `new at::Tensor` and tch frees it.
    Ok(unsafe { Tensor::from_ptr(out) })
}

#[cfg(test)]
mod tests {
    use tch::{Kind, Tensor};

    use super::*;

    #[test]
    fn bf16_autocast_runs_cpu_matmuls_in_bf16_and_restores_the_previous_state() {
        let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([8, 2], (Kind::Float, Device::Cpu));
        assert!(!autocast_enabled(Device::Cpu).unwrap());
        {
            let _outer = AutocastGuard::bf16(Device::Cpu).unwrap();
            {
                let _inner = AutocastGuard::bf16(Device::Cpu).unwrap();
                assert_eq!(a.matmul(&b).kind(), Kind::BFloat16);
            }
            assert!(autocast_enabled(Device::Cpu).unwrap());
            assert_eq!(a.matmul(&b).kind(), Kind::BFloat16);
        }
        assert!(!autocast_enabled(Device::Cpu).unwrap());
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
    }

    #[test]
    fn channels_last_keeps_values_and_strides_channels_innermost() {
        let nchw = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        let nhwc = channels_last(&nchw).unwrap();
        assert_eq!(nhwc.size(), [2, 3, 4, 5]);
        assert_eq!(nhwc.stride(), [60, 1, 15, 3]);
        assert_eq!(
            (nhwc - &nchw).abs().max().double_value(&[]),
            0.0,
            "values changed"
        );
    }

    #[test]
    fn pinning_without_a_gpu_is_an_error_not_a_crash() {
        if tch::Cuda::is_available() {
            return;
        }
        let host = Tensor::ones([4], (Kind::Float, Device::Cpu));
        let err = pin_memory(&host).unwrap_err();
        assert!(
            matches!(
                err,
                TorchError::Shim {
                    call: "at::Tensor::pin_memory",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn clearing_grads_makes_them_undefined() {
        let param = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        (&param * 2.0).sum(Kind::Float).backward();
        assert!(param.grad().defined());
        clear_grads(std::slice::from_ref(&param)).unwrap();
        assert!(!param.grad().defined());
    }

    #[test]
    fn shim_errors_carry_libtorchs_message_without_its_stack_trace() {
        let not_4d = Tensor::ones([2, 3, 4], (Kind::Float, Device::Cpu));
        let err = channels_last(&not_4d).unwrap_err();
        let TorchError::Shim { call, message } = &err else {
            panic!("unexpected error {err:?}");
        };
        assert_eq!(*call, "at::Tensor::contiguous(ChannelsLast)");
        assert!(message.contains("rank 4"), "{message}");
        assert!(!message.contains("Exception raised from"), "{message}");
    }
}
