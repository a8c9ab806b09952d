//! Build script. It records the git commit the binary is built from (for `run.json`'s
//! environment); with the `torch` feature it also links libtorch's CUDA library into every
//! executable and compiles the C++ shim in `src/models/shim.cpp`. Each concern is
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
    /// the PyPI wheel (`torch/include`) and the libtorch archive (`libtorch/include`).
    fn compile_shim(lib_dir: &std::path::Path) {
        println!("cargo:rerun-if-changed={SHIM_SOURCE}");
        let include_dir = lib_dir.join("../include");
        cc::Build::new()
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
            .compile("gpushare_torch_shim");
    }
}
