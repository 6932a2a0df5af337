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
            assert_eq!(named.shape, shape, "{file}: {}", named.name);
            assert_eq!(
                named.dtype.to_string(),
                want["dtype"].as_str().unwrap(),
                "{file}: {}",
                named.name
            );
            let tensor = named.load().unwrap();
            assert_eq!(tensor.size(), shape, "{file}: {}", named.name);
            assert_eq!(dtype_name(tensor.kind()), named.dtype.to_string());
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
        assert!(a.load().unwrap().equal(&b.load().unwrap()), "{}", a.name);
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

/// rmt-torch reads TorchScript weights with its own reader (data.pkl and the code's
/// `__parameters__`), never by running the archive: on every TorchScript archive the tests
/// make or ship, it yields exactly libtorch's `named_parameters` — names, order, dtypes and
/// values bit for bit.
#[test]
fn torchscript_weights_read_as_data_equal_libtorchs_parameters() {
    let mut archives = Vec::new();
    for directory in [
        fixtures::dir().to_path_buf(),
        fixtures::root().join("models"),
    ] {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if rmt_torch::model::detect(&path).ok() == Some(FileFormat::TorchScript) {
                archives.push(path);
            }
        }
    }
    // The fixtures script makes 11 and 4 are shipped; other tests may add more.
    assert!(archives.len() >= 15, "{} archives", archives.len());
    for path in archives {
        let ours = Model::load(&path).unwrap();
        let module = tch::CModule::load(&path).unwrap();
        let theirs = module.named_parameters().unwrap();
        let names = |list: Vec<&str>| list.join(", ");
        assert_eq!(
            names(ours.tensors.iter().map(|t| t.name.as_str()).collect()),
            names(theirs.iter().map(|(name, _)| name.as_str()).collect()),
            "{}",
            path.display()
        );
        for (mine, (name, tensor)) in ours.tensors.iter().zip(&theirs) {
            let mine = mine.load().unwrap();
            assert_eq!(mine.kind(), tensor.kind(), "{name}");
            assert_eq!(mine.size(), tensor.size(), "{name}");
            assert!(mine.equal(tensor), "{}: {name}", path.display());
        }
    }
}

/// lpips 0.1.4's weights, written by Python 2-era torch as `OrderedDict([[name, tensor], …])`
/// over CUDA storages: every tensor equals what `torch.load` reads, value for value.
#[test]
fn a_python2_era_ordered_dict_of_lists_loads_as_torch_loads_it() {
    const TORCH: &str = r#"
import json, sys, torch
state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
print(json.dumps({k: v.flatten().tolist() for k, v in state.items()}))
"#;
    for file in ["lpips/alex.pth", "lpips/squeeze.pth"] {
        let path = fixtures::pypi_model(file);
        let expected: serde_json::Map<String, serde_json::Value> =
            fixtures::python_json(TORCH, &[&path]);
        let model = Model::load(&path).unwrap();
        assert_eq!(model.format, FileFormat::TorchSaveLegacy);
        assert_eq!(model.tensors.len(), expected.len(), "{file}");
        for (tensor, (name, values)) in model.tensors.iter().zip(&expected) {
            assert_eq!(&tensor.name, name, "{file}");
            let ours: Vec<f64> = Vec::try_from(
                tensor
                    .load()
                    .unwrap()
                    .to_kind(tch::Kind::Double)
                    .flatten(0, -1),
            )
            .unwrap();
            assert_eq!(ours, fixtures::floats(values), "{file}: {name}");
        }
    }
}
