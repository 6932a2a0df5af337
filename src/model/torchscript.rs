//! TorchScript archives through libtorch's own loader.
use std::path::Path;

use crate::error::{torch_message, Error, Result};
use crate::model::NamedTensor;

/// Loads the parameters (not buffers) of a scripted or traced module, on the CPU, detached from
/// autograd.
pub fn load(path: &Path) -> Result<Vec<NamedTensor>> {
    let corrupt = |err: tch::TchError| Error::Corrupt {
        path: path.to_path_buf(),
        format: "TorchScript archive",
        message: torch_message(&err.to_string()),
    };
    let module = tch::CModule::load_on_device(path, tch::Device::Cpu).map_err(corrupt)?;
    let parameters = module.named_parameters().map_err(corrupt)?;
    Ok(parameters
        .into_iter()
        .map(|(name, tensor)| NamedTensor { name, tensor })
        .collect())
}
