//! What a Rust service does with rmt-torch: analyse the model it holds (the in-memory
//! constructors equal `analyze` of the file, every field), gate on a policy (the verdicts of
//! `zoo`), export Prometheus metrics, and the example service over real HTTP on the loopback.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rmt_torch::report::prometheus::HealthMetrics;
use rmt_torch::workflows::health::{check, Policy, Verdict};
use rmt_torch::{analyze, AnalyzeOptions, DeviceChoice, Model};
use serde_json::Value;

use crate::fixtures;

fn options() -> AnalyzeOptions {
    AnalyzeOptions::default().on_device(DeviceChoice::Cpu)
}

/// The analysis JSON of `model`, with what names the source (its label, format) and the
/// timings left out.
fn analysis_json(model: &Model) -> Value {
    let mut json = serde_json::to_value(analyze(model, &options()).unwrap()).unwrap();
    for key in ["model", "format", "timing"] {
        json.as_object_mut().unwrap().remove(key);
    }
    json
}

fn assert_same_analysis(in_memory: &Model, from_file: &Model, what: &str) {
    let differences = fixtures::json_differences(
        &analysis_json(in_memory),
        &analysis_json(from_file),
        &|_| Some(0.0),
    );
    assert!(differences.is_empty(), "{what}: {differences:#?}");
}

#[test]
fn models_in_memory_analyse_exactly_as_their_files() {
    for name in ["digits_cnn_trained.pt", "digits_mlp_trained.pt"] {
        let path = fixtures::shipped_model(name);
        let (module, _) = rmt_torch::model::load_module(&path, tch::Device::Cpu).unwrap();
        let in_memory = Model::from_module(name, &module).unwrap();
        assert_same_analysis(&in_memory, &Model::load(&path).unwrap(), name);
        // The module's tensors are shared, not copied.
        let parameters = module.named_parameters().unwrap();
        let first = in_memory.tensors[0].load().unwrap();
        assert_eq!(first.data_ptr(), parameters[0].1.data_ptr());
    }

    let path = fixtures::dir().join("service_var_store.safetensors");
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    tch::manual_seed(3);
    let _hidden = tch::nn::linear(vs.root() / "hidden", 96, 64, Default::default());
    let _head = tch::nn::linear(vs.root() / "head", 64, 10, Default::default());
    vs.save(&path).unwrap();
    let from_file = Model::load(&path).unwrap();
    assert_same_analysis(&Model::from_var_store("vs", &vs), &from_file, "VarStore");

    let tensors: Vec<(String, tch::Tensor)> = from_file
        .tensors
        .iter()
        .map(|named| (named.name.clone(), named.load().unwrap()))
        .collect();
    let in_memory = Model::from_tensors(
        "tensors",
        tensors.iter().map(|(name, tensor)| (name.as_str(), tensor)),
    );
    assert_same_analysis(&in_memory, &from_file, "tensors");
}

#[test]
fn the_gate_gives_zoos_verdicts_and_its_metrics_parse() {
    let rules = ["alpha>5", "under_trained>=1"];
    let policy = Policy {
        rules: rules.iter().map(|rule| rule.parse().unwrap()).collect(),
    };
    let names = [
        "digits_cnn_init.pt",
        "digits_cnn_trained.pt",
        "digits_mlp_init.pt",
        "digits_mlp_trained.pt",
    ];
    let paths: Vec<String> = names
        .iter()
        .map(|name| fixtures::shipped_model(name).display().to_string())
        .collect();
    let mut args = vec!["zoo", "-f", "json"];
    for rule in rules {
        args.extend(["--fail-if", rule]);
    }
    args.extend(paths.iter().map(String::as_str));
    let output = fixtures::run(&args);
    let zoo: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&output.stderr)));
    let metrics = HealthMetrics::new().unwrap();
    let mut verdicts = Vec::new();
    for (name, path) in names.iter().zip(&paths) {
        let report = check(&Model::load(path).unwrap(), &policy, &options()).unwrap();
        let entry = zoo["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["path"] == path.as_str())
            .unwrap();
        assert_eq!(
            serde_json::to_value(report.verdict).unwrap(),
            entry["verdict"],
            "{name}"
        );
        assert_eq!(
            serde_json::to_value(&report.violations).unwrap(),
            entry["violations"],
            "{name}"
        );
        verdicts.push(report.verdict);
        metrics.record(name, "v1", &report).unwrap();
    }
    assert!(verdicts.contains(&Verdict::Healthy) && verdicts.contains(&Verdict::Violated));

    let text = metrics.exposition().unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).unwrap();
    let sample = |metric: &str, model: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && s.labels.get("model") == Some(model))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(value) => value,
                _ => panic!("{metric} is not a gauge"),
            })
    };
    let report = check(&Model::load(&paths[1]).unwrap(), &policy, &options()).unwrap();
    assert_eq!(
        sample("rmt_model_alpha", names[1]),
        report.analysis.summary.alpha
    );
    assert_eq!(
        sample("rmt_model_healthy", names[1]),
        Some(f64::from(u8::from(report.is_healthy())))
    );
    let layers = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "rmt_layer_alpha" && s.labels.get("model") == Some(names[1]))
        .count();
    assert_eq!(layers, report.analysis.layers.len());
    // A new version replaces the old one's series.
    metrics.record(names[1], "v2", &report).unwrap();
    let text = metrics.exposition().unwrap();
    assert!(!text.contains(&format!("model=\"{}\",version=\"v1\"", names[1])));
    assert!(text.contains(&format!("model=\"{}\",version=\"v2\"", names[1])));
}

/// The example service, killed when dropped.
struct Service {
    child: Child,
    port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn service_binary() -> std::path::PathBuf {
    fixtures::root().join("target/release/examples/service")
}

/// Starts the service on a free loopback port and waits for its "listening on" line.
fn start(model: &Path, extra: &[&str]) -> Service {
    let mut child = Command::new(service_binary())
        .args([
            "--model",
            model.to_str().unwrap(),
            "--port",
            "0",
            "--recheck-ms",
            "200",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service example (cargo test --release builds the examples)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Service { child, port }
}

/// One HTTP/1.1 request on the loopback; the status and the body.
fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn json(port: u16, method: &str, path: &str, body: &str) -> Value {
    let (status, text) = request(port, method, path, body);
    assert_eq!(status, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_example_service_gates_serves_exports_and_survives_a_bad_swap() {
    let dir = fixtures::dir().join("service");
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("model.pt");
    std::fs::copy(fixtures::shipped_model("digits_mlp_trained.pt"), &model).unwrap();

    // A policy the model violates: it refuses to start, and says why.
    let refused = Command::new(service_binary())
        .args(["--model", model.to_str().unwrap(), "--fail-if", "alpha<100"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refusing to serve") && stderr.contains("alpha<100"),
        "{stderr}"
    );

    let service = start(&model, &["--fail-if", "alpha>8"]);
    let health = json(service.port, "GET", "/health", "");
    assert_eq!(health["verdict"], "healthy");
    let version = health["version"].as_str().unwrap().to_string();

    // Predictions equal the module's own forward pass.
    let input: Vec<f32> = (0..64).map(|i| (i % 17) as f32 / 4.0).collect();
    let body = serde_json::json!({"shape": [1, 64], "data": input}).to_string();
    let answer = json(service.port, "POST", "/predict", &body);
    let module = tch::CModule::load(&model).unwrap();
    let expected = module
        .forward_ts(&[tch::Tensor::from_slice(&input).reshape([1, 64])])
        .unwrap();
    let expected = Vec::<f32>::try_from(expected.flatten(0, -1)).unwrap();
    let served: Vec<f32> = serde_json::from_value(answer["data"].clone()).unwrap();
    assert_eq!(served, expected);
    let (status, _) = request(
        service.port,
        "POST",
        "/predict",
        r#"{"shape": [2, 64], "data": [1]}"#,
    );
    assert_eq!(status, 400, "a wrong-sized input is refused, not a crash");
    for hostile in [
        r#"{"shape": [4611686018427387904, 4], "data": [1]}"#,
        r#"{"shape": [-1, -64], "data": [1]}"#,
        r#"{"shape": "big", "data": [1]}"#,
    ] {
        let (status, _) = request(service.port, "POST", "/predict", hostile);
        assert_eq!(status, 400, "{hostile}");
    }

    let (status, text) = request(service.port, "GET", "/metrics", "");
    assert_eq!(status, 200);
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).unwrap();
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "rmt_model_healthy" && s.labels.get("version") == Some(&version)));

    // A corrupted model swapped in: reported, and the old model still serves.
    let swap = dir.join("model.pt.new");
    std::fs::write(&swap, b"PK\x03\x04 not really a model").unwrap();
    std::fs::rename(&swap, &model).unwrap();
    let started = Instant::now();
    let reload = loop {
        let health = json(service.port, "GET", "/health", "");
        if !health["last_reload"].is_null() {
            break health;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no re-check after the swap"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        reload["version"],
        version.as_str(),
        "still serving the old model"
    );
    assert_eq!(reload["last_reload"]["ok"], false);
    assert!(
        reload["last_reload"]["error"]
            .as_str()
            .unwrap()
            .contains("model.pt"),
        "{reload}"
    );
    let again = json(service.port, "POST", "/predict", &body);
    assert_eq!(again["data"], answer["data"]);
}
