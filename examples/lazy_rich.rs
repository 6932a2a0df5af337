//! Thamm, Staats & Rosenow's (2022) lazy/rich experiment: an MLP on the digits data whose output is scaled by α,
//! a_L = softmax(α·f(x)), with the loss divided by α² (Chizat, Oyallon & Bach). Large α moves
//! the weights little (lazy: the spectrum stays Marchenko-Pastur), small α a lot (rich: spikes
//! grow beyond the Tracy-Widom edge). The SpectralMonitor records the hidden 256×256 layer.
//!
//! Run: cargo run --release --example lazy_rich [-- --steps 300 --json]
use std::path::Path;

use rmt_torch::workflows::monitor::{SpectralMonitor, StepRecord};
use serde::Serialize;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind};

/// One regime's outcome.
#[derive(Debug, Serialize)]
struct Regime {
    alpha: f64,
    accuracy: f64,
    /// ‖W − W₀‖_F / ‖W₀‖_F of the hidden layer.
    relative_change: f64,
    /// The monitor's records of the hidden layer, one per observation.
    hidden_layer: Vec<StepRecord>,
    /// What an observation of the whole network (three layers) cost the loop, in seconds.
    seconds_per_observation: f64,
}

fn option(args: &[String], name: &str, default: usize) -> usize {
    args.windows(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let steps = option(&args, "--steps", 300);
    let hidden = option(&args, "--hidden", 256) as i64;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let (_, images) = rmt_torch::model::load_tensor(root.join("digits_images.npy"), None)?;
    let (_, labels) = rmt_torch::model::load_tensor(root.join("digits_labels.npy"), None)?;
    let x = images.to_kind(Kind::Float) / 16.0;
    let y = labels.to_kind(Kind::Int64);
    let mut regimes = Vec::new();
    for alpha in [0.5, 1.0, 5.0] {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = nn::seq()
            .add(nn::linear(
                vs.root() / "fc1",
                64,
                hidden,
                Default::default(),
            ))
            .add_fn(|t| t.relu())
            .add(nn::linear(
                vs.root() / "fc2",
                hidden,
                hidden,
                Default::default(),
            ))
            .add_fn(|t| t.relu())
            .add(nn::linear(
                vs.root() / "fc3",
                hidden,
                10,
                Default::default(),
            ));
        let hidden_weight = |vs: &nn::VarStore| vs.variables()["fc2.weight"].detach().copy();
        let initial = hidden_weight(&vs);
        let mut optimizer = nn::Sgd::default().build(&vs, 0.2)?;
        let mut monitor = SpectralMonitor::new(Default::default(), steps.div_ceil(3).max(1))?;
        let mut records = monitor.observe_var_store(0, &vs)?.unwrap_or_default();
        for step in 1..=steps {
            let logits = net.forward(&x) * alpha;
            let loss = logits.cross_entropy_for_logits(&y) / (alpha * alpha);
            optimizer.backward_step(&loss);
            if let Some(observed) = monitor.observe_var_store(step, &vs)? {
                records.extend(observed);
            }
        }
        let accuracy = tch::no_grad(|| net.forward(&x).accuracy_for_logits(&y).double_value(&[]));
        let change = (hidden_weight(&vs) - &initial).norm().double_value(&[])
            / initial.norm().double_value(&[]);
        regimes.push(Regime {
            alpha,
            accuracy,
            relative_change: change,
            seconds_per_observation: monitor.mean_seconds_per_observation().unwrap_or(0.0),
            hidden_layer: records
                .into_iter()
                .filter(|r| r.layer.name == "fc2.weight")
                .collect(),
        });
    }
    if args.iter().any(|a| a == "--json") {
        println!("{}", serde_json::to_string_pretty(&regimes)?);
        return Ok(());
    }
    println!("hidden layer {hidden}×{hidden}, {steps} full-batch SGD steps on the digits data");
    let cost: f64 = regimes
        .iter()
        .map(|r| r.seconds_per_observation)
        .sum::<f64>()
        / regimes.len() as f64;
    println!("the monitor's cost: {cost:.4} s per observation of the network\n");
    println!(
        "{:>5}  {:>8}  {:>8}  {:>5}  {:>9}  {:>8}  {:>8}",
        "alpha", "accuracy", "|dW|/|W|", "step", "spikes_tw", "mmp_frac", "alpha_PL"
    );
    for regime in &regimes {
        for record in &regime.hidden_layer {
            let spikes = record
                .layer
                .rmt
                .bulk
                .as_ref()
                .map_or(0, |b| b.num_spikes_tw);
            let fraction = record
                .layer
                .rmt
                .modified
                .as_ref()
                .map_or(f64::NAN, |m| m.mmp_fraction);
            let pl = record
                .layer
                .power_law
                .as_ref()
                .map_or(f64::NAN, |f| f.alpha);
            println!(
                "{:>5}  {:>8.3}  {:>8.4}  {:>5}  {:>9}  {:>8.4}  {:>8.3}",
                regime.alpha,
                regime.accuracy,
                regime.relative_change,
                record.step,
                spikes,
                fraction,
                pl
            );
        }
    }
    Ok(())
}
