//! A Rust inference service with rmt-torch inside: it serves a TorchScript model's predictions,
//! refuses to start when the model violates the policy, re-checks the model file in the
//! background when it is swapped (keeping the model it serves on any failure), and exposes
//! `/metrics` (Prometheus) and `/health`.
//!
//! ```text
//! cargo run --release --example service -- --model models/digits_mlp_trained.pt \
//!     --port 8080 --fail-if 'alpha>8' --fail-if 'over_trained>=2'
//! curl -s localhost:8080/predict -d '{"shape": [1, 64], "data": [0, 0, 5, …]}'
//! curl -s localhost:8080/health
//! curl -s localhost:8080/metrics
//! ```
//!
//! Exit codes: 1 when the model violates the policy at start-up, 2 when it cannot be loaded or
//! the arguments are wrong.
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{bail, Context};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use rmt_torch::model::load_module;
use rmt_torch::report::prometheus::HealthMetrics;
use rmt_torch::workflows::health::{check, HealthReport, Policy, Verdict};
use rmt_torch::{AnalyzeOptions, DeviceChoice, Model};

/// What the service was started with.
struct Settings {
    model: PathBuf,
    port: u16,
    policy: Policy,
    recheck: Duration,
}

fn settings() -> anyhow::Result<Settings> {
    let mut args = std::env::args().skip(1);
    let (mut model, mut port, mut rules, mut recheck) = (None, 8080, Vec::new(), 2000);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => model = Some(PathBuf::from(value()?)),
            "--port" => port = value()?.parse().context("--port")?,
            "--fail-if" => rules.push(value()?.parse()?),
            "--recheck-ms" => recheck = value()?.parse().context("--recheck-ms")?,
            other => bail!("unknown argument {other} (--model PATH [--port N] [--fail-if RULE]… [--recheck-ms N])"),
        }
    }
    Ok(Settings {
        model: model.context("--model PATH is required")?,
        port,
        policy: Policy { rules },
        recheck: Duration::from_millis(recheck),
    })
}

/// The model being served and the check that let it in.
struct Served {
    module: tch::CModule,
    version: String,
    report: HealthReport,
}

/// The outcome of the last attempt to take in a changed model file.
#[derive(Clone)]
struct Reload {
    version: String,
    error: Option<String>,
}

struct AppState {
    settings: Settings,
    served: RwLock<Arc<Served>>,
    last_reload: Mutex<Option<Reload>>,
    metrics: HealthMetrics,
}

/// The model's name in metrics: its file name.
fn model_name(settings: &Settings) -> String {
    settings.model.file_name().map_or_else(
        || "model".into(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Loads the model file (rmt-torch checks it before libtorch runs it), analyses the module it
/// holds without reading the file again, and judges it.
fn load_and_check(settings: &Settings) -> anyhow::Result<Served> {
    let version = rmt_torch::workflows::zoo::content_hash(&settings.model)?;
    let (mut module, _) = load_module(&settings.model, tch::Device::Cpu)?;
    module.set_eval();
    let model = Model::from_module(&model_name(settings), &module)?;
    let options = AnalyzeOptions::default().on_device(DeviceChoice::Cpu);
    let report = check(&model, &settings.policy, &options)?;
    Ok(Served {
        module,
        version,
        report,
    })
}

fn verdict_text(report: &HealthReport) -> String {
    let rules: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
    match report.verdict {
        Verdict::Healthy => "healthy".into(),
        _ => format!("violates {}", rules.join(", ")),
    }
}

/// Re-checks the model file every `recheck`: a changed file that loads and passes the policy
/// replaces the served model; anything else is reported and the served model stays.
async fn watch(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(state.settings.recheck).await;
        let version = rmt_torch::workflows::zoo::content_hash(&state.settings.model).ok();
        let served = state.served.read().unwrap().version.clone();
        let tried = state.last_reload.lock().unwrap().clone().map(|r| r.version);
        if version.as_deref() == Some(served.as_str()) || (version.is_some() && version == tried) {
            continue;
        }
        let attempt = state.clone();
        let result = tokio::task::spawn_blocking(move || load_and_check(&attempt.settings)).await;
        let outcome = match result {
            Ok(Ok(candidate)) if candidate.report.is_healthy() => {
                let name = model_name(&state.settings);
                let _ = state
                    .metrics
                    .record(&name, &candidate.version, &candidate.report);
                eprintln!("serving {} version {}", name, candidate.version);
                let version = candidate.version.clone();
                *state.served.write().unwrap() = Arc::new(candidate);
                Reload {
                    version,
                    error: None,
                }
            }
            Ok(Ok(candidate)) => Reload {
                version: candidate.version.clone(),
                error: Some(format!("not served: {}", verdict_text(&candidate.report))),
            },
            Ok(Err(err)) => Reload {
                version: version.unwrap_or_else(|| "unreadable".into()),
                error: Some(format!("{err:#}")),
            },
            Err(err) => Reload {
                version: version.unwrap_or_else(|| "unreadable".into()),
                error: Some(format!("the check stopped: {err}")),
            },
        };
        if let Some(error) = &outcome.error {
            eprintln!("keeping the served model: {error}");
        }
        *state.last_reload.lock().unwrap() = Some(outcome);
    }
}

async fn predict(
    State(state): State<Arc<AppState>>,
    Json(request): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let served = state.served.read().unwrap().clone();
    let answer = tokio::task::spawn_blocking(move || -> anyhow::Result<Value> {
        let shape: Vec<i64> = serde_json::from_value(request["shape"].clone())
            .context("\"shape\" must be a list of integers")?;
        let data: Vec<f32> = serde_json::from_value(request["data"].clone())
            .context("\"data\" must be a list of numbers")?;
        let count = shape
            .iter()
            .try_fold(1i64, |count, &d| count.checked_mul(d).filter(|_| d > 0));
        if count != Some(data.len() as i64) {
            bail!(
                "\"data\" has {} numbers; \"shape\" {shape:?} must be positive sizes with that product",
                data.len()
            );
        }
        let input = tch::Tensor::from_slice(&data).f_reshape(&shape)?;
        let output = tch::no_grad(|| served.module.forward_ts(&[input]))?;
        let output = output.f_to_kind(tch::Kind::Float)?.f_contiguous()?;
        Ok(json!({
            "shape": output.size(),
            "data": Vec::<f32>::try_from(output.f_flatten(0, -1)?)?,
            "version": served.version,
        }))
    })
    .await;
    match answer {
        Ok(Ok(body)) => (StatusCode::OK, Json(body)),
        Ok(Err(err)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("{err:#}") })),
        ),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": err.to_string() })),
        ),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    let served = state.served.read().unwrap().clone();
    let last_reload = state.last_reload.lock().unwrap().clone();
    Json(json!({
        "verdict": served.report.verdict,
        "version": served.version,
        "violations": served.report.violations,
        "summary": served.report.analysis.summary,
        "check_seconds": served.report.seconds,
        "last_reload": last_reload.map(|reload| json!({
            "version": reload.version,
            "ok": reload.error.is_none(),
            "error": reload.error,
        })),
    }))
}

async fn serve_metrics(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    match state.metrics.exposition() {
        Ok(text) => (StatusCode::OK, text),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

fn main() -> std::process::ExitCode {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let served = match load_and_check(&settings) {
        Ok(served) => served,
        Err(err) => {
            eprintln!("error: {err:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let name = model_name(&settings);
    if !served.report.is_healthy() {
        eprintln!(
            "refusing to serve {}: {}",
            settings.model.display(),
            verdict_text(&served.report)
        );
        return std::process::ExitCode::from(1);
    }
    let run = || -> anyhow::Result<()> {
        let metrics = HealthMetrics::new()?;
        metrics.record(&name, &served.version, &served.report)?;
        eprintln!(
            "{name} version {} is healthy (checked in {:.2} s)",
            served.version, served.report.seconds
        );
        let port = settings.port;
        let state = Arc::new(AppState {
            settings,
            served: RwLock::new(Arc::new(served)),
            last_reload: Mutex::new(None),
            metrics,
        });
        tokio::runtime::Runtime::new()?.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            println!("listening on http://{}", listener.local_addr()?);
            tokio::spawn(watch(state.clone()));
            let app = Router::new()
                .route("/predict", post(predict))
                .route("/health", get(health))
                .route("/metrics", get(serve_metrics))
                .with_state(state);
            axum::serve(listener, app).await?;
            Ok(())
        })
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
