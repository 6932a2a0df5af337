//! TempBalance in a `tch` loop: the rates one estimate sets are the learning-rate decision on the
//! α of the same weights, and the optimiser then steps each layer with its own rate (checked on
//! the update of a linear loss, whose gradient is known); training with it is deterministic.
use rmt_torch::analysis::analyze;
use rmt_torch::model::Model;
use rmt_torch::stats::heavy_tail::estimator::Estimator;
use rmt_torch::workflows::allocate::{allocate_layers, Decision, LrMap};
use rmt_torch::workflows::temp_balance::TempBalance;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::fixtures;

/// Four layers, each in a group of its own (the first and last keep the base rate).
fn layers(vs: &nn::VarStore) -> Vec<nn::Linear> {
    let sizes = [(64, 96), (96, 128), (128, 80), (80, 10)];
    sizes
        .iter()
        .enumerate()
        .map(|(i, &(input, output))| {
            let path = vs.root().set_group(i) / format!("fc{i}");
            nn::linear(path, input, output, Default::default())
        })
        .collect()
}

#[test]
fn one_estimate_sets_each_layers_rate() {
    tch::manual_seed(4);
    let vs = nn::VarStore::new(Device::Cpu);
    let linear = layers(&vs);
    let mut optimizer = nn::Sgd::default().build(&vs, 0.1).unwrap();
    let mut balance = TempBalance::new(0.1, LrMap::Sqrt, 1).unwrap();
    let allocation = balance.step(0, &vs, &mut optimizer).unwrap().unwrap();

    let options = fixtures::options(serde_json::json!({"estimator": "hill-median"}));
    let analysis = analyze(&Model::from_var_store("<training>", &vs), &options).unwrap();
    let decision = Decision::LearningRate {
        base: 0.1,
        map: LrMap::Sqrt,
    };
    let expected = allocate_layers(
        "<training>",
        Estimator::HillMedian,
        &analysis.layers,
        &decision,
    )
    .unwrap();
    assert_eq!(allocation.values, expected.values);
    let tuned: Vec<bool> = allocation.shares.iter().map(|s| s.tuned).collect();
    assert_eq!(tuned, [false, true, true, false]);

    // A loss Σ W∘C has gradient C: one SGD step moves each weight by −rate·C.
    let before: Vec<Tensor> = linear.iter().map(|l| l.ws.detach().copy()).collect();
    let directions: Vec<Tensor> = linear
        .iter()
        .map(|l| Tensor::randn(l.ws.size(), (Kind::Float, Device::Cpu)))
        .collect();
    let loss = linear
        .iter()
        .zip(&directions)
        .map(|(l, c)| (&l.ws * c).sum(Kind::Float))
        .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b);
    optimizer.backward_step(&loss);
    for ((layer, start), (direction, share)) in linear
        .iter()
        .zip(&before)
        .zip(directions.iter().zip(&allocation.shares))
    {
        let rate = (start - &layer.ws).sum(Kind::Double).double_value(&[])
            / direction.sum(Kind::Double).double_value(&[]);
        assert!(
            (rate - share.value).abs() < 1e-4 * share.value,
            "{}: stepped with {rate}, set {}",
            share.name,
            share.value
        );
    }
}

#[test]
fn training_with_it_is_deterministic_and_layers_must_have_groups_of_their_own() {
    let train = || {
        tch::manual_seed(9);
        let vs = nn::VarStore::new(Device::Cpu);
        let linear = layers(&vs);
        let mut optimizer = nn::Sgd::default().build(&vs, 0.05).unwrap();
        let mut balance = TempBalance::new(0.05, LrMap::Linear, 1).unwrap();
        let x = Tensor::randn([32, 64], (Kind::Float, Device::Cpu));
        for epoch in 0..3 {
            let out = linear
                .iter()
                .fold(x.shallow_clone(), |h, l| h.apply(l).tanh());
            optimizer.backward_step(&out.square().mean(Kind::Float));
            balance
                .step_in_background(epoch, &vs, &mut optimizer)
                .unwrap();
        }
        balance.finish().unwrap();
        Vec::<f32>::try_from(linear[1].ws.flatten(0, -1)).unwrap()
    };
    assert_eq!(train(), train());

    let vs = nn::VarStore::new(Device::Cpu);
    let _shared = (
        nn::linear(vs.root() / "a", 64, 64, Default::default()),
        nn::linear(vs.root() / "b", 64, 64, Default::default()),
        nn::linear(vs.root() / "c", 64, 64, Default::default()),
    );
    let mut optimizer = nn::Sgd::default().build(&vs, 0.05).unwrap();
    let err = TempBalance::new(0.05, LrMap::Linear, 1)
        .unwrap()
        .step(0, &vs, &mut optimizer)
        .unwrap_err();
    assert!(err.to_string().contains("set_group"), "{err}");
}
