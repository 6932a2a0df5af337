//! What rmt-torch runs on: libtorch build, CUDA, threads. Printed by `rmt-torch doctor`.
use serde::Serialize;

/// The runtime environment as libtorch sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// This crate's version.
    pub rmt_torch_version: &'static str,
    /// The libtorch version linked at build time (from the wheel's `version.py`).
    pub libtorch_version: &'static str,
    /// The libtorch library directory linked at build time (the binary's rpath).
    pub libtorch_lib: &'static str,
    /// The directory the running process loaded libtorch from: differs from `libtorch_lib` when
    /// `LD_LIBRARY_PATH` points elsewhere (a GPU machine's own torch). `None` where the process
    /// map cannot be read (not Linux).
    pub libtorch_loaded_from: Option<String>,
    /// Whether a CUDA device is usable.
    pub cuda_available: bool,
    /// Number of CUDA devices.
    pub cuda_device_count: i64,
    /// Whether cuDNN is usable.
    pub cudnn_available: bool,
    /// libtorch's intra-op thread count.
    pub threads: i32,
    /// libtorch's inter-op thread count.
    pub interop_threads: i32,
    /// Whether libtorch was built with LAPACK (needed for the CPU eigensolver).
    pub has_lapack: bool,
    /// Whether libtorch was built with MKL.
    pub has_mkl: bool,
    /// Whether libtorch was built with OpenMP.
    pub has_openmp: bool,
}

/// The directory of the `libtorch_cpu` this process mapped, from `/proc/self/maps`.
fn loaded_libtorch_dir() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(std::path::Path::new)
        .find(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("libtorch_cpu."))
        })
        .and_then(|path| path.parent())
        .map(|dir| dir.display().to_string())
}

impl Environment {
    /// Queries libtorch.
    pub fn detect() -> Self {
        Self {
            rmt_torch_version: env!("CARGO_PKG_VERSION"),
            libtorch_version: option_env!("RMT_TORCH_LIBTORCH_VERSION").unwrap_or("unknown"),
            libtorch_lib: option_env!("RMT_TORCH_LIBTORCH_LIB").unwrap_or("unknown"),
            libtorch_loaded_from: loaded_libtorch_dir(),
            cuda_available: tch::Cuda::is_available(),
            cuda_device_count: tch::Cuda::device_count(),
            cudnn_available: tch::Cuda::cudnn_is_available(),
            threads: tch::get_num_threads(),
            interop_threads: tch::get_num_interop_threads(),
            has_lapack: tch::utils::has_lapack(),
            has_mkl: tch::utils::has_mkl(),
            has_openmp: tch::utils::has_openmp(),
        }
    }
}

/// `MemAvailable` from /proc/meminfo, in bytes; `None` where there is no such file.
pub fn available_memory_bytes() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Hands the memory freed in this process back to the system. glibc keeps what a thread frees
/// in that thread's arena for reuse, so with a layer in flight per thread the resident size grows
/// by up to a layer's working set per thread, never returned; `malloc_trim` returns it (peak
/// RSS on the 805 MB checkpoint of docs/commands/analyze.md at two threads: 809 MB without, 592 MB with). A no-op
/// elsewhere than glibc.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim takes no pointers and only returns free pages of glibc's heaps to
        // the kernel; it is thread-safe.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Refuses work that needs `needed_bytes` of host memory on the CPU when less is available,
/// before libtorch tries and the process is killed. `what` names it in the error. Other devices
/// and hosts without /proc/meminfo are not checked.
pub(crate) fn ensure_host_memory(
    what: impl FnOnce() -> String,
    device: tch::Device,
    needed_bytes: f64,
) -> crate::error::Result<()> {
    if device != tch::Device::Cpu {
        return Ok(());
    }
    let Some(available) = available_memory_bytes() else {
        return Ok(());
    };
    if needed_bytes > available {
        const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
        return Err(crate::error::Error::TooLarge {
            name: what(),
            device: crate::device::device_name(device),
            needed_gib: needed_bytes / GIB,
            available_gib: available / GIB,
        });
    }
    Ok(())
}
