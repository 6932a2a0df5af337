//! A zoo run's report: entries ranked by a summary field, counted by verdict, and the merge of
//! shards' reports into the report of the whole zoo.
use serde::{Deserialize, Serialize};

use crate::analysis::SummaryField;
use crate::error::{Error, Result};
use crate::workflows::health::Rule;

use super::{Shard, Verdict, ZooEntry};

/// The schema name and version of `zoo`'s JSON.
pub const ZOO_SCHEMA: &str = "rmt-torch/zoo/v4";

/// A zoo run's report: entries ranked, with counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooReport {
    /// [`ZOO_SCHEMA`].
    pub schema: String,
    /// The ranking field.
    pub rank_by: SummaryField,
    /// Whether larger values rank first.
    pub descending: bool,
    /// The policy.
    pub rules: Vec<Rule>,
    /// The shard this report covers; absent for a whole zoo.
    pub shard: Option<Shard>,
    /// Entries, ranked (missing values and errors last).
    pub models: Vec<ZooEntry>,
    /// Healthy models (none without rules: their verdict is `no_policy`).
    pub healthy: usize,
    /// Models violating the policy.
    pub violated: usize,
    /// Models that could not be analysed.
    pub errors: usize,
    /// Files that hold no model (bare tensors).
    pub not_models: usize,
    /// What changed since a previous run, when one was given (`zoo --since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<super::History>,
    /// Entries of the searched directories passed over (a named pipe, a file of another
    /// kind, a dangling link), with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<crate::model::discovery::Skipped>,
}

impl ZooReport {
    /// Ranks `entries` by `rank_by` (missing values last, ties by path).
    pub fn new(
        mut entries: Vec<ZooEntry>,
        rank_by: SummaryField,
        descending: bool,
        rules: &[Rule],
        shard: Option<Shard>,
    ) -> Self {
        let key = |entry: &ZooEntry| entry.summary.as_ref().and_then(|s| s.get(rank_by));
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
            rank_by,
            descending,
            rules: rules.to_vec(),
            shard,
            healthy: count(Verdict::Healthy),
            violated: count(Verdict::Violated),
            errors: count(Verdict::Error),
            not_models: count(Verdict::NotAModel),
            models: entries,
            history: None,
            skipped: Vec::new(),
        }
    }

    /// The report in the regular file `path`: one this version wrote ([`ZOO_SCHEMA`]; another
    /// version's is refused by name, not half-read).
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let not_a_report = |message: String| Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message,
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut crate::model::open_regular(path)?.0, &mut text)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|err| not_a_report(format!("not a zoo JSON report: {err}")))?;
        match value["schema"].as_str() {
            Some(ZOO_SCHEMA) => {}
            Some(other) => {
                return Err(not_a_report(format!(
                    "a {other} report; this version merges {ZOO_SCHEMA} reports (rerun its shards)"
                )))
            }
            None => return Err(not_a_report("not a zoo JSON report: no schema".into())),
        }
        serde_json::from_value(value)
            .map_err(|err| not_a_report(format!("not a zoo JSON report: {err}")))
    }

    /// The shards' reports of one zoo as one report, ranked again. Refused unless they are a
    /// complete set made the same way: every report a shard of the same N, each of 0…N−1
    /// exactly once, one ranking and one policy, and no model in two of them.
    pub fn merge(reports: Vec<ZooReport>) -> Result<Self> {
        let invalid = |message: String| Err(Error::InvalidInput(message));
        let Some(first) = reports.first() else {
            return invalid("nothing to merge".into());
        };
        let (rank_by, descending, rules) = (first.rank_by, first.descending, first.rules.clone());
        if reports
            .iter()
            .any(|r| r.rank_by != rank_by || r.descending != descending || r.rules != rules)
        {
            return invalid("the reports were made with different --rank-by or policies".into());
        }
        let mut shards = Vec::with_capacity(reports.len());
        for report in &reports {
            match report.shard {
                Some(shard) => shards.push(shard),
                None => return invalid("a report covers a whole zoo, not a shard (made without --shard): there is nothing to merge it with".into()),
            }
        }
        let count = shards[0].count;
        if let Some(other) = shards.iter().find(|s| s.count != count) {
            return invalid(format!(
                "the reports split the zoo differently: shard {} beside shard {}",
                shards[0], other
            ));
        }
        shards.sort();
        if let Some(pair) = shards.windows(2).find(|pair| pair[0] == pair[1]) {
            return invalid(format!("shard {} is given twice", pair[0]));
        }
        let missing: Vec<String> = (0..count)
            .filter(|index| !shards.iter().any(|s| s.index == *index))
            .map(|index| Shard { index, count }.to_string())
            .collect();
        if !missing.is_empty() {
            return invalid(format!(
                "incomplete set of shards: {} missing ({} of {count} given)",
                missing.join(", "),
                shards.len()
            ));
        }
        let mut skipped: Vec<_> = reports.iter().flat_map(|r| r.skipped.clone()).collect();
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        skipped.dedup();
        let mut entries: Vec<ZooEntry> = reports.into_iter().flat_map(|r| r.models).collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].path == pair[1].path) {
            return invalid(format!("{} appears in more than one report", pair[0].path));
        }
        let mut merged = Self::new(entries, rank_by, descending, &rules, None);
        merged.skipped = skipped;
        Ok(merged)
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

    fn shard_report(shard: Option<&str>) -> ZooReport {
        ZooReport::new(
            Vec::new(),
            SummaryField::Alpha,
            false,
            &[],
            shard.map(|s| s.parse().unwrap()),
        )
    }

    #[test]
    fn merge_needs_every_shard_once() {
        let merged = ZooReport::merge(vec![shard_report(Some("1/2")), shard_report(Some("0/2"))]);
        assert!(merged.unwrap().shard.is_none());
        let cases: [(&[Option<&str>], &str); 5] = [
            (&[Some("0/3"), Some("2/3")], "1/3 missing"),
            (&[Some("0/2"), Some("0/2"), Some("1/2")], "given twice"),
            (&[Some("0/2"), Some("1/3")], "differently"),
            (&[None], "whole zoo"),
            (&[], "nothing to merge"),
        ];
        for (shards, expected) in cases {
            let reports = shards.iter().map(|s| shard_report(*s)).collect();
            let err = ZooReport::merge(reports).unwrap_err().to_string();
            assert!(err.contains(expected), "{shards:?}: {err}");
        }
    }
}
