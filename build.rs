//! Build script. It records the git commit the binary is built from (for `run.json`'s
//! environment); with the `torch` feature it also links libtorch's CUDA library into every
//! executable and compiles the C++ shim (`src/models/shim.cpp`, `cuda_graph.cpp`). Each concern is
//! one function called from `main`.

use std::process::Command;

fn main() {
    git_commit();
    #[cfg(feature = "torch")]
    torch::configure();
}

fn git_commit() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=GPUSHARE_GIT_COMMIT={commit}");
    }
}

/// Compiled only with the `torch` feature: `cc` is an optional build dependency and
/// `DEP_TCH_LIBTORCH_LIB` exists only when torch-sys is built.
#[cfg(feature = "torch")]
mod torch {
    use std::env;
    use std::path::PathBuf;

    const SHIM_SOURCE: &str = "src/models/shim.cpp";
    const CUDA_GRAPH_SOURCE: &str = "src/models/cuda_graph.cpp";
    const SHIM_HEADER: &str = "src/models/shim_guard.h";

    pub fn configure() {
        let lib_dir = libtorch_lib_dir();
        link_torch_cuda(&lib_dir);
        set_runtime_search_path(&lib_dir);
        compile_shim(&lib_dir);
    }

    /// The folder holding libtorch*.so. torch-sys (`links = "tch"`) prints it as
    /// `cargo:libtorch_lib=`, which Cargo hands to direct dependents as this variable; that is
    /// why torch-sys is a direct dependency. It found the folder itself, from
    /// `LIBTORCH_USE_PYTORCH=1` and the python on PATH, or from `LIBTORCH`.
    fn libtorch_lib_dir() -> PathBuf {
        match env::var_os("DEP_TCH_LIBTORCH_LIB") {
            Some(dir) => PathBuf::from(dir),
            // A build script reports failure by panicking; this message is what the user sees.
            None => panic!(
                "torch-sys did not report libtorch's lib folder (DEP_TCH_LIBTORCH_LIB); \
                 build the torch feature through scripts/with-libtorch.sh"
            ),
        }
    }

    /// Keeps `libtorch_cuda.so` as a dependency of every executable. Nothing in our code or
    /// tch's calls into it directly, so with rustc's default `--as-needed` the linker drops it,
    /// its static initialisers never register the CUDA backend, and on a GPU machine
    /// `tch::Cuda::is_available()` is false. `rustc-link-arg` (not the -bins/-tests/-benches
    /// variants) also reaches the library's own unit-test executable, which none of those
    /// cover; an rlib ignores link arguments. RUSTFLAGS is no place for this: it would also
    /// apply to build scripts, which do not link libtorch.
    fn link_torch_cuda(lib_dir: &std::path::Path) {
        for arg in [
            format!("-L{}", lib_dir.display()),
            "-Wl,--no-as-needed".to_owned(),
            "-ltorch_cuda".to_owned(),
            // The CUDA-graph part of the shim calls c10's CUDA library directly.
            "-lc10_cuda".to_owned(),
            "-Wl,--as-needed".to_owned(),
        ] {
            println!("cargo:rustc-link-arg={arg}");
        }
    }

    /// Lets executables built here find libtorch without LD_LIBRARY_PATH. On another machine
    /// this folder does not exist and LD_LIBRARY_PATH (searched first) names theirs.
    fn set_runtime_search_path(lib_dir: &std::path::Path) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    }

    /// Compiles the shim against libtorch's headers, which sit beside its lib folder in both
    /// the PyPI wheel (`torch/include`) and the libtorch archive (`libtorch/include`). The
    /// CUDA-graph part also needs CUDA's runtime headers ([`cuda_include_dir`]); without
    /// them it is compiled to report that this build has no CUDA graphs.
    fn compile_shim(lib_dir: &std::path::Path) {
        println!("cargo:rerun-if-changed={SHIM_SOURCE}");
        println!("cargo:rerun-if-changed={CUDA_GRAPH_SOURCE}");
        println!("cargo:rerun-if-changed={SHIM_HEADER}");
        println!("cargo:rerun-if-env-changed=CUDA_HOME");
        let include_dir = lib_dir.join("../include");
        let mut build = cc::Build::new();
        build
            .cpp(true)
            .std("c++17")
            .include(&include_dir)
            // torch 2.11's wheels and cxx11 libtorch archives use the new libstdc++ ABI; the
            // shim must match it to link against libtorch's std::string-taking functions.
            .define("_GLIBCXX_USE_CXX11_ABI", "1")
            .warnings(false)
            // Full C++ debug info (what `debug = "line-tables-only"` turns into for cc) would
            // add megabytes to every executable for a few lines of glue.
            .debug(false)
            .file(SHIM_SOURCE)
            .file(CUDA_GRAPH_SOURCE);
        match cuda_include_dir(lib_dir) {
            Some(cuda_include) => {
                build
                    .include(cuda_include)
                    .define("GPUSHARE_CUDA_GRAPHS", "1");
            }
            None => {
                println!(
                    "cargo:warning=CUDA's runtime headers (cuda_runtime_api.h, crt/host_config.h) \
                     were not found beside libtorch or in CUDA_HOME: this build has no CUDA \
                     graphs (scripts/setup-libtorch.sh installs them)"
                );
                build.define("GPUSHARE_CUDA_GRAPHS", "0");
            }
        }
        build.compile("gpushare_torch_shim");
    }

    /// The folder holding `cuda_runtime_api.h` and `crt/`: `CUDA_HOME/include` when set, else the
    /// PyPI wheel's CUDA runtime package next to torch (`nvidia/cu13/include` for CUDA 13
    /// wheels, `nvidia/cuda_runtime/include` for CUDA 12 ones), else `/usr/local/cuda`.
    fn cuda_include_dir(lib_dir: &std::path::Path) -> Option<PathBuf> {
        let site_packages = lib_dir.join("../..");
        env::var_os("CUDA_HOME")
            .map(|home| PathBuf::from(home).join("include"))
            .into_iter()
            .chain([
                site_packages.join("nvidia/cu13/include"),
                site_packages.join("nvidia/cuda_runtime/include"),
                PathBuf::from("/usr/local/cuda/include"),
            ])
            // cuda_runtime.h includes crt/host_config.h, a separate wheel (nvidia-cuda-crt).
            .find(|dir| {
                dir.join("cuda_runtime_api.h").is_file() && dir.join("crt/host_config.h").is_file()
            })
    }
}
