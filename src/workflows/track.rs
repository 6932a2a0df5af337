//! Spectral statistics over a sequence of checkpoints: the same analysis at every step of a
//! training run, ordered by the step each checkpoint records.
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::analysis::{analyze, AnalyzeOptions};
use crate::error::{Error, Result};
use crate::model::{EntryValue, Model};
use crate::workflows::monitor::StepRecord;

/// Checkpoint entries that hold the training step, in order of preference.
const STEP_ENTRIES: &[&str] = &["global_step", "step", "iteration", "epoch"];

/// The schema name and version of `track`'s JSON.
pub const TRACK_SCHEMA: &str = "rmt-torch/track/v1";

/// Statistics over training: the records of checkpoints ([`StepRecord`]s) or of a monitor's
/// JSONL, and the metrics a person follows in them.
#[derive(Debug, Clone, Serialize)]
pub struct TrackSeries {
    /// [`TRACK_SCHEMA`].
    pub schema: &'static str,
    /// One record per layer and step (JSON objects with `step`, `name` and their statistics).
    pub records: Vec<serde_json::Value>,
    /// The fields the table, the CSV and the figures follow.
    #[serde(skip)]
    pub metrics: Vec<String>,
}

impl TrackSeries {
    /// The series of `records`, following `metrics`.
    pub fn new(records: Vec<serde_json::Value>, metrics: Vec<String>) -> Self {
        Self {
            schema: TRACK_SCHEMA,
            records,
            metrics,
        }
    }
}

/// The step of a checkpoint: a `global_step`, `step`, `iteration` or `epoch` integer entry of a
/// `torch.save` checkpoint, else the last number in the file name (`ckpt-1200.pt` → 1200).
pub fn checkpoint_step(model: &Model) -> Option<u64> {
    STEP_ENTRIES
        .iter()
        .find_map(|key| {
            model
                .other_entries
                .iter()
                .find(|entry| entry.name == *key)
                .and_then(|entry| match entry.value {
                    EntryValue::Int(step) => u64::try_from(step).ok(),
                    _ => None,
                })
        })
        .or_else(|| last_number(model.path.file_stem()?.to_str()?))
}

fn last_number(text: &str) -> Option<u64> {
    text.rsplit(|c: char| !c.is_ascii_digit())
        .find(|part| !part.is_empty())?
        .parse()
        .ok()
}

/// Analyses every checkpoint (the entry `key` of each, as `analyze --key`) and returns its
/// layers' records ordered by step (then file).
/// `on_file(done, total, path)` reports progress.
pub fn track(
    paths: &[PathBuf],
    key: Option<&str>,
    options: &AnalyzeOptions,
    mut on_file: impl FnMut(usize, usize, &Path),
) -> Result<Vec<StepRecord>> {
    let mut records = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        on_file(index, paths.len(), path);
        let model = Model::load_entry(path, key)?;
        let step = checkpoint_step(&model).ok_or_else(|| {
            Error::InvalidInput(format!(
                "{}: no step found (no {} entry, no number in the file name; name files like ckpt-1200.pt)",
                path.display(),
                STEP_ENTRIES.join("/")
            ))
        })?;
        let analysis = analyze(&model, options)?;
        records.extend(analysis.layers.into_iter().map(|layer| StepRecord {
            step,
            source: Some(path.display().to_string()),
            layer,
        }));
    }
    on_file(paths.len(), paths.len(), Path::new(""));
    records.sort_by(|a, b| {
        (a.step, &a.source, a.layer.layer_id).cmp(&(b.step, &b.source, b.layer.layer_id))
    });
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_come_from_the_last_number_of_the_name() {
        assert_eq!(last_number("ckpt-1200"), Some(1200));
        assert_eq!(last_number("resnet50_epoch_12_step_300"), Some(300));
        assert_eq!(last_number("final"), None);
    }
}
