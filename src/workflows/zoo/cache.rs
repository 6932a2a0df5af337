//! The zoo's result cache: a file's content hash and the analysis options make the key, so an
//! unchanged file analysed the same way is never analysed again.
use std::path::{Path, PathBuf};

use crate::analysis::Analysis;
use crate::error::{Error, Result};
use crate::model::directory_entries;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `state`.
pub(crate) fn fnv1a(bytes: &[u8], mut state: u64) -> u64 {
    for &byte in bytes {
        state ^= u64::from(byte);
        state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    state
}

/// FNV-1a of `bytes` from the standard offset.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    fnv1a(bytes, FNV_OFFSET)
}

/// Files up to this size are hashed whole.
const WHOLE_FILE_BYTES: u64 = 64 << 20;
/// Of a larger file, the first and the last this many bytes are hashed (a safetensors header,
/// the start of a zip's central directory)…
const EDGE_BYTES: u64 = 1 << 20;
/// …and this many blocks of [`SAMPLE_BYTES`], evenly spaced in between.
const SAMPLES: u64 = 256;
/// The size of each sampled block.
const SAMPLE_BYTES: u64 = 4096;

/// A model's content hash as 16 hex digits: FNV-1a 64 over a file's length and bytes, or for a
/// checkpoint directory over the relative name, length and bytes of every regular file in it
/// and in its component folders, in name order. A file over 64 MiB (an LLM shard) is hashed by
/// its length, its first and last MiB and 256 blocks of 4 KiB evenly spaced between them: about
/// 3 MiB read whatever its size. An edit that keeps a file's length and touches none of those bytes is not seen; a re-saved or
/// re-trained checkpoint changes them all.
pub fn content_hash(path: &Path) -> Result<String> {
    let mut state = FNV_OFFSET;
    if path.is_dir() {
        for (name, file) in directory_files(path)? {
            state = fnv1a(name.as_bytes(), state);
            state = hash_file(&file, state)?;
        }
    } else {
        state = hash_file(path, state)?;
    }
    Ok(format!("{state:016x}"))
}

/// FNV-1a over the length and bytes of the regular file `path` (sampled above
/// [`WHOLE_FILE_BYTES`]), continuing from `state`.
fn hash_file(path: &Path, mut state: u64) -> Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let (mut file, len) = crate::model::open_regular(path)?;
    state = fnv1a(&len.to_le_bytes(), state);
    if len > WHOLE_FILE_BYTES {
        let between = len - 2 * EDGE_BYTES - SAMPLE_BYTES;
        let spans = [(0, EDGE_BYTES), (len - EDGE_BYTES, EDGE_BYTES)]
            .into_iter()
            .chain((0..SAMPLES).map(|i| (EDGE_BYTES + between * i / (SAMPLES - 1), SAMPLE_BYTES)));
        let mut buffer = vec![0u8; EDGE_BYTES as usize];
        for (offset, length) in spans {
            let block = &mut buffer[..length as usize];
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
            file.read_exact(block).map_err(io)?;
            state = fnv1a(block, state);
        }
        return Ok(state);
    }
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(io)?;
        if read == 0 {
            return Ok(state);
        }
        state = fnv1a(&buffer[..read], state);
    }
}

/// The bytes of a model: a file's length, or the total of a checkpoint directory's regular
/// files (those its content hash covers); 0 when it cannot be read.
pub fn model_bytes(path: &Path) -> u64 {
    if path.is_dir() {
        directory_files(path).map_or(0, |files| {
            files
                .iter()
                .filter_map(|(_, file)| std::fs::metadata(file).ok())
                .map(|metadata| metadata.len())
                .sum()
        })
    } else {
        std::fs::metadata(path).map_or(0, |metadata| metadata.len())
    }
}

/// The regular files of a directory and of its subfolders one level down, by relative name.
fn directory_files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut files = Vec::new();
    for entry in directory_entries(dir)? {
        if entry.is_dir() {
            files.extend(
                directory_entries(&entry)?
                    .into_iter()
                    .filter(|p| p.is_file()),
            );
        } else if entry.is_file() {
            files.push(entry);
        }
    }
    let mut named: Vec<(String, std::path::PathBuf)> = files
        .into_iter()
        .map(|file| {
            let name = file
                .strip_prefix(dir)
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            (name, file)
        })
        .collect();
    named.sort();
    Ok(named)
}

/// A directory of cached results, one JSON file per (content, options) key.
#[derive(Debug, Clone)]
pub struct Cache {
    directory: PathBuf,
}

impl Cache {
    /// A cache in `directory` (created on first write).
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
        }
    }

    fn file(&self, content_hash: &str, options_fingerprint: &str) -> PathBuf {
        let key = fnv1a(
            options_fingerprint.as_bytes(),
            hash_bytes(content_hash.as_bytes()),
        );
        self.directory.join(format!("{key:016x}.json"))
    }

    /// The cached analysis for this content and these options; a missing or unreadable entry
    /// (another version's format, say) is a miss.
    pub fn get(&self, content_hash: &str, options_fingerprint: &str) -> Option<Analysis> {
        let text = std::fs::read_to_string(self.file(content_hash, options_fingerprint)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores a result; a cache that cannot be written only costs time on the next run. The
    /// entry is written beside its place and renamed into it, so that runs sharing a cache (the
    /// tasks of a Slurm array) never read a half-written entry.
    pub fn put(&self, content_hash: &str, options_fingerprint: &str, analysis: &Analysis) {
        let _ = std::fs::create_dir_all(&self.directory);
        let Ok(text) = serde_json::to_string(analysis) else {
            return;
        };
        let file = self.file(content_hash, options_fingerprint);
        let partial = file.with_extension(format!(
            "json.{}.{:?}.partial",
            std::process::id(),
            std::thread::current().id()
        ));
        if std::fs::write(&partial, text).is_err() || std::fs::rename(&partial, &file).is_err() {
            let _ = std::fs::remove_file(&partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cached (and merged) results must be the computed numbers to the last bit, typed: JSON
    /// floats are parsed with correct rounding (serde_json's `float_roundtrip`), which its
    /// default fast parser is not (0.927513512712734 came back as …7341).
    #[test]
    fn cached_analyses_come_back_bit_identical() {
        use crate::analysis::ModelSummary;
        let directory = std::env::temp_dir().join(format!("rmt-cache-test-{}", std::process::id()));
        let cache = Cache::new(&directory);
        let weights = tch::Tensor::randn([40, 24], (tch::Kind::Double, tch::Device::Cpu));
        let model = crate::model::Model::from_tensors("w", [("w", &weights)]);
        let options = crate::analysis::AnalysisRequest::from_json(&serde_json::json!({
            "device": "cpu", "vectors": true, "randomize": true, "number_variance": [1, 2],
        }))
        .and_then(|request| request.resolve())
        .unwrap();
        let analysis = crate::analysis::analyze(&model, &options).unwrap();
        let awkward = [
            0.927513512712734,
            1.8126061009936365,
            0.9128493596770858,
            2.11714818793535,
            7.732197846819149e-22,
            f64::MIN_POSITIVE,
        ];
        for (i, &value) in awkward.iter().enumerate() {
            let summary = ModelSummary {
                layers: 1,
                alpha: Some(value),
                alpha_weighted: Some(value * std::f64::consts::PI),
                log_alpha_norm: Some(-value / 3.0),
                log_norm: Some(value.ln()),
                log_spectral_norm: Some(value.sqrt()),
                stable_rank: Some(1.0 / value),
                mp_softrank: Some(value.exp().fract()),
                num_spikes_tw: 0,
                layers_with_tw_spikes: 0,
                random_like: 0,
                well_trained: 1,
                over_trained: 0,
                under_trained: 0,
                fit_failed: 0,
            };
            let mut stored = analysis.clone();
            stored.summary = summary;
            stored.layers[0].metrics.lambda_max = value;
            let hash = format!("{i:016x}");
            cache.put(&hash, "options", &stored);
            let back = cache.get(&hash, "options").unwrap();
            assert_eq!(back, stored, "{value:e}");
            assert_eq!(back.layers[0].metrics.lambda_max.to_bits(), value.to_bits());
        }
        let leftovers = std::fs::read_dir(&directory)
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .path()
                    .to_string_lossy()
                    .ends_with(".partial")
            })
            .count();
        assert_eq!(leftovers, 0);
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn large_files_are_hashed_by_their_edges_and_samples() {
        use std::io::{Seek, SeekFrom, Write};
        let path = std::env::temp_dir().join(format!("rmt-hash-test-{}", std::process::id()));
        let len = WHOLE_FILE_BYTES + 5_000_003;
        let mut file = std::fs::File::create(&path).unwrap();
        let block: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let mut written = 0;
        while written < len {
            let n = (len - written).min(block.len() as u64) as usize;
            file.write_all(&block[..n]).unwrap();
            written += n as u64;
        }
        let original = content_hash(&path).unwrap();
        let between = len - 2 * EDGE_BYTES - SAMPLE_BYTES;
        let sampled = EDGE_BYTES + between * 100 / (SAMPLES - 1) + 17;
        for offset in [3, len - 5, sampled] {
            file.seek(SeekFrom::Start(offset)).unwrap();
            file.write_all(&[255]).unwrap();
            assert_ne!(
                content_hash(&path).unwrap(),
                original,
                "a change at {offset}"
            );
            file.seek(SeekFrom::Start(offset)).unwrap();
            file.write_all(&block[(offset % (1 << 20)) as usize..][..1])
                .unwrap();
            assert_eq!(
                content_hash(&path).unwrap(),
                original,
                "restored at {offset}"
            );
        }
        file.set_len(len + 1).unwrap();
        assert_ne!(content_hash(&path).unwrap(), original, "a longer file");
        std::fs::remove_file(&path).unwrap();
    }
}
