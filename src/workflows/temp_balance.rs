//! TempBalance (Zhou et al. 2023) in a `tch` training loop: every `every` epochs the α of the
//! VarStore's layers is estimated again (TempBalance's median Hill estimate unless the options
//! name another estimator) and each layer's variable group is given its learning rate, the
//! learning-rate decision of [`crate::workflows::allocate`] around the base rate. The analyses
//! are a [`SpectralMonitor`]'s: the same records, in the same JSONL that `track` reads.
//!
//! Each layer's variables (its weight, bias and the BatchNorm that follows it, which takes the
//! layer's rate as in TempBalance) form a variable group of their own: build the layer under
//! `vs.root().set_group(g)`. Groups holding no analysed layer keep the optimiser's rate.
//!
//! ```no_run
//! # fn main() -> rmt_torch::Result<()> {
//! use rmt_torch::workflows::allocate::LrMap;
//! use rmt_torch::workflows::temp_balance::TempBalance;
//! use tch::nn::{self, OptimizerConfig};
//! let vs = nn::VarStore::new(tch::Device::Cpu);
//! let conv = nn::conv2d(vs.root().set_group(0) / "conv1", 1, 32, 3, Default::default());
//! let fc = nn::linear(vs.root().set_group(1) / "fc", 512, 10, Default::default());
//! let mut optimizer = nn::Sgd::default().build(&vs, 0.05).expect("an optimiser");
//! let mut balance = TempBalance::new(0.05, LrMap::Linear, 1)?.with_jsonl("tb.jsonl")?;
//! for epoch in 0..10 {
//!     // … one epoch of training …
//!     balance.step(epoch, &vs, &mut optimizer)?;
//! }
//! # Ok(())
//! # }
//! ```
use std::collections::HashMap;
use std::path::Path;

use crate::analysis::{AnalysisRequest, AnalyzeOptions};
use crate::error::{Error, Result};
use crate::stats::heavy_tail::estimator::Estimator;
use crate::workflows::allocate::{allocate_layers, Allocation, Decision, LrMap};
use crate::workflows::monitor::{SpectralMonitor, StepRecord};

/// TempBalance's learning-rate scheduler for a `tch` optimiser.
pub struct TempBalance {
    monitor: SpectralMonitor,
    estimator: Estimator,
    base: f64,
    map: LrMap,
}

impl TempBalance {
    /// Rates around `base` by `map`, α re-estimated at every epoch divisible by `every` with
    /// TempBalance's own estimator (`hill-median`), every layer counted, and otherwise the
    /// analysis defaults.
    pub fn new(base: f64, map: LrMap, every: usize) -> Result<Self> {
        let mut request = AnalysisRequest::default();
        Decision::LearningRate { base, map }.complete(&mut request);
        Self::with_options(request.resolve()?, base, map, every)
    }

    /// As [`TempBalance::new`], α by `options` (its estimator, device, layer selection …).
    pub fn with_options(
        options: AnalyzeOptions,
        base: f64,
        map: LrMap,
        every: usize,
    ) -> Result<Self> {
        let estimator = options.estimator();
        let balance = Self {
            monitor: SpectralMonitor::new(options, every)?,
            estimator,
            base,
            map,
        };
        balance.decision().check()?;
        Ok(balance)
    }

    /// Also appends every layer record to `path` as JSON lines (what `track` reads).
    pub fn with_jsonl(mut self, path: impl AsRef<Path>) -> Result<Self> {
        self.monitor = self.monitor.with_jsonl(path)?;
        Ok(self)
    }

    /// A new base rate η (a schedule's), used from the next estimate on.
    pub fn set_base(&mut self, base: f64) -> Result<()> {
        let previous = std::mem::replace(&mut self.base, base);
        if let Err(err) = self.decision().check() {
            self.base = previous;
            return Err(err);
        }
        Ok(())
    }

    fn decision(&self) -> Decision {
        Decision::LearningRate {
            base: self.base,
            map: self.map,
        }
    }

    /// At an epoch divisible by `every`: estimates α of `vs`'s layers now and sets each
    /// layer's group's learning rate in `optimizer`; the rates set, or `None` between estimates.
    pub fn step(
        &mut self,
        epoch: usize,
        vs: &tch::nn::VarStore,
        optimizer: &mut tch::nn::Optimizer,
    ) -> Result<Option<Allocation>> {
        match self.monitor.observe_var_store(epoch, vs)? {
            Some(records) => self.apply(&records, vs, optimizer).map(Some),
            None => Ok(None),
        }
    }

    /// As [`TempBalance::step`], but the estimate runs on a background thread on a copy of the
    /// weights while training goes on, and is applied at the next estimating epoch (the rates
    /// lag one estimate; deterministic all the same). `None` when no estimate was ready.
    pub fn step_in_background(
        &mut self,
        epoch: usize,
        vs: &tch::nn::VarStore,
        optimizer: &mut tch::nn::Optimizer,
    ) -> Result<Option<Allocation>> {
        let records = self.monitor.observe_var_store_in_background(epoch, vs)?;
        if records.is_empty() {
            return Ok(None);
        }
        self.apply(&records, vs, optimizer).map(Some)
    }

    /// Waits for a background estimate and writes its records (its rates are not applied).
    pub fn finish(&mut self) -> Result<()> {
        self.monitor.finish().map(drop)
    }

    /// Mean wall time an estimate took from the training loop, in seconds.
    pub fn mean_seconds_per_estimate(&self) -> Option<f64> {
        self.monitor.mean_seconds_per_observation()
    }

    fn apply(
        &self,
        records: &[StepRecord],
        vs: &tch::nn::VarStore,
        optimizer: &mut tch::nn::Optimizer,
    ) -> Result<Allocation> {
        let layers = records.iter().map(|record| &record.layer);
        let allocation = allocate_layers("<training>", self.estimator, layers, &self.decision())?;
        let groups = variable_groups(vs);
        let mut set: HashMap<usize, &str> = HashMap::new();
        for share in &allocation.shares {
            let Some(&group) = groups.get(&share.name) else {
                continue;
            };
            if let Some(other) = set.insert(group, &share.name) {
                return Err(Error::InvalidInput(format!(
                    "layers {other} and {} share variable group {group}: TempBalance sets one \
                     rate per layer, so build each layer under vs.root().set_group(g) with a \
                     group of its own",
                    share.name
                )));
            }
            optimizer.set_lr_group(group, share.value);
        }
        Ok(allocation)
    }
}

/// The variable group of each trainable variable of `vs`, by name.
fn variable_groups(vs: &tch::nn::VarStore) -> HashMap<String, usize> {
    let variables = vs
        .variables_
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let group_of: HashMap<usize, usize> = variables
        .trainable_variables
        .iter()
        .map(|var| (var.tensor.data_ptr() as usize, var.group))
        .collect();
    variables
        .named_variables
        .iter()
        .filter_map(|(name, tensor)| {
            group_of
                .get(&(tensor.data_ptr() as usize))
                .map(|&group| (name.clone(), group))
        })
        .collect()
}
