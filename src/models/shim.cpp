// A small C ABI over the ATen calls that tch 0.24 does not expose, compiled by build.rs when
// the `torch` feature is on and called only from shim.rs. It owns no state of its own.
//
// Why each call exists:
// - autocast: tch's `autocast` only toggles CUDA autocast at its default dtype (float16) and
//   does nothing on CPU; Python's `torch.autocast(device, dtype=torch.bfloat16)` sets the
//   dtype per device type, which these calls mirror.
// - allocator statistics: `torch.cuda.max_memory_allocated` lives in libtorch_python; the
//   caching allocator's own counters are reachable only through C++ virtual calls.
// - CUDA events: tch can only synchronize a whole device; the inference server queues batch
//   k+1 before batch k is finished and must wait for batch k alone. c10::Event reaches
//   CUDA through the device guard libtorch_cuda registers, so no CUDA header is needed.
// - fused optimizers and clearing gradients to None: tch's optimizers loop over parameters, several
//   kernels each; PyTorch's fused ones update every parameter in a few kernels, and a step
//   must do the same work as the Python reference to be compared with it.
//
// Every function returns NULL on success or a message (valid until the next call on the
// same thread) when ATen threw; no C++ exception crosses into Rust.

#include "shim_guard.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/Event.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace {

using gpushare_shim::guarded;

// tch's C_tensor is libtch's `torch::Tensor*`, the same type as `at::Tensor*`.
std::vector<at::Tensor> tensor_list(at::Tensor* const* tensors, size_t n) {
  std::vector<at::Tensor> list;
  list.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    list.push_back(*tensors[i]);
  }
  return list;
}

at::DeviceType device_type(int is_cuda) { return is_cuda ? at::kCUDA : at::kCPU; }

}  // namespace

extern "C" {

// Mirrors `torch.autocast(device, dtype=torch.bfloat16).__enter__`, saving the previous
// state for gpushare_autocast_exit.
const char* gpushare_autocast_bf16_enter(int is_cuda, bool* prev_enabled, int8_t* prev_dtype) {
  return guarded([&] {
    const auto type = device_type(is_cuda);
    *prev_enabled = at::autocast::is_autocast_enabled(type);
    *prev_dtype = static_cast<int8_t>(at::autocast::get_autocast_dtype(type));
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::increment_nesting();
  });
}

// Mirrors `torch.autocast.__exit__`: the cast cache is cleared when the outermost region ends.
const char* gpushare_autocast_exit(int is_cuda, bool prev_enabled, int8_t prev_dtype) {
  return guarded([&] {
    const auto type = device_type(is_cuda);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(type, prev_enabled);
    at::autocast::set_autocast_dtype(type, static_cast<at::ScalarType>(prev_dtype));
  });
}

// Whether autocast is on for the device type and its dtype (ATen ScalarType code).
const char* gpushare_autocast_state(int is_cuda, bool* enabled, int8_t* dtype) {
  return guarded([&] {
    const auto type = device_type(is_cuda);
    *enabled = at::autocast::is_autocast_enabled(type);
    *dtype = static_cast<int8_t>(at::autocast::get_autocast_dtype(type));
  });
}

// Peak bytes handed out by the CUDA caching allocator since the last reset, the figure
// `torch.cuda.max_memory_allocated` reports.
const char* gpushare_cuda_peak_allocated_bytes(int device_idx, int64_t* peak_bytes) {
  return guarded([&] {
    auto* allocator = c10::getDeviceAllocator(at::kCUDA);
    const auto stats = allocator->getDeviceStats(static_cast<c10::DeviceIndex>(device_idx));
    const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    *peak_bytes = stats.allocated_bytes[aggregate].peak;
  });
}

const char* gpushare_cuda_reset_peak_stats(int device_idx) {
  return guarded([&] {
    c10::getDeviceAllocator(at::kCUDA)->resetPeakStats(static_cast<c10::DeviceIndex>(device_idx));
  });
}

// An event recorded on the current stream of CUDA device `device_idx`: it completes once
// all work queued there before it has. The caller owns `*out` and frees it with
// gpushare_cuda_event_free.
const char* gpushare_cuda_event_record(int device_idx, void** out) {
  return guarded([&] {
    const c10::Device device(at::kCUDA, static_cast<c10::DeviceIndex>(device_idx));
    auto event = std::make_unique<c10::Event>(at::kCUDA);
    event->record(c10::impl::getDeviceGuardImpl(at::kCUDA)->getStream(device));
    *out = event.release();
  });
}

// Blocks until the event has completed; an error of the work before it is thrown here.
const char* gpushare_cuda_event_synchronize(void* event) {
  return guarded([&] { static_cast<const c10::Event*>(event)->synchronize(); });
}

void gpushare_cuda_event_free(void* event) { delete static_cast<c10::Event*>(event); }

// `torch.optim.AdamW(fused=True).step()`: bump the step counters, then one fused update.
const char* gpushare_fused_adamw_step(at::Tensor* const* params, at::Tensor* const* grads,
                                      at::Tensor* const* exp_avgs, at::Tensor* const* exp_avg_sqs,
                                      at::Tensor* const* steps, size_t n, double lr, double beta1,
                                      double beta2, double weight_decay, double eps) {
  return guarded([&] {
    const c10::NoGradGuard no_grad;
    auto step_list = tensor_list(steps, n);
    at::_foreach_add_(step_list, 1);
    at::_fused_adamw_(tensor_list(params, n), tensor_list(grads, n), tensor_list(exp_avgs, n),
                      tensor_list(exp_avg_sqs, n), /*max_exp_avg_sqs=*/{}, step_list, lr, beta1,
                      beta2, weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false);
  });
}

// `torch.optim.SGD(fused=True).step()`; the caller allocates the momentum buffers with
// `empty_like` on the first step and says so, as `torch.optim.sgd._fused_sgd` does.
const char* gpushare_fused_sgd_step(at::Tensor* const* params, at::Tensor* const* grads,
                                    at::Tensor* const* momentum_buffers, size_t n, double lr,
                                    double momentum, double weight_decay, bool is_first_step) {
  return guarded([&] {
    const c10::NoGradGuard no_grad;
    at::_fused_sgd_(tensor_list(params, n), tensor_list(grads, n),
                    tensor_list(momentum_buffers, n), weight_decay, momentum, lr,
                    /*dampening=*/0.0, /*nesterov=*/false, /*maximize=*/false, is_first_step);
  });
}

// `optimizer.zero_grad()` (set_to_none=True, PyTorch's default): the next backward pass then
// writes fresh gradients instead of accumulating into zeroed ones, one kernel less each.
const char* gpushare_clear_grads(at::Tensor* const* params, size_t n) {
  return guarded([&] {
    for (size_t i = 0; i < n; ++i) {
      params[i]->mutable_grad().reset();
    }
  });
}

// `tensor.contiguous(memory_format=torch.channels_last)`; the result is a new tensor that
// the caller owns (tch frees it with `delete`, as libtch allocates its tensors with `new`).
const char* gpushare_channels_last(const at::Tensor* tensor, at::Tensor** out) {
  return guarded([&] {
    *out = new at::Tensor(tensor->contiguous(at::MemoryFormat::ChannelsLast));
  });
}

// `tensor.pin_memory()`: a page-locked copy of a CPU tensor for fast, asynchronous copies
// to the GPU. tch's pin_memory passes a device, which libtorch 2.11 warns is deprecated.
const char* gpushare_pin_memory(const at::Tensor* tensor, at::Tensor** out) {
  return guarded([&] { *out = new at::Tensor(tensor->pin_memory()); });
}

}  // extern "C"
