//! What every reader's fuzz target does with an input: write it to a file (the readers take
//! regular files), read it as a model — index, then every tensor — or as an input batch, and
//! accept any error. A panic, an abort, a signal or a hang is a finding.
use std::path::PathBuf;

/// A file of this process for the input, named with `extension`.
fn scratch(data: &[u8], extension: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "rmt-torch-fuzz-{}.{extension}",
        std::process::id()
    ));
    std::fs::write(&path, data).expect("write the fuzz input");
    path
}

/// Reads `data` as a model file: its index, then every tensor of it.
pub fn read_model(data: &[u8], extension: &str) {
    let path = scratch(data, extension);
    if let Ok(model) = rmt_torch::Model::load(&path) {
        for tensor in &model.tensors {
            let _ = tensor.load();
        }
    }
}

/// Reads `data` as an input batch (`jacobian --input`).
pub fn read_batch(data: &[u8], extension: &str) {
    let path = scratch(data, extension);
    let _ = rmt_torch::model::load_tensor(&path, None);
}
