//! CUDA graphs (`torch.cuda.CUDAGraph`) over `cuda_graph.cpp`: capture what this thread
//! queues on a CUDA device once, then replay all of it with one launch.
//!
//! Why: eager libtorch launches every kernel from the host. ResNet-50's forward pass has
//! 53 convolutions, 53 batch norms and 49 ReLUs among its ops, each one kernel or more
//! (not profiled); when the host issues them more slowly than the GPU runs
//! them (a server's CPUs also parse HTTP), the GPU idles between kernels. A replay runs the
//! same kernels on the same addresses with one launch.
//!
//! What a caller must hold to: a graph reads and writes the exact tensors it was captured
//! with, so inputs go into a static tensor before [`CudaGraph::replay`] and outputs are
//! read from the static tensor the capture produced; shapes are fixed at capture; nothing
//! in the captured closure may synchronize with the host (`.item()`, a copy to the CPU);
//! and cuDNN must have chosen its algorithms for those shapes already (run the same work
//! eagerly first), since benchmarking inside a capture fails. Replays of graphs sharing one
//! [`GraphPool`] must not overlap: queue them on one stream, as this thread's current
//! stream does.

use std::ffi::{c_char, c_int, c_void};

use super::error::TorchError;
use super::shim::{check, device_index};

extern "C" {
    fn gpushare_cuda_graphs_built() -> bool;
    fn gpushare_cuda_graph_pool(first: *mut u64, second: *mut u64) -> *const c_char;
    fn gpushare_cuda_graph_begin(
        device_idx: c_int,
        first: u64,
        second: u64,
        out: *mut *mut c_void,
    ) -> *const c_char;
    fn gpushare_cuda_graph_end(graph: *mut c_void) -> *const c_char;
    fn gpushare_cuda_graph_replay(graph: *mut c_void) -> *const c_char;
    fn gpushare_cuda_graph_free(graph: *mut c_void);
}

/// Whether this build can capture CUDA graphs (CUDA's runtime headers were found when the
/// shim was compiled).
pub fn cuda_graphs_built() -> bool {
    // SAFETY: no arguments, no state.
    unsafe { gpushare_cuda_graphs_built() }
}

/// A memory pool that graphs captured into it share (`torch.cuda.graph_pool_handle()`):
/// one model's graphs for several batch sizes then need about the memory of the largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphPool {
    id: (u64, u64),
}

impl GraphPool {
    pub fn new() -> Result<Self, TorchError> {
        let (mut first, mut second) = (0_u64, 0_u64);
        // SAFETY: both out-pointers are valid for writes for the call's duration.
        let message = unsafe { gpushare_cuda_graph_pool(&mut first, &mut second) };
        check("at::cuda::graph_pool_handle", message)?;
        Ok(Self {
            id: (first, second),
        })
    }
}

/// A captured, replayable CUDA graph.
#[derive(Debug)]
pub struct CudaGraph {
    raw: *mut c_void,
}

// SAFETY: a CUDA graph executable may be launched or destroyed from any host thread; only
// the owner of this value touches it.
unsafe impl Send for CudaGraph {}

impl CudaGraph {
    /// Captures what `work` queues on CUDA device `device_idx` from this thread into a
    /// graph in `pool`, and returns the graph with what `work` returned (the tensors the
    /// graph writes its results into). Work queued before is finished first; `work` runs
    /// on a side stream with autocast's cast cache off, and this thread's stream is back
    /// as it was afterwards, whether or not the capture succeeded.
    pub fn capture<T>(
        device_idx: usize,
        pool: GraphPool,
        work: impl FnOnce() -> Result<T, TorchError>,
    ) -> Result<(Self, T), TorchError> {
        let mut raw: *mut c_void = std::ptr::null_mut();
        let (first, second) = pool.id;
        // SAFETY: the out-pointer is valid for writes; on success it holds a graph that is
        // capturing, which `end` below ends whatever `work` does.
        let message =
            unsafe { gpushare_cuda_graph_begin(device_index(device_idx), first, second, &mut raw) };
        check("at::cuda::CUDAGraph::capture_begin", message)?;
        let graph = Self { raw };
        // A panic in `work` would leave the capture open: end it on the way out too.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        // SAFETY: `raw` is a graph begun above and not ended yet.
        let ended = check("at::cuda::CUDAGraph::capture_end", unsafe {
            gpushare_cuda_graph_end(graph.raw)
        });
        match result {
            Ok(Ok(outputs)) => ended.map(|()| (graph, outputs)),
            // The work's own error says more than the failed capture it caused.
            Ok(Err(err)) => Err(err),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Queues one replay on this thread's current stream of the graph's device. It returns
    /// at once; an event recorded after it completes when the replay has.
    pub fn replay(&self) -> Result<(), TorchError> {
        // SAFETY: `raw` is a captured graph owned by `self`.
        let message = unsafe { gpushare_cuda_graph_replay(self.raw) };
        check("at::cuda::CUDAGraph::replay", message)
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: `raw` came from gpushare_cuda_graph_begin and is freed only here.
        unsafe { gpushare_cuda_graph_free(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_the_torch_feature_have_cuda_graphs() {
        // The development machines and CI build against the PyPI wheel, whose CUDA runtime
        // headers build.rs finds; a build without them would lose `--cuda-graphs` silently.
        assert!(cuda_graphs_built());
    }

    #[test]
    fn capturing_on_a_device_that_does_not_exist_is_an_error_not_a_crash() {
        if tch::Cuda::device_count() > 0 {
            return;
        }
        let pool = GraphPool::new();
        let captured = pool.and_then(|pool| CudaGraph::capture(0, pool, || Ok(())));
        let err = captured.expect_err("no CUDA device here");
        assert!(matches!(err, TorchError::Shim { .. }), "{err:?}");
    }
}
