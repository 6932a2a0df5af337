//! Which device the spectra are computed on: `auto`, `cpu`, `cuda` or `cuda:N`.
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A device request as a user writes it; resolved against the machine by [`DeviceChoice::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The first CUDA GPU when one is present, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA GPU number N.
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|index| index.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| {
                    Error::InvalidOption(format!(
                        "device '{text}': expected auto, cpu, cuda or cuda:N"
                    ))
                }),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(index) => write!(f, "cuda:{index}"),
        }
    }
}

crate::option_names::serde_as_text!(DeviceChoice);

impl DeviceChoice {
    /// The libtorch device this choice means on this machine; an absent GPU is an error.
    pub fn resolve(self) -> Result<tch::Device> {
        let device = match self {
            Self::Auto => tch::Device::cuda_if_available(),
            Self::Cpu => tch::Device::Cpu,
            Self::Cuda(index) => {
                let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
                if index >= count {
                    return Err(Error::DeviceUnavailable(format!(
                        "cuda:{index} ({count} CUDA devices found)"
                    )));
                }
                tch::Device::Cuda(index)
            }
        };
        if device.is_cuda() {
            load_cuda_linear_algebra(device)?;
        }
        Ok(device)
    }
}

/// libtorch loads its CUDA linear algebra (`libtorch_cuda_linalg`) lazily, on the first
/// eigensolve, and that first call is not thread-safe: two threads starting at once fail with
/// "lazy wrapper should be called at most once" (seen on an H100, libtorch 2.11). So one tiny
/// eigensolve runs once per process, before any analysis can use the GPU from several threads.
fn load_cuda_linear_algebra(device: tch::Device) -> Result<()> {
    static LOADED: std::sync::OnceLock<std::result::Result<(), String>> =
        std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let _no_grad = tch::no_grad_guard();
            tch::Tensor::f_eye(2, (tch::Kind::Double, device))
                .and_then(|identity| identity.f_linalg_eigvalsh("L"))
                .map(drop)
                .map_err(|err| err.to_string())
        })
        .clone()
        .map_err(|err| {
            Error::DeviceUnavailable(format!(
                "{}: its linear algebra library did not load ({err})",
                device_name(device)
            ))
        })
}

/// A device's name as users write it (`cpu`, `cuda:0`).
pub fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(index) => format!("cuda:{index}"),
        tch::Device::Cpu => "cpu".to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "cuda".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert_eq!(
            "cuda:3".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(3)
        );
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }
}
