//! Link-time set-up for libtorch (see ../shared/LIBTORCH.md):
//! - an rpath to the libtorch that torch-sys linked, so the binary runs without `LD_LIBRARY_PATH`;
//! - `torch_cuda` linked with `--no-as-needed`, or the linker drops it and CUDA is never seen;
//! - the libtorch directory and version baked in for `rmt-torch doctor`.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set: no rpath to libtorch");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    if Path::new(&lib_dir).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    println!("cargo:rustc-env=RMT_TORCH_LIBTORCH_LIB={lib_dir}");
    let version = Path::new(&lib_dir)
        .parent()
        .map(|torch| torch.join("version.py"))
        .and_then(|file| std::fs::read_to_string(file).ok())
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("__version__ = "))
                .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=RMT_TORCH_LIBTORCH_VERSION={version}");
}
