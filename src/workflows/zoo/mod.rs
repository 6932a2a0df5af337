//! Model-zoo health checks: many model files analysed with one engine, summarised per model,
//! judged against a policy ([`crate::workflows::health`]), ranked ([`report`]), cached by content
//! ([`cache`]) and split across machines ([`shard`]). Discovery of the files lives in
//! [`crate::model::discovery`].
pub mod cache;
pub mod history;
pub mod report;
pub mod shard;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::{analyze, Analysis, AnalyzeOptions, ModelSummary};
use crate::model::Model;
use crate::workflows::compare::CompareSummary;
pub use crate::workflows::health::Verdict;
use crate::workflows::health::{Policy, Rule};

pub use cache::{content_hash, model_bytes, Cache};
pub use history::History;
pub use report::{ZooReport, ZOO_SCHEMA};
pub use shard::Shard;

/// One model's entry in a zoo report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooEntry {
    /// The model file.
    pub path: String,
    /// Content hash of the file (the cache key with the options).
    pub hash: Option<String>,
    /// Healthy, violated, error or not a model.
    pub verdict: Verdict,
    /// The rules it violates.
    pub violations: Vec<Rule>,
    /// Why it could not be analysed.
    pub error: Option<String>,
    /// Its summary, the same as `analyze`'s; absent when it was not analysed.
    pub summary: Option<ModelSummary>,
    /// Whether this run took it from the cache.
    pub cached: bool,
    /// Per-layer detail: the model's whole analysis, as `analyze` reports it (absent when not
    /// analysed).
    pub analysis: Option<Analysis>,
    /// What it changed against the zoo's base model (`zoo --base`), as `compare` sums it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<CompareSummary>,
}

/// What the zoo does with each model.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ZooOptions {
    /// The analysis of each model, exactly as `analyze` would run it.
    pub analyze: AnalyzeOptions,
    /// For torch.save checkpoints: the entry holding the weights (as `analyze --key`).
    pub key: Option<String>,
    /// Where cached results live; `None` disables the cache.
    pub cache: Option<Cache>,
    /// Models analysed at once.
    pub jobs: usize,
    /// The policy.
    pub policy: Policy,
    /// A previous run's report: its analyses are what `delta_` rules measure drift from.
    pub previous: Option<ZooReport>,
    /// A model every model is compared with ([`crate::workflows::compare`]).
    pub base: Option<PathBuf>,
    /// Rules over each model's comparison with `base` (the rules of `compare --fail-if`).
    pub change_policy: Vec<Rule>,
}

impl ZooOptions {
    /// What makes two runs' results interchangeable: this version and every option that
    /// changes a number (the cache key beside the content hash).
    fn fingerprint(&self) -> String {
        let device = self
            .analyze
            .device()
            .resolve()
            .map_or_else(|err| err.to_string(), crate::device::device_name);
        let settings = serde_json::Value::Object(self.analyze.settings_json());
        format!(
            "{} {settings} {:?} {device}",
            env!("CARGO_PKG_VERSION"),
            self.key
        )
    }
}

/// Analyses `models` (with up to `options.jobs` at once), taking unchanged files from the
/// cache; `on_model(done, total, path)` reports progress. Options are checked first.
pub fn run_zoo(
    models: &[PathBuf],
    options: &ZooOptions,
    on_model: impl Fn(usize, usize, &Path) + Sync,
) -> crate::error::Result<Vec<ZooEntry>> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fingerprint = options.fingerprint();
    let done = AtomicUsize::new(0);
    let total = models.len();
    let jobs = options.jobs.max(1);
    let work = |path: &PathBuf| {
        let entry = zoo_entry(path, options, &fingerprint);
        on_model(done.fetch_add(1, Ordering::SeqCst) + 1, total, path);
        entry
    };
    if jobs == 1 {
        return Ok(models.iter().map(work).collect());
    }
    // Workers get a main thread's stack: a model's reader must not fail on a worker where it
    // would succeed alone. libtorch's threads are shared out between the models analysed at
    // once (its thread count is each thread's own).
    let per_model = (tch::get_num_threads() / jobs as i32).max(1);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .stack_size(8 << 20)
        .start_handler(move |_| tch::set_num_threads(per_model))
        .build()
    {
        Ok(pool) => Ok(pool.install(|| models.par_iter().map(work).collect())),
        Err(_) => Ok(models.iter().map(work).collect()),
    }
}

fn zoo_entry(path: &Path, options: &ZooOptions, fingerprint: &str) -> ZooEntry {
    let unanalysed = |verdict, hash, message: String| ZooEntry {
        path: path.display().to_string(),
        hash,
        verdict,
        violations: Vec::new(),
        error: Some(message),
        summary: None,
        cached: false,
        analysis: None,
        changes: None,
    };
    let failed = |hash, message| unanalysed(Verdict::Error, hash, message);
    let hash = match content_hash(path) {
        Ok(hash) => hash,
        Err(err) => return failed(None, err.to_string()),
    };
    let cached = options
        .cache
        .as_ref()
        .and_then(|cache| cache.get(&hash, fingerprint));
    let (analysis, from_cache) = match cached {
        Some(mut analysis) => {
            // The same content may have been analysed under another name.
            analysis.model = path.display().to_string();
            (analysis, true)
        }
        None => {
            let model = match Model::load_entry(path, options.key.as_deref()) {
                Ok(model) if model.is_bare_tensor() => {
                    return unanalysed(
                        Verdict::NotAModel,
                        Some(hash),
                        "one bare tensor (torch.save(tensor)): data, not a model; `rmt-torch analyze --layers tensor` reads it if it is a weight".into(),
                    );
                }
                other => other,
            };
            let result = model.and_then(|model| analyze(&model, &options.analyze));
            let analysis = match result {
                Ok(analysis) => analysis,
                Err(err) => return failed(Some(hash), err.to_string()),
            };
            if let Some(cache) = &options.cache {
                cache.put(&hash, fingerprint, &analysis);
            }
            (analysis, false)
        }
    };
    let summary = analysis.summary.clone();
    let previous = options.previous.as_ref().and_then(|report| {
        let entry = report.models.iter().find(|e| e.path == analysis.model)?;
        entry.analysis.as_ref()
    });
    let (mut verdict, mut violations) = options.policy.judge_since(&analysis, previous);
    let changes = match &options.base {
        Some(base) => match changes_from(base, path, options) {
            Ok((changes, violated)) => {
                if !options.change_policy.is_empty() && verdict == Verdict::NoPolicy {
                    verdict = Verdict::Healthy;
                }
                if !violated.is_empty() {
                    verdict = Verdict::Violated;
                }
                violations.extend(violated);
                Some(changes)
            }
            Err(err) => {
                return failed(
                    Some(hash),
                    format!("comparing with {}: {err}", base.display()),
                )
            }
        },
        None => None,
    };
    ZooEntry {
        path: path.display().to_string(),
        hash: Some(hash),
        verdict,
        violations,
        error: None,
        summary: Some(summary),
        cached: from_cache,
        analysis: Some(analysis),
        changes,
    }
}

/// What the model at `path` changed against `base`, and the change rules it violates.
fn changes_from(
    base: &Path,
    path: &Path,
    options: &ZooOptions,
) -> crate::error::Result<(CompareSummary, Vec<Rule>)> {
    let key = options.key.as_deref();
    let base_model = Model::load_entry(base, key)?;
    let other = Model::load_derived(path, base, key)?;
    let comparison = crate::workflows::compare::compare(&base_model, &other, &options.analyze)?;
    let rows: Vec<serde_json::Value> = comparison
        .rows()
        .into_iter()
        .map(serde_json::Value::Object)
        .collect();
    let violated = options
        .change_policy
        .iter()
        .filter(|rule| rule.violated_over(&rows))
        .cloned()
        .collect();
    Ok((comparison.summary, violated))
}
