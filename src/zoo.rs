//! Model-zoo health checks: many model files analysed with one engine, summarised per model,
//! ranked, judged against a policy, cached by content and shardable across machines.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::{analyze, Analysis, AnalyzeOptions};
use crate::error::{Error, Result};
use crate::model::Model;

/// The schema name and version of `zoo`'s JSON.
pub const ZOO_SCHEMA: &str = "rmt-torch/zoo/v1";

/// File extensions taken as model files when a directory is searched.
const MODEL_EXTENSIONS: &[&str] = &["pt", "pth", "bin", "ckpt", "safetensors", "tar"];

/// Model files under `paths`: files as given, directories searched recursively for .pt .pth
/// .bin .ckpt .safetensors and .tar files; sorted and without duplicates.
pub fn find_models(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if metadata.is_dir() {
            walk(path, &mut found)?;
        } else {
            found.push(path.clone());
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| MODEL_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            found.push(path);
        }
    }
    Ok(())
}

/// Shard `index` of `count`: the models whose path hashes to it (FNV-1a), so every model lands
/// in exactly one shard and adding a model never moves the others.
pub fn shard(models: Vec<PathBuf>, index: usize, count: usize) -> Vec<PathBuf> {
    models
        .into_iter()
        .filter(|path| {
            fnv1a(path.to_string_lossy().as_bytes(), FNV_OFFSET) % count as u64 == index as u64
        })
        .collect()
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `state`.
fn fnv1a(bytes: &[u8], mut state: u64) -> u64 {
    for &byte in bytes {
        state ^= u64::from(byte);
        state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    state
}

/// A file's content hash (FNV-1a 64 over its bytes, read in blocks), as 16 hex digits.
pub fn content_hash(path: &Path) -> Result<String> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut state = FNV_OFFSET;
    loop {
        let read = file.read(&mut buffer).map_err(io)?;
        if read == 0 {
            break;
        }
        state = fnv1a(&buffer[..read], state);
    }
    Ok(format!("{state:016x}"))
}

/// One model's summary: what the zoo ranks and judges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHealth {
    /// Layers analysed.
    pub layers: usize,
    /// Mean α over fitted layers.
    pub alpha_mean: Option<f64>,
    /// Mean α̂ over fitted layers.
    pub alpha_weighted_mean: Option<f64>,
    /// Mean log₁₀ ‖W‖²_F.
    pub log_norm_mean: Option<f64>,
    /// Mean log₁₀ λmax.
    pub log_spectral_norm_mean: Option<f64>,
    /// Mean stable rank.
    pub stable_rank_mean: Option<f64>,
    /// Mean MP soft rank.
    pub mp_softrank_mean: Option<f64>,
    /// Layers with 2 ≤ α ≤ 6.
    pub well_trained: usize,
    /// Layers with α < 2.
    pub over_trained: usize,
    /// Layers with α > 6.
    pub under_trained: usize,
    /// Layers whose power-law fit failed.
    pub fit_failed: usize,
    /// Eigenvalues beyond the Tracy-Widom edge, all layers.
    pub num_spikes_tw: usize,
    /// Layers with such spikes.
    pub layers_with_tw_spikes: usize,
}

impl ModelHealth {
    /// The summary of an analysis.
    pub fn of(analysis: &Analysis) -> Self {
        let s = &analysis.summary;
        Self {
            layers: analysis.layers.len(),
            alpha_mean: s.alpha,
            alpha_weighted_mean: s.alpha_weighted,
            log_norm_mean: s.log_norm,
            log_spectral_norm_mean: s.log_spectral_norm,
            stable_rank_mean: s.stable_rank,
            mp_softrank_mean: s.mp_softrank,
            well_trained: s.well_trained,
            over_trained: s.over_trained,
            under_trained: s.under_trained,
            fit_failed: s.fit_failed,
            num_spikes_tw: s.num_spikes_tw,
            layers_with_tw_spikes: s.layers_with_tw_spikes,
        }
    }

    /// A field by its JSON name, for rankings and policies.
    pub fn field(&self, name: &str) -> Option<Option<f64>> {
        let count = |n: usize| Some(Some(n as f64));
        match name {
            "layers" => count(self.layers),
            "alpha_mean" => Some(self.alpha_mean),
            "alpha_weighted_mean" => Some(self.alpha_weighted_mean),
            "log_norm_mean" => Some(self.log_norm_mean),
            "log_spectral_norm_mean" => Some(self.log_spectral_norm_mean),
            "stable_rank_mean" => Some(self.stable_rank_mean),
            "mp_softrank_mean" => Some(self.mp_softrank_mean),
            "well_trained" => count(self.well_trained),
            "over_trained" => count(self.over_trained),
            "under_trained" => count(self.under_trained),
            "fit_failed" => count(self.fit_failed),
            "num_spikes_tw" => count(self.num_spikes_tw),
            "layers_with_tw_spikes" => count(self.layers_with_tw_spikes),
            _ => None,
        }
    }
}

/// The fields a policy or ranking may name.
pub const HEALTH_FIELDS: &[&str] = &[
    "layers",
    "alpha_mean",
    "alpha_weighted_mean",
    "log_norm_mean",
    "log_spectral_norm_mean",
    "stable_rank_mean",
    "mp_softrank_mean",
    "well_trained",
    "over_trained",
    "under_trained",
    "fit_failed",
    "num_spikes_tw",
    "layers_with_tw_spikes",
];

/// A policy rule: `field op value`, e.g. `alpha_mean>6` (violated when true).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// A [`HEALTH_FIELDS`] name.
    pub field: String,
    /// One of > >= < <= == !=.
    pub op: String,
    /// The threshold.
    pub value: f64,
}

impl std::str::FromStr for Rule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        let at = text.find(['>', '<', '=', '!']).ok_or_else(|| {
            Error::InvalidOption(format!(
                "rule '{text}' needs an operator: FIELD>VALUE, >=, <, <=, == or !="
            ))
        })?;
        let (field, rest) = text.split_at(at);
        let op_len = if rest[1..].starts_with('=') { 2 } else { 1 };
        let (op, value) = rest.split_at(op_len);
        let field = field.trim().to_string();
        if !HEALTH_FIELDS.contains(&field.as_str()) {
            return Err(Error::InvalidOption(format!(
                "rule '{text}': unknown field '{field}' (one of {})",
                HEALTH_FIELDS.join(", ")
            )));
        }
        if !matches!(op, ">" | ">=" | "<" | "<=" | "==" | "!=") {
            return Err(Error::InvalidOption(format!(
                "rule '{text}': unknown operator '{op}'"
            )));
        }
        let value = value.trim().parse::<f64>().map_err(|_| {
            Error::InvalidOption(format!("rule '{text}': '{}' is not a number", value.trim()))
        })?;
        Ok(Self {
            field,
            op: op.to_string(),
            value,
        })
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.field, self.op, self.value)
    }
}

impl Rule {
    /// Whether `health` violates the rule; a missing value (no fitted layer) violates nothing.
    pub fn violated_by(&self, health: &ModelHealth) -> bool {
        let Some(Some(x)) = health.field(&self.field) else {
            return false;
        };
        match self.op.as_str() {
            ">" => x > self.value,
            ">=" => x >= self.value,
            "<" => x < self.value,
            "<=" => x <= self.value,
            "==" => x == self.value,
            _ => x != self.value,
        }
    }
}

/// Rules from a policy file: one `FIELD OP VALUE` per line, `#` comments and blank lines ignored.
pub fn read_policy(path: &Path) -> Result<Vec<Rule>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(str::parse)
        .collect()
}

/// A model's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No rule violated.
    Healthy,
    /// At least one rule violated.
    Violated,
    /// The file could not be analysed.
    Error,
    /// The file holds no model: one bare tensor (`torch.save(tensor)`, an input batch, say).
    /// Listed, not ranked, and no reason for a non-zero exit.
    NotAModel,
}

/// One model's entry in a zoo report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooEntry {
    /// The model file.
    pub path: String,
    /// Content hash of the file (the cache key with the options).
    pub hash: Option<String>,
    /// Healthy, violated or error.
    pub verdict: Verdict,
    /// The rules it violates.
    pub violations: Vec<String>,
    /// Why it could not be analysed.
    pub error: Option<String>,
    /// Its summary; absent on error.
    pub health: Option<ModelHealth>,
    /// Whether this run took it from the cache.
    pub cached: bool,
    /// Per-layer detail: the full `analyze` JSON of the model (absent on error).
    pub analysis: Option<serde_json::Value>,
}

/// What the zoo does with each model.
#[derive(Debug, Clone, Default)]
pub struct ZooOptions {
    /// The analysis of each model.
    pub analyze: AnalyzeOptions,
    /// A fingerprint of `analyze` for the cache key (the CLI passes its arguments).
    pub options_fingerprint: String,
    /// Where cached results live; `None` disables the cache.
    pub cache: Option<PathBuf>,
    /// Models analysed at once.
    pub jobs: usize,
    /// The policy.
    pub rules: Vec<Rule>,
}

/// Analyses `models` (with up to `options.jobs` at once), taking unchanged files from the
/// cache; `on_model(done, total, path)` reports progress.
pub fn run_zoo(
    models: &[PathBuf],
    options: &ZooOptions,
    on_model: impl Fn(usize, usize, &Path) + Sync,
) -> Vec<ZooEntry> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let done = AtomicUsize::new(0);
    let total = models.len();
    let jobs = options.jobs.max(1);
    let work = |path: &PathBuf| {
        let entry = zoo_entry(path, options);
        on_model(done.fetch_add(1, Ordering::SeqCst) + 1, total, path);
        entry
    };
    if jobs == 1 {
        return models.iter().map(work).collect();
    }
    match rayon::ThreadPoolBuilder::new().num_threads(jobs).build() {
        Ok(pool) => pool.install(|| models.par_iter().map(work).collect()),
        Err(_) => models.iter().map(work).collect(),
    }
}

fn zoo_entry(path: &Path, options: &ZooOptions) -> ZooEntry {
    let unanalysed = |verdict, hash, message: String| ZooEntry {
        path: path.display().to_string(),
        hash,
        verdict,
        violations: Vec::new(),
        error: Some(message),
        health: None,
        cached: false,
        analysis: None,
    };
    let failed = |hash, message| unanalysed(Verdict::Error, hash, message);
    let hash = match content_hash(path) {
        Ok(hash) => hash,
        Err(err) => return failed(None, err.to_string()),
    };
    let cache_file = options.cache.as_ref().map(|dir| {
        let key = fnv1a(
            options.options_fingerprint.as_bytes(),
            fnv1a(hash.as_bytes(), FNV_OFFSET),
        );
        dir.join(format!("{key:016x}.json"))
    });
    let cached: Option<(ModelHealth, serde_json::Value)> = cache_file
        .as_ref()
        .and_then(|file| std::fs::read_to_string(file).ok())
        .and_then(|text| serde_json::from_str(&text).ok());
    let (health, analysis, from_cache) = match cached {
        Some((health, analysis)) => (health, analysis, true),
        None => {
            let model = match Model::load(path) {
                Ok(model) if model.is_bare_tensor() => {
                    return unanalysed(
                        Verdict::NotAModel,
                        Some(hash),
                        "one bare tensor (torch.save(tensor)): data, not a model; `rmt-torch analyze` reads it if it is a weight".into(),
                    );
                }
                other => other,
            };
            let result = model.and_then(|model| analyze(&model, &options.analyze, |_, _, _| {}));
            let analysis = match result {
                Ok(analysis) => analysis,
                Err(err) => return failed(Some(hash), err.to_string()),
            };
            let health = ModelHealth::of(&analysis);
            let value = serde_json::to_value(&analysis).unwrap_or(serde_json::Value::Null);
            if let Some(file) = &cache_file {
                if let Some(dir) = file.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                // A cache that cannot be written only costs time on the next run.
                let _ = serde_json::to_string(&(&health, &value))
                    .map(|text| std::fs::write(file, text));
            }
            (health, value, false)
        }
    };
    let violations: Vec<String> = options
        .rules
        .iter()
        .filter(|rule| rule.violated_by(&health))
        .map(Rule::to_string)
        .collect();
    ZooEntry {
        path: path.display().to_string(),
        hash: Some(hash),
        verdict: if violations.is_empty() {
            Verdict::Healthy
        } else {
            Verdict::Violated
        },
        violations,
        error: None,
        health: Some(health),
        cached: from_cache,
        analysis: Some(analysis),
    }
}

/// A zoo run's report: entries ranked, with counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooReport {
    /// [`ZOO_SCHEMA`].
    pub schema: String,
    /// The ranking field.
    pub rank_by: String,
    /// Whether larger values rank first.
    pub descending: bool,
    /// The policy, as rules.
    pub rules: Vec<String>,
    /// `i/n` when this is one shard.
    pub shard: Option<String>,
    /// Entries, ranked (errors last).
    pub models: Vec<ZooEntry>,
    /// Healthy models.
    pub healthy: usize,
    /// Models violating the policy.
    pub violated: usize,
    /// Models that could not be analysed.
    pub errors: usize,
    /// Files that hold no model (bare tensors).
    #[serde(default)]
    pub not_models: usize,
}

impl ZooReport {
    /// Ranks `entries` by `rank_by` (errors and missing values last, ties by path).
    pub fn new(
        mut entries: Vec<ZooEntry>,
        rank_by: &str,
        descending: bool,
        rules: &[Rule],
        shard: Option<String>,
    ) -> Self {
        let key = |entry: &ZooEntry| {
            entry
                .health
                .as_ref()
                .and_then(|h| h.field(rank_by).flatten())
        };
        entries.sort_by(|a, b| match (key(a), key(b)) {
            (Some(x), Some(y)) => {
                let order = if descending {
                    y.total_cmp(&x)
                } else {
                    x.total_cmp(&y)
                };
                order.then_with(|| a.path.cmp(&b.path))
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.path.cmp(&b.path),
        });
        let count = |verdict| entries.iter().filter(|e| e.verdict == verdict).count();
        Self {
            schema: ZOO_SCHEMA.to_string(),
            rank_by: rank_by.to_string(),
            descending,
            rules: rules.iter().map(Rule::to_string).collect(),
            shard,
            healthy: count(Verdict::Healthy),
            violated: count(Verdict::Violated),
            errors: count(Verdict::Error),
            not_models: count(Verdict::NotAModel),
            models: entries,
        }
    }

    /// Several shards' reports as one, ranked again; the shards must share ranking and rules.
    pub fn merge(reports: Vec<ZooReport>) -> Result<Self> {
        let first = reports
            .first()
            .ok_or_else(|| Error::InvalidOption("nothing to merge".into()))?;
        let (rank_by, descending, rules) =
            (first.rank_by.clone(), first.descending, first.rules.clone());
        if reports
            .iter()
            .any(|r| r.rank_by != rank_by || r.descending != descending || r.rules != rules)
        {
            return Err(Error::InvalidOption(
                "the reports were made with different --rank-by or policies".into(),
            ));
        }
        let rules: Vec<Rule> = rules.iter().map(|r| r.parse()).collect::<Result<_>>()?;
        let mut entries: Vec<ZooEntry> = reports.into_iter().flat_map(|r| r.models).collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].path == pair[1].path) {
            return Err(Error::InvalidOption(format!(
                "{} appears in more than one report",
                pair[0].path
            )));
        }
        Ok(Self::new(entries, &rank_by, descending, &rules, None))
    }

    /// 0 healthy, 1 a policy violated, 2 a model could not be analysed.
    pub fn exit_code(&self) -> u8 {
        if self.errors > 0 {
            2
        } else if self.violated > 0 {
            1
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_judge() {
        let rule: Rule = "alpha_mean>6".parse().unwrap();
        assert_eq!(rule.to_string(), "alpha_mean>6");
        let rule_ge: Rule = " over_trained >= 1 ".parse().unwrap();
        let mut health = ModelHealth {
            layers: 3,
            alpha_mean: Some(6.5),
            alpha_weighted_mean: None,
            log_norm_mean: None,
            log_spectral_norm_mean: None,
            stable_rank_mean: None,
            mp_softrank_mean: None,
            well_trained: 3,
            over_trained: 0,
            under_trained: 0,
            fit_failed: 0,
            num_spikes_tw: 0,
            layers_with_tw_spikes: 0,
        };
        assert!(rule.violated_by(&health) && !rule_ge.violated_by(&health));
        health.alpha_mean = None;
        assert!(!rule.violated_by(&health));
        for bad in ["alpha_mean", "alpha>6", "alpha_mean=>6", "alpha_mean>six"] {
            assert!(bad.parse::<Rule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_partition_the_models() {
        let models: Vec<PathBuf> = (0..50)
            .map(|i| PathBuf::from(format!("zoo/m{i}.pt")))
            .collect();
        let mut seen: Vec<PathBuf> = (0..3).flat_map(|i| shard(models.clone(), i, 3)).collect();
        seen.sort();
        let mut all = models.clone();
        all.sort();
        assert_eq!(seen, all);
        assert!((0..3).all(|i| !shard(models.clone(), i, 3).is_empty()));
    }
}
