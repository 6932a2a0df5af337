//! The zoo's result cache: a file's content hash and the analysis options make the key, so an
//! unchanged file analysed the same way is never analysed again.
use std::path::{Path, PathBuf};

use crate::analysis::ModelSummary;
use crate::error::{Error, Result};

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

/// A directory of cached results, one JSON file per (content, options) key.
#[derive(Debug, Clone)]
pub struct Cache {
    directory: PathBuf,
}

/// What the cache keeps of one model: its summary and its full analysis JSON.
pub type CachedResult = (ModelSummary, serde_json::Value);

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

    /// The cached result for this content and these options; a missing or unreadable entry
    /// (another version's format, say) is a miss.
    pub fn get(&self, content_hash: &str, options_fingerprint: &str) -> Option<CachedResult> {
        let text = std::fs::read_to_string(self.file(content_hash, options_fingerprint)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores a result; a cache that cannot be written only costs time on the next run.
    pub fn put(&self, content_hash: &str, options_fingerprint: &str, result: &CachedResult) {
        let _ = std::fs::create_dir_all(&self.directory);
        if let Ok(text) = serde_json::to_string(result) {
            let _ = std::fs::write(self.file(content_hash, options_fingerprint), text);
        }
    }
}
