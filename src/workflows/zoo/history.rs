//! A zoo's history: what changed since a previous run — models new, removed, changed (another
//! file content) or unchanged — and how far each model's summary drifted. The previous run is a
//! zoo JSON report (`zoo --since FILE`) or the one the cache kept of the last run
//! (`zoo --since last`, [`last_run_path`]).
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::{Analysis, SummaryField};
use crate::option_names::OptionNames;

use super::{ZooEntry, ZooReport};

/// What happened to a model since the previous run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Not in the previous run.
    New,
    /// In the previous run, not in this one.
    Removed,
    /// The same path with another content.
    Changed,
    /// The same path and content.
    Unchanged,
}

impl Change {
    /// Its JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Removed => "removed",
            Self::Changed => "changed",
            Self::Unchanged => "unchanged",
        }
    }
}

/// A summary field that moved: its value before and now, and the difference (now − before).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The summary field's JSON name.
    pub field: String,
    /// Its value in the previous run.
    pub before: f64,
    /// Its value now.
    pub after: f64,
    /// after − before: what `delta_FIELD` rules compare.
    pub delta: f64,
}

/// One model's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHistory {
    /// The model file.
    pub path: String,
    /// What happened to it.
    pub change: Change,
    /// The summary fields that moved, for a model in both runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
}

/// What changed since a previous run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Where the previous run came from.
    pub since: String,
    /// Models not in it.
    pub new: usize,
    /// Models gone since.
    pub removed: usize,
    /// Models with another content.
    pub changed: usize,
    /// Models with the same content.
    pub unchanged: usize,
    /// Every model that is new, removed, changed or drifted (an unchanged file analysed with
    /// other options may drift), in path order.
    pub models: Vec<ModelHistory>,
}

/// Below this, a summary field has not moved (round-off of the same analysis).
const UNMOVED: f64 = 1e-12;

/// The summary fields that moved from `before` to `after`.
pub fn drift(before: &Analysis, after: &Analysis) -> Vec<Drift> {
    SummaryField::NAMES
        .iter()
        .filter_map(|name| {
            let field: SummaryField = name.parse().ok()?;
            let (b, a) = (before.summary.get(field)?, after.summary.get(field)?);
            let delta = a - b;
            (delta.abs() > UNMOVED * b.abs().max(1.0)).then(|| Drift {
                field: name.to_string(),
                before: b,
                after: a,
                delta,
            })
        })
        .collect()
}

impl History {
    /// The history of `entries` (this run) since the `previous` report, named `since`.
    pub fn since(entries: &[ZooEntry], previous: &ZooReport, since: &str) -> Self {
        let mut models = Vec::new();
        let (mut new, mut removed, mut changed, mut unchanged) = (0, 0, 0, 0);
        for entry in entries {
            let Some(before) = previous.models.iter().find(|e| e.path == entry.path) else {
                new += 1;
                models.push(ModelHistory {
                    path: entry.path.clone(),
                    change: Change::New,
                    drift: Vec::new(),
                });
                continue;
            };
            let change = if before.hash == entry.hash {
                unchanged += 1;
                Change::Unchanged
            } else {
                changed += 1;
                Change::Changed
            };
            let drift = match (&before.analysis, &entry.analysis) {
                (Some(b), Some(a)) => drift(b, a),
                _ => Vec::new(),
            };
            if change == Change::Changed || !drift.is_empty() {
                models.push(ModelHistory {
                    path: entry.path.clone(),
                    change,
                    drift,
                });
            }
        }
        for gone in previous
            .models
            .iter()
            .filter(|before| !entries.iter().any(|e| e.path == before.path))
        {
            removed += 1;
            models.push(ModelHistory {
                path: gone.path.clone(),
                change: Change::Removed,
                drift: Vec::new(),
            });
        }
        models.sort_by(|a, b| a.path.cmp(&b.path));
        Self {
            since: since.to_string(),
            new,
            removed,
            changed,
            unchanged,
            models,
        }
    }
}

/// Where the cache in `cache_dir` keeps the report of the last run of `shard` (the whole zoo
/// when `None`), for `zoo --since last`.
pub fn last_run_path(cache_dir: &Path, shard: Option<super::Shard>) -> PathBuf {
    match shard {
        None => cache_dir.join("last-run.json"),
        Some(shard) => cache_dir.join(format!(
            "last-run-shard-{}-of-{}.json",
            shard.index, shard.count
        )),
    }
}
