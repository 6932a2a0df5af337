//! Splitting a zoo over machines: shard I of N holds the models whose path hashes to I.
use std::path::PathBuf;

pub use crate::analysis::shard::Shard;

use super::cache::hash_bytes;

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
