//! Splitting a zoo over machines: shard I of N holds the models whose path hashes to I.
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::option_names::serde_as_text;

use super::cache::hash_bytes;

/// Shard `index` of `count` (0 ≤ index < count), written `I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards the zoo is split into.
    pub count: usize,
}

impl Shard {
    /// The models of this shard (FNV-1a of the path modulo N), so every model lands in exactly
    /// one shard and adding a model never moves the others.
    pub fn select(self, models: Vec<PathBuf>) -> Vec<PathBuf> {
        models
            .into_iter()
            .filter(|path| {
                hash_bytes(path.to_string_lossy().as_bytes()) % self.count as u64
                    == self.index as u64
            })
            .collect()
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        text.split_once('/')
            .and_then(|(i, n)| {
                Some(Self {
                    index: i.trim().parse().ok()?,
                    count: n.trim().parse().ok()?,
                })
            })
            .filter(|shard| shard.count > 0 && shard.index < shard.count)
            .ok_or_else(|| {
                Error::parameter("shard", format!("must be I/N with 0 ≤ I < N, got '{text}'"))
            })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

serde_as_text!(Shard);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_models() {
        let models: Vec<PathBuf> = (0..50)
            .map(|i| PathBuf::from(format!("zoo/m{i}.pt")))
            .collect();
        let shards = (0..3).map(|index| Shard { index, count: 3 });
        let mut seen: Vec<PathBuf> = shards
            .clone()
            .flat_map(|s| s.select(models.clone()))
            .collect();
        seen.sort();
        let mut all = models.clone();
        all.sort();
        assert_eq!(seen, all);
        assert!(shards
            .into_iter()
            .all(|s| !s.select(models.clone()).is_empty()));
    }

    #[test]
    fn shards_parse_and_print() {
        let shard: Shard = " 2 / 16 ".parse().unwrap();
        assert_eq!(
            shard,
            Shard {
                index: 2,
                count: 16
            }
        );
        assert_eq!(shard.to_string(), "2/16");
        for bad in ["3/3", "1/0", "a/2", "2", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
