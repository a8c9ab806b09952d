// CUDA graphs for the shim (see shim.rs's CudaGraph): capture what the calling thread queues
// on a CUDA device, then replay it with one launch. Eager PyTorch launches each kernel of a
// forward pass from the host (ResNet-50: 53 convolutions, 53 batch norms, 49 ReLUs and
// more, each one kernel or several; the count was not profiled); when the host is slower
// than the GPU, the GPU waits for launches, and a replay removes that wait.
//
// at::cuda::CUDAGraph needs CUDA's runtime headers, which build.rs finds beside the PyPI
// wheel's CUDA libraries (or in CUDA_HOME); without them it defines GPUSHARE_CUDA_GRAPHS=0
// and every call here fails with a message that says so. Streams go through c10's generic
// device-guard interface, which needs no CUDA header.
//
// Like shim.cpp: every function returns NULL on success or a message (valid until the next
// call on the same thread); no C++ exception crosses into Rust.

#include "shim_guard.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/Stream.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>

#if GPUSHARE_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#endif

namespace {

using gpushare_shim::guarded;

#if GPUSHARE_CUDA_GRAPHS

const c10::impl::DeviceGuardImplInterface* cuda_guard() {
  return c10::impl::getDeviceGuardImpl(at::kCUDA);
}

// A graph being captured or ready to replay. While capturing, the capturing thread's current
// stream is a side stream (capture cannot use the legacy default stream) and autocast's cast
// cache is off (a cached cast made outside the graph must not be read inside it, as
// torch.cuda.graph's documentation requires of autocast).
struct Graph {
  explicit Graph(c10::Stream previous) : previous_stream(previous) {}
  at::cuda::CUDAGraph graph;
  c10::Stream previous_stream;
  bool previous_cache_enabled = true;
  bool capturing = false;

  // Puts the thread's stream and autocast's cache back as they were before the capture.
  void restore() {
    if (capturing) {
      cuda_guard()->exchangeStream(previous_stream);
      at::autocast::set_autocast_cache_enabled(previous_cache_enabled);
      capturing = false;
    }
  }
};

#endif

const char* no_graphs() {
  gpushare_shim::last_error =
      "this build has no CUDA graphs: CUDA's runtime headers (cuda_runtime_api.h) were not "
      "found when it was built; set CUDA_HOME to a CUDA toolkit and rebuild";
  return gpushare_shim::last_error.c_str();
}

}  // namespace

extern "C" {

// Whether this build can capture graphs at all.
bool gpushare_cuda_graphs_built() { return GPUSHARE_CUDA_GRAPHS != 0; }

// A fresh memory pool id (torch.cuda.graph_pool_handle()): graphs captured into one pool
// share its memory, which is safe when they are replayed one after another on one stream.
const char* gpushare_cuda_graph_pool(uint64_t* first, uint64_t* second) {
#if GPUSHARE_CUDA_GRAPHS
  return guarded([&] {
    const auto pool = at::cuda::graph_pool_handle();
    *first = pool.first;
    *second = pool.second;
  });
#else
  (void)first;
  (void)second;
  return no_graphs();
#endif
}

// Starts capturing what this thread queues on CUDA device `device_idx`, into pool
// (first, second). Work queued before is finished first. The caller owns `*out` and must
// call gpushare_cuda_graph_end on it (capture failed or not) before anything else.
const char* gpushare_cuda_graph_begin(int device_idx, uint64_t first, uint64_t second,
                                      void** out) {
#if GPUSHARE_CUDA_GRAPHS
  return guarded([&] {
    const c10::Device device(at::kCUDA, static_cast<c10::DeviceIndex>(device_idx));
    const auto previous = cuda_guard()->getStream(device);
    previous.synchronize();
    auto graph = std::make_unique<Graph>(previous);
    const auto side = cuda_guard()->getStreamFromGlobalPool(device, /*isHighPriority=*/false);
    cuda_guard()->exchangeStream(side);
    graph->previous_cache_enabled = at::autocast::is_autocast_cache_enabled();
    at::autocast::set_autocast_cache_enabled(false);
    graph->capturing = true;
    try {
      // Thread-local mode: another thread of the process (the server's HTTP workers, a
      // sampler) may call CUDA while this one captures.
      graph->graph.capture_begin({first, second}, cudaStreamCaptureModeThreadLocal);
    } catch (...) {
      graph->restore();
      throw;
    }
    *out = graph.release();
  });
#else
  (void)device_idx;
  (void)first;
  (void)second;
  (void)out;
  return no_graphs();
#endif
}

// Ends the capture begun on `graph` and makes it replayable; the thread's stream is back to
// what it was even when this fails (an operation that cannot be captured, such as a host
// synchronization, invalidates the capture and is reported here).
const char* gpushare_cuda_graph_end(void* graph) {
#if GPUSHARE_CUDA_GRAPHS
  auto* g = static_cast<Graph*>(graph);
  const char* ended = guarded([&] { g->graph.capture_end(); });
  const std::string end_error = ended != nullptr ? ended : "";
  // restore() must run even when capture_end threw; its own failure matters less.
  const char* restored = guarded([&] { g->restore(); });
  if (ended == nullptr) {
    return restored;
  }
  gpushare_shim::last_error = end_error;
  return gpushare_shim::last_error.c_str();
#else
  (void)graph;
  return no_graphs();
#endif
}

// Queues one replay of the captured work on the thread's current stream of the device.
const char* gpushare_cuda_graph_replay(void* graph) {
#if GPUSHARE_CUDA_GRAPHS
  return guarded([&] { static_cast<Graph*>(graph)->graph.replay(); });
#else
  (void)graph;
  return no_graphs();
#endif
}

void gpushare_cuda_graph_free(void* graph) {
#if GPUSHARE_CUDA_GRAPHS
  auto* g = static_cast<Graph*>(graph);
  try {
    g->restore();
  } catch (...) {
  }
  delete g;
#else
  (void)graph;
#endif
}

}  // extern "C"
