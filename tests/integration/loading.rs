//! Every format loads every tensor with the right name, shape and dtype.
use rmt_torch::model::{dtype_name, FileFormat};
use rmt_torch::Model;

use crate::fixtures;

#[test]
fn every_fixture_lists_every_tensor_as_python_sees_it() {
    let reference = fixtures::reference().as_object().unwrap();
    assert!(reference.len() >= 7);
    for (file, tensors) in reference {
        let model = Model::load(fixtures::file(file)).unwrap();
        let expected_format = if file.ends_with(".pt") {
            FileFormat::TorchScript
        } else {
            FileFormat::SafeTensors
        };
        assert_eq!(model.format, expected_format, "{file}");
        let tensors = tensors.as_object().unwrap();
        assert_eq!(model.tensors.len(), tensors.len(), "{file}: tensor count");
        for named in &model.tensors {
            let want = &tensors[&named.name];
            let shape: Vec<i64> = want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_i64().unwrap())
                .collect();
            assert_eq!(named.tensor.size(), shape, "{file}: {}", named.name);
            assert_eq!(
                dtype_name(named.tensor.kind()),
                want["dtype"].as_str().unwrap(),
                "{file}: {}",
                named.name
            );
        }
    }
}

#[test]
fn scripted_and_traced_archives_hold_the_same_parameters() {
    let scripted = Model::load(fixtures::file("mlp_scripted.pt")).unwrap();
    let traced = Model::load(fixtures::file("mlp_traced.pt")).unwrap();
    let names = |m: &Model| m.tensors.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&scripted), names(&traced));
    for (a, b) in scripted.tensors.iter().zip(&traced.tensors) {
        assert!(a.tensor.equal(&b.tensor), "{}", a.name);
    }
}

#[test]
fn the_format_comes_from_the_content_not_the_extension() {
    let renamed = fixtures::dir().join("safetensors_named.pt");
    std::fs::copy(fixtures::file("weights_float32.safetensors"), &renamed).unwrap();
    assert_eq!(
        Model::load(&renamed).unwrap().format,
        FileFormat::SafeTensors
    );
}
