//! TempBalance (Zhou et al. 2023) on the digits CNN: the same network, data split and seeds
//! trained with one learning rate for every layer and with TempBalance's per-layer rates (α of
//! each layer by the median Hill estimate after every epoch, rates linear in α over
//! [0.5·η, 1.5·η], the first and last layers at η). Prints the test accuracy of each, mean ± sd
//! over the seeds, and what the estimates cost per epoch — whatever the numbers turn out to be.
//!
//! Run: cargo run --release --example temp_balance [-- --seeds 5 --epochs 20 --json]
use std::path::Path;
use std::time::Instant;

use rmt_torch::workflows::allocate::LrMap;
use rmt_torch::workflows::temp_balance::TempBalance;
use serde::Serialize;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// The base learning rate η of both runs.
const BASE_RATE: f64 = 0.02;
/// Samples per step.
const BATCH: i64 = 32;

/// One training run's outcome.
#[derive(Debug, Serialize)]
struct Run {
    seed: u64,
    balanced: bool,
    test_accuracy: f64,
    seconds: f64,
    /// For TempBalance: the estimates' share of the run's time.
    estimate_seconds: f64,
}

/// Both arms over the seeds.
#[derive(Debug, Serialize)]
struct Report {
    epochs: usize,
    runs: Vec<Run>,
    uniform_mean: f64,
    uniform_sd: f64,
    balanced_mean: f64,
    balanced_sd: f64,
    /// Seconds TempBalance's estimates add to an epoch, and that as a share of the epoch.
    estimate_seconds_per_epoch: f64,
    estimate_share_of_epoch: f64,
}

fn option(args: &[String], name: &str, default: usize) -> usize {
    args.windows(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].parse().ok())
        .unwrap_or(default)
}

/// The digits CNN of `scripts/make_models.py`, each layer in a variable group of its own.
fn network(vs: &nn::VarStore) -> impl Module {
    let padded = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let root = vs.root();
    nn::seq()
        .add(nn::conv2d(root.set_group(0) / "conv1", 1, 32, 3, padded))
        .add_fn(|x| x.relu())
        .add(nn::conv2d(root.set_group(1) / "conv2", 32, 64, 3, padded))
        .add_fn(|x| x.relu().max_pool2d_default(2).flatten(1, -1))
        .add(nn::linear(
            root.set_group(2) / "fc1",
            1024,
            256,
            Default::default(),
        ))
        .add_fn(|x| x.relu())
        .add(nn::linear(
            root.set_group(3) / "fc2",
            256,
            10,
            Default::default(),
        ))
}

/// Trains one network; its test accuracy.
fn train(
    data: &(Tensor, Tensor, Tensor, Tensor),
    seed: u64,
    epochs: usize,
    balanced: bool,
) -> anyhow::Result<Run> {
    let (train_x, train_y, test_x, test_y) = data;
    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = network(&vs);
    let mut optimizer = nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(&vs, BASE_RATE)?;
    let mut balance = balanced
        .then(|| TempBalance::new(BASE_RATE, LrMap::Linear, 1))
        .transpose()?;
    let started = Instant::now();
    let mut estimate_seconds = 0.0;
    let count = train_x.size()[0];
    for epoch in 0..epochs {
        let order = Tensor::randperm(count, (Kind::Int64, Device::Cpu));
        for start in (0..count).step_by(BATCH as usize) {
            let batch = order.narrow(0, start, BATCH.min(count - start));
            let loss = net
                .forward(&train_x.index_select(0, &batch))
                .cross_entropy_for_logits(&train_y.index_select(0, &batch));
            optimizer.backward_step(&loss);
        }
        if let Some(balance) = &mut balance {
            let estimate = Instant::now();
            balance.step(epoch, &vs, &mut optimizer)?;
            estimate_seconds += estimate.elapsed().as_secs_f64();
        }
    }
    let test_accuracy = tch::no_grad(|| {
        net.forward(test_x)
            .accuracy_for_logits(test_y)
            .double_value(&[])
    });
    Ok(Run {
        seed,
        balanced,
        test_accuracy,
        seconds: started.elapsed().as_secs_f64(),
        estimate_seconds,
    })
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, variance.sqrt())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seeds = option(&args, "--seeds", 5) as u64;
    let epochs = option(&args, "--epochs", 20);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let (_, images) = rmt_torch::model::load_tensor(root.join("digits_images.npy"), None)?;
    let (_, labels) = rmt_torch::model::load_tensor(root.join("digits_labels.npy"), None)?;
    let x = (images.to_kind(Kind::Float) / 16.0).view([-1, 1, 8, 8]);
    let y = labels.to_kind(Kind::Int64);
    // One fixed split: 80 % to train, the rest to test.
    tch::manual_seed(12345);
    let order = Tensor::randperm(x.size()[0], (Kind::Int64, Device::Cpu));
    let cut = x.size()[0] * 4 / 5;
    let (training, test) = (
        order.narrow(0, 0, cut),
        order.narrow(0, cut, x.size()[0] - cut),
    );
    let data = (
        x.index_select(0, &training),
        y.index_select(0, &training),
        x.index_select(0, &test),
        y.index_select(0, &test),
    );
    let mut runs = Vec::new();
    for seed in 0..seeds {
        for balanced in [false, true] {
            runs.push(train(&data, seed, epochs, balanced)?);
        }
    }
    let accuracies = |balanced: bool| {
        runs.iter()
            .filter(|r| r.balanced == balanced)
            .map(|r| r.test_accuracy)
            .collect::<Vec<_>>()
    };
    let (uniform_mean, uniform_sd) = mean_sd(&accuracies(false));
    let (balanced_mean, balanced_sd) = mean_sd(&accuracies(true));
    let balanced_runs: Vec<&Run> = runs.iter().filter(|r| r.balanced).collect();
    let estimate: f64 = balanced_runs
        .iter()
        .map(|r| r.estimate_seconds)
        .sum::<f64>();
    let total: f64 = balanced_runs.iter().map(|r| r.seconds).sum::<f64>();
    let report = Report {
        epochs,
        estimate_seconds_per_epoch: estimate / (balanced_runs.len() * epochs) as f64,
        estimate_share_of_epoch: estimate / total,
        runs,
        uniform_mean,
        uniform_sd,
        balanced_mean,
        balanced_sd,
    };
    if args.iter().any(|a| a == "--json") {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "digits CNN, {epochs} epochs of SGD (momentum 0.9, η = {BASE_RATE}), {seeds} seeds, \
         test accuracy on a fixed 20 % split"
    );
    println!(
        "  one rate for every layer:  {:.4} ± {:.4}",
        report.uniform_mean, report.uniform_sd
    );
    println!(
        "  TempBalance:               {:.4} ± {:.4}",
        report.balanced_mean, report.balanced_sd
    );
    println!(
        "  TempBalance's estimates:   {:.4} s per epoch, {:.1} % of the epoch",
        report.estimate_seconds_per_epoch,
        100.0 * report.estimate_share_of_epoch
    );
    Ok(())
}
