"""rmt_torch in process, against the CLI on the same weights and against WeightWatcher 0.7.7.

Run by scripts/test after `cargo test --release` (which builds target/release/rmt-torch).
"""
import copy
import json
import logging
import math
import os
import subprocess
from pathlib import Path

import numpy
import pytest
import torch

import rmt_torch

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "rmt-torch"
SHIPPED = ROOT / "models" / "digits_cnn_trained.pt"


def cli_json(path, *args):
    assert CLI.exists(), f"{CLI} not found: cargo test --release builds it"
    output = subprocess.run(
        [str(CLI), "analyze", str(path), "--device", "cpu", "-f", "json", "-q", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(output.stdout)


def differences(ours, theirs, path="", tolerance=1e-12):
    """Every difference between two JSON values: numbers relatively, the rest exactly."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if ours.keys() != theirs.keys():
            return [f"{path}: keys {sorted(ours.keys() ^ theirs.keys())}"]
        return [d for key in ours for d in differences(ours[key], theirs[key], f"{path}.{key}", tolerance)]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{path}: length {len(ours)} vs {len(theirs)}"]
        return [d for i, (a, b) in enumerate(zip(ours, theirs)) for d in differences(a, b, f"{path}[{i}]", tolerance)]
    numbers = (int, float)
    if isinstance(ours, numbers) and isinstance(theirs, numbers) and not isinstance(ours, bool):
        if abs(ours - theirs) <= tolerance * max(abs(theirs), 1e-12):
            return []
    elif ours == theirs:
        return []
    return [f"{path}: {ours!r} vs {theirs!r}"]


def comparable(record):
    """An analysis record without what names its source or times it."""
    return {k: v for k, v in record.items() if k not in ("model", "format", "timing")}


@pytest.mark.parametrize("source", ["path", "module", "state_dict", "nested checkpoint"])
def test_in_process_equals_the_cli(source):
    module = torch.jit.load(str(SHIPPED))
    obj = {
        "path": SHIPPED,
        "module": module,
        "state_dict": module.state_dict(),
        "nested checkpoint": {"epoch": 3, "model": module.state_dict()},
    }[source]
    ours = rmt_torch.analyze(obj, device="cpu", randomize=True, seed=5, number_variance=[1, 2, 5]).record
    if source == "nested checkpoint":
        for entry in ours["layers"] + ours["skipped"]:
            assert entry["name"].startswith("model.")
            entry["name"] = entry["name"].removeprefix("model.")
    theirs = cli_json(SHIPPED, "--randomize", "--seed", "5", "--number-variance", "1,2,5")
    assert differences(comparable(ours), comparable(theirs)) == []


def test_options_mirror_the_cli_and_bad_ones_raise():
    analysis = rmt_torch.analyze(SHIPPED, device="cpu", conv="reshape", layers="conv", convention="rmt")
    theirs = cli_json(SHIPPED, "--conv", "reshape", "--layers", "conv", "--convention", "rmt")
    assert differences(comparable(analysis.record), comparable(theirs)) == []
    with pytest.raises(rmt_torch.OptionError, match="unknown option 'bogus'"):
        rmt_torch.analyze(SHIPPED, bogus=1)
    with pytest.raises(rmt_torch.OptionError, match="invalid value for min_evals: must be at least 1"):
        rmt_torch.analyze(SHIPPED, min_evals=0)
    with pytest.raises(rmt_torch.OptionError, match="conv mode"):
        rmt_torch.analyze(SHIPPED, conv="diagonal")
    with pytest.raises(rmt_torch.FileError, match="no-such-model.pt"):
        rmt_torch.analyze(ROOT / "no-such-model.pt")
    with pytest.raises(rmt_torch.InputError, match="non-finite"):
        rmt_torch.analyze({"w": torch.full((20, 10), math.nan)})
    with pytest.raises(rmt_torch.InputError, match="no weight matrices"):
        rmt_torch.analyze({"w": torch.ones(20, 10, dtype=torch.int64)})
    with pytest.raises(TypeError, match="nn.Module, a mapping"):
        rmt_torch.analyze(42)


def test_keywords_are_the_cli_flags_and_settings_repeat_a_run():
    analysis = rmt_torch.analyze(SHIPPED, device="cpu", ww_compat=True, tw_level=0.01)
    assert list(analysis.settings) == rmt_torch._rmt_torch.analysis_keywords()
    assert analysis.settings["conv"] == "ww" and analysis.settings["min_evals"] == 8
    help_text = subprocess.run([str(CLI), "analyze", "--help"], check=True, capture_output=True, text=True).stdout
    for keyword in analysis.settings:
        assert "--" + keyword.replace("_", "-") in help_text, keyword
    again = rmt_torch.analyze(SHIPPED, **analysis.settings)
    assert differences(comparable(again.record), comparable(analysis.record)) == []
    with pytest.raises(rmt_torch.OptionError, match="did you mean 'min_evals'"):
        rmt_torch.analyze(SHIPPED, min_eval=3)
    with pytest.raises(rmt_torch.OptionError, match="invalid value for min_evals: invalid type"):
        rmt_torch.analyze(SHIPPED, min_evals="three")
    with pytest.raises(rmt_torch.OptionError, match="invalid value for seed: a seed is used only with randomize"):
        rmt_torch.analyze(SHIPPED, seed=3)


def test_tensors_are_shared_not_copied():
    module = torch.nn.Sequential(torch.nn.Linear(300, 200), torch.nn.Linear(200, 100))
    tensors = [p.detach() for p in module.parameters()]
    assert rmt_torch._rmt_torch.shared_data_pointers(tensors) == [t.data_ptr() for t in tensors]
    before = [t.clone() for t in tensors]
    rmt_torch.analyze(module, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(before, tensors)), "the weights were written"


def test_esd_is_one_layers_eigenvalues():
    module = torch.jit.load(str(SHIPPED))
    eigenvalues = rmt_torch.esd(module, "fc1.weight", device="cpu")
    theirs = cli_json(SHIPPED, "--eigenvalues", "--layers", "^fc1\\.weight$")["layers"][0]["eigenvalues"]
    assert eigenvalues.dtype == numpy.float64
    numpy.testing.assert_allclose(eigenvalues, theirs, rtol=1e-12)
    weight = module.state_dict()["fc1.weight"].double()
    numpy.testing.assert_allclose(
        eigenvalues, numpy.sort(torch.linalg.svdvals(weight).numpy() ** 2), rtol=1e-9, atol=1e-12
    )
    with pytest.raises(rmt_torch.InputError, match="no-such"):
        rmt_torch.esd(module, "no-such.weight")


def test_esd_takes_a_tensor_name_a_module_name_or_an_index():
    module = torch.jit.load(str(SHIPPED))
    by_name = rmt_torch.esd(SHIPPED, "conv2.weight", device="cpu")
    numpy.testing.assert_array_equal(rmt_torch.esd(SHIPPED, "conv2", device="cpu"), by_name)
    numpy.testing.assert_array_equal(rmt_torch.esd(module, "conv2", device="cpu"), by_name)
    numpy.testing.assert_array_equal(rmt_torch.esd(module, 1, device="cpu"), by_name)
    numpy.testing.assert_array_equal(rmt_torch.esd(module, -1, device="cpu"), rmt_torch.esd(module, "fc2"))
    with pytest.raises(rmt_torch.InputError, match="did you mean 'fc1.weight'"):
        rmt_torch.esd(module, "fc")
    with pytest.raises(IndexError, match="4 analysed layers"):
        rmt_torch.esd(module, 4)
    with pytest.raises(TypeError, match="layer must be a tensor name"):
        rmt_torch.esd(module, 1.5)


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_to_pandas_matches_weightwatcher_in_memory(name):
    torchvision = pytest.importorskip("torchvision")
    weightwatcher = pytest.importorskip("weightwatcher")
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    ours = rmt_torch.analyze(model, device="cpu").to_pandas().set_index("longname")
    theirs = weightwatcher.WeightWatcher(model=model).analyze().set_index("longname")
    assert sorted(ours.index) == sorted(theirs.index)
    for column in ["alpha", "alpha_weighted", "log_norm", "stable_rank", "lambda_max", "D", "xmin"]:
        numpy.testing.assert_allclose(
            ours.loc[theirs.index, column], theirs[column], rtol=1e-10, err_msg=column
        )
    # Names and labels as WeightWatcher's details has them, not the JSON's.
    for column in ["name", "layer_type", "status", "has_esd", "warning", "num_evals", "rf"]:
        assert list(ours.loc[theirs.index, column]) == list(theirs[column]), column
    assert list(ours.columns[: len(theirs.columns)]) == list(theirs.columns)


def test_monitor_records_equal_analyze_and_track_reads_them(tmp_path):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    jsonl = tmp_path / "spectra.jsonl"
    x, y = torch.randn(256, 32), torch.randn(256, 8)
    hessian = {"loss": "mse", "top_k": 2, "seed": 3}
    monitor = rmt_torch.SpectralMonitor(model, every=10, jsonl=jsonl, background=True, device="cpu",
                                        sharpness=(x[:64], y[:64]), hessian=hessian)
    snapshots = {}
    for step in range(31):
        if step % 10 == 0:
            snapshots[step] = {k: v.clone() for k, v in model.state_dict().items()}
        monitor.observe(step)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    records = monitor.finish()
    assert sorted({r["step"] for r in records}) == [0, 10, 20, 30]
    replica = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 8))
    for step, state in snapshots.items():
        expected = rmt_torch.analyze(state, device="cpu").layers
        observed = [r for r in records if r["step"] == step and r["name"] != rmt_torch.HESSIAN_RECORD]
        assert len(observed) == len(expected)
        for ours, theirs in zip(observed, expected):
            ours = {k: v for k, v in ours.items() if k != "step"}
            assert differences(ours, theirs) == [], step
        [sharpness] = [r for r in records if r["step"] == step and r["name"] == rmt_torch.HESSIAN_RECORD]
        replica.load_state_dict(state)
        direct = rmt_torch.hessian(replica, x[:64], y[:64], **hessian)
        assert sharpness["hessian_top_eigenvalues"] == direct["top_eigenvalues"], step
        assert sharpness["sharpness"] == direct["top_eigenvalues"][0] > 0
    assert monitor.latest_metrics()["rmt/sharpness"] == records[-1]["sharpness"]
    assert monitor.mean_seconds_per_observation() > 0
    lines = jsonl.read_text().splitlines()
    assert len(lines) == len(records)
    tracked = subprocess.run(
        [str(CLI), "track", "--jsonl", str(jsonl), "-f", "json"], check=True, capture_output=True, text=True
    )
    assert "0.weight" in tracked.stdout and "2.weight" in tracked.stdout
    table = subprocess.run(
        [str(CLI), "track", "--jsonl", str(jsonl), "--layers", "^0"], check=True, capture_output=True, text=True
    ).stdout
    assert "sharpness" in table.splitlines()[0] and "<loss Hessian>" in table and "2.weight" not in table


def test_cuda_tensors_are_analysed_on_their_gpu():
    if not torch.cuda.is_available():
        if os.environ.get("RMT_TORCH_REQUIRE_CUDA") == "1":
            pytest.fail("RMT_TORCH_REQUIRE_CUDA=1 but torch sees no CUDA device")
        with open(ROOT / "target" / "test-skips.log", "a") as skips:
            skips.write("python: test_cuda_tensors_are_analysed_on_their_gpu (no CUDA GPU)\n")
        pytest.skip("no CUDA GPU")
    torch.manual_seed(2)
    weights = {"w": torch.randn(512, 256, dtype=torch.float64)}
    on_gpu = rmt_torch.analyze({"w": weights["w"].cuda()})  # no device: the tensors' own
    on_cpu = rmt_torch.analyze(weights, device="cpu")
    assert on_gpu.record["device"].startswith("cuda")
    numpy.testing.assert_allclose(
        on_gpu.layers[0]["lambda_max"], on_cpu.layers[0]["lambda_max"], rtol=1e-10
    )


def test_jacobian_of_a_module_in_memory():
    torch.manual_seed(4)
    module = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 8))
    batch = torch.randn(3, 16)
    report = rmt_torch.jacobian(module, batch, float64=True)
    assert module.training, "the caller's module is left as it was"
    reference = module.double()
    for sample, record in zip(batch.double(), report["samples"]):
        exact = torch.autograd.functional.jacobian(reference, sample)
        numpy.testing.assert_allclose(
            sorted(record["singular_values"]), sorted(torch.linalg.svdvals(exact).tolist()), rtol=1e-10
        )

    scripted = torch.jit.load(str(ROOT / "models" / "digits_mlp_trained.pt"))
    batch = torch.load(ROOT / "models" / "digits_mlp_batch.pt", weights_only=True)
    ours = rmt_torch.jacobian(scripted, batch, device="cpu", float64=True, samples=4)
    output = subprocess.run(
        [str(CLI), "jacobian", str(ROOT / "models" / "digits_mlp_trained.pt"), "--input",
         str(ROOT / "models" / "digits_mlp_batch.pt"), "--device", "cpu", "--f64", "--samples", "4",
         "-f", "json", "-q"],
        check=True, capture_output=True, text=True,
    )
    theirs = json.loads(output.stdout)
    skip = ("model", "input", "timing", "chunk")
    assert differences({k: v for k, v in ours.items() if k not in skip},
                       {k: v for k, v in theirs.items() if k not in skip}, tolerance=1e-10) == []
    with pytest.raises(rmt_torch.OptionError, match="unknown option 'layers'"):
        rmt_torch.jacobian(scripted, batch, layers="fc")
    with pytest.raises(TypeError, match="batch must be a torch.Tensor"):
        rmt_torch.jacobian(scripted, [1, 2, 3])
    with pytest.raises(rmt_torch.InputError, match="rejected an input of shape"):
        rmt_torch.jacobian(scripted, torch.randn(2, 5))
    with pytest.raises(rmt_torch.InputError, match="floating-point"):
        rmt_torch.jacobian(scripted, torch.randint(0, 3, (2, 64)))


def track_reads(jsonl):
    """`rmt-torch track --jsonl` on the file: its steps."""
    output = subprocess.run(
        [str(CLI), "track", "--jsonl", str(jsonl), "-f", "json"], check=True, capture_output=True, text=True
    )
    return output.stdout


def test_hessian_of_a_module_in_memory_and_sharpness_over_training():
    torch.manual_seed(6)
    module = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    inputs, labels = torch.randn(24, 5), torch.randint(0, 3, (24,))
    report = rmt_torch.hessian(module, inputs, labels, float64=True, top_k=3, tolerance=1e-10, trace=50)
    assert module.training, "the caller's module is left as it was"
    bulk = rmt_torch.hessian(module, inputs, labels, float64=True, top_k=3, density=4)["bulk"]
    assert bulk["law"] in ("semicircle", "marchenko-pastur")
    assert all(outlier > bulk["bulk_edge"] for outlier in bulk["outliers"])
    reference = module.double().eval()
    names = [name for name, _ in reference.named_parameters()]
    shapes = [p.shape for _, p in reference.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for _, p in reference.named_parameters()])

    def loss(theta):
        params, offset = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = theta[offset:offset + shape.numel()].reshape(shape)
            offset += shape.numel()
        return torch.nn.functional.cross_entropy(torch.func.functional_call(reference, params, (inputs.double(),)),
                                                 labels)

    exact = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat)).flip(0)[:3]
    numpy.testing.assert_allclose(report["top_eigenvalues"], exact.tolist(), rtol=1e-8)
    assert abs(report["trace"] - float(torch.autograd.functional.hessian(loss, flat).trace())) \
        <= 4 * report["trace_stderr"]

    module = module.float().train()
    optimiser = torch.optim.SGD(module.parameters(), lr=0.5)
    sharpness = []
    for step in range(3):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(module(inputs), labels).backward()
        optimiser.step()
        sharpness.append(rmt_torch.hessian(module, inputs, labels, top_k=1)["top_eigenvalues"][0])
    assert all(math.isfinite(value) and value > 0 for value in sharpness)
    assert len(set(sharpness)) == 3, "each observation sees the weights of its step"
    with pytest.raises(rmt_torch.InputError, match="class indices"):
        rmt_torch.hessian(module, inputs, labels.float())
    with pytest.raises(rmt_torch.OptionError, match="unknown option"):
        rmt_torch.hessian(module, inputs, labels, topk=3)
    # An input of the wrong width is refused naming the batch, not only the probe's one sample.
    width = inputs.shape[1]
    with pytest.raises(rmt_torch.InputError, match=rf"first sample of the batch, shape \[{len(inputs)}, {width + 1}\]"):
        rmt_torch.hessian(module, torch.randn(len(inputs), width + 1), labels)


def test_lightning_callback_logs_and_writes_what_track_reads(tmp_path):
    lightning = pytest.importorskip("lightning")

    class Tiny(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(5)
    data = torch.utils.data.TensorDataset(torch.randn(256, 16), torch.randint(0, 4, (256,)))
    jsonl = tmp_path / "lightning.jsonl"
    callback = rmt_torch.LightningSpectralCallback(every=5, jsonl=jsonl, device="cpu")
    trainer = lightning.Trainer(
        max_epochs=3, accelerator="cpu", logger=lightning.pytorch.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=5,
        callbacks=[callback],
    )
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=32))
    steps = sorted({json.loads(line)["step"] for line in jsonl.read_text().splitlines()})
    assert steps == [5, 10, 15, 20], steps
    assert "net.0.weight" in track_reads(jsonl)
    logged = (Path(trainer.logger.log_dir) / "metrics.csv").read_text()
    assert "rmt/alpha" in logged and "rmt/spikes_tw" in logged


def test_transformers_trainer_callback_logs_and_writes_what_track_reads(tmp_path):
    transformers = pytest.importorskip("transformers")

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))

        def forward(self, x, labels=None):
            logits = self.net(x)
            return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}

    torch.manual_seed(6)
    data = [{"x": torch.randn(16), "labels": torch.tensor(i % 4)} for i in range(160)]
    jsonl = tmp_path / "trainer.jsonl"
    callback = rmt_torch.TrainerSpectralCallback(every=5, jsonl=jsonl, device="cpu")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=20, per_device_train_batch_size=8, logging_steps=5,
        report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True, learning_rate=0.05,
    )
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=data, callbacks=[callback])
    trainer.train()
    steps = sorted({json.loads(line)["step"] for line in jsonl.read_text().splitlines()})
    assert steps == [5, 10, 15, 20], steps
    assert "net.0.weight" in track_reads(jsonl)
    assert any("rmt/alpha" in entry for entry in trainer.state.log_history)


def test_the_namespace_holds_only_the_api():
    public = {name for name in dir(rmt_torch) if not name.startswith("_")}
    adapters = {"LightningSpectralCallback", "LightningTempBalance", "TrainerSpectralCallback"}
    assert set(rmt_torch.__all__) - adapters <= public
    # Beyond the API only the adapters' own modules, once a test has imported them.
    assert public - set(rmt_torch.__all__) <= {"lightning_callback", "hf_callback"}
    for helper in ("json", "os", "re", "threading", "torch", "difflib", "Mapping"):
        assert helper not in public


def test_plot_and_report_draw_what_the_cli_draws(tmp_path):
    analysis = rmt_torch.analyze(SHIPPED, device="cpu", figure_data=True)
    ours = analysis.plot(tmp_path / "ours", formats=("png", "svg"))
    subprocess.run(
        [str(CLI), "analyze", str(SHIPPED), "--device", "cpu", "-q", "--plots", str(tmp_path / "cli"),
         "--plot-format", "png,svg"],
        check=True, capture_output=True,
    )
    assert sorted(Path(p).name for p in ours) == sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert (tmp_path / "ours" / "model.svg").read_text() == (tmp_path / "cli" / "model.svg").read_text()
    page = analysis.report(tmp_path / "report.html", worst=2)
    html = Path(page).read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 3
    for layer in analysis.layers:
        assert layer["name"] in html
    notebook = analysis._repr_html_()
    assert "<table>" in notebook and all(layer["quality"] in notebook for layer in analysis.layers)
    with pytest.raises(rmt_torch.OptionError, match="figure_data=True"):
        rmt_torch.analyze(SHIPPED, device="cpu").plot(tmp_path / "none")


def test_describe_is_the_info_inventory():
    pytest.importorskip("pandas")
    ours = rmt_torch.describe(SHIPPED, layers="fc")
    theirs = json.loads(
        subprocess.run([str(CLI), "info", str(SHIPPED), "--layers", "fc", "-f", "json"],
                       check=True, capture_output=True, text=True).stdout
    )["tensors"]
    assert ours.to_dict("records") == theirs
    model = torch.nn.Linear(32, 16)
    frame = rmt_torch.describe(model)
    assert list(frame["name"]) == ["weight", "bias"] and list(frame["analysed"]) == [True, False]


def test_tensors_without_readable_values_are_refused_by_name():
    with torch.device("meta"):
        meta = torch.nn.Linear(4, 4)
    with pytest.raises(rmt_torch.InputError, match="^weight: a tensor on the meta device"):
        rmt_torch.analyze(meta)
    with pytest.raises(rmt_torch.InputError, match="^w: a torch.sparse_coo tensor.*to_dense"):
        rmt_torch.analyze({"w": torch.eye(5).to_sparse()})
    quantized = torch.quantize_per_tensor(torch.randn(8, 8), 0.1, 0, torch.qint8)
    with pytest.raises(rmt_torch.InputError, match="^block.w: a quantized tensor.*dequantize"):
        rmt_torch.analyze({"block": {"w": quantized}})
    with pytest.raises(rmt_torch.InputError, match="meta device"):
        rmt_torch.describe(meta)


def test_jacobian_and_hessian_explain_a_batch_the_model_rejects():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))
    labels = torch.randint(0, 4, (4,))
    with pytest.raises(rmt_torch.InputError, match="Int64: Jacobians need floating-point inputs"):
        rmt_torch.jacobian(model, torch.randint(0, 5, (4, 8)))
    with pytest.raises(rmt_torch.InputError, match=r"takes inputs shaped \[batch, 8\]"):
        rmt_torch.jacobian(model, torch.randn(4, 7))
    with pytest.raises(rmt_torch.InputError, match="Int64"):
        rmt_torch.hessian(model, torch.randint(0, 5, (4, 8)), labels)
    with pytest.raises(rmt_torch.InputError, match=r"takes inputs shaped \[batch, 8\]"):
        rmt_torch.hessian(model, torch.randn(4, 7), labels)


def test_compare_in_memory_equals_the_cli(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    torch.manual_seed(3)
    base = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 16))
    tuned = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 16))
    tuned.load_state_dict(base.state_dict())
    with torch.no_grad():
        tuned[0].weight += 0.05 * torch.randn_like(tuned[0].weight)
    paths = []
    for name, model in (("base", base), ("tuned", tuned)):
        path = tmp_path / f"{name}.safetensors"
        safetensors.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        paths.append(path)
    ours = rmt_torch.compare(base, {"module." + k: v for k, v in tuned.state_dict().items()}, device="cpu")
    cli = json.loads(subprocess.run(
        [str(CLI), "compare", str(paths[0]), str(paths[1]), "--device", "cpu", "-f", "json", "-q"],
        check=True, capture_output=True, text=True,
    ).stdout)
    assert [l["name"] for l in ours.layers] == [l["name"] for l in cli["layers"]] == ["0.weight", "2.weight"]
    for mine, theirs in zip(ours.layers, cli["layers"]):
        mine = {k: v for k, v in mine.items() if k != "other_name"}
        assert differences(mine, theirs) == []
    assert ours.layers[1]["relative_frobenius"] == 0.0
    assert ours.layers[0]["relative_frobenius"] > 0.0
    frame = ours.to_pandas()
    assert list(frame["name"]) == ["0.weight", "2.weight"] and "update.alpha" in frame.columns
    assert ours.summary["changed"] == 1 and ours.summary["most_changed"] == "0.weight"
    assert differences(ours.summary, cli["summary"]) == []
    judged = rmt_torch.compare(base, tuned, device="cpu", fail_if=["max_relative_frobenius>0.01", "any(cka<0.5)"])
    assert judged.violations == ["max_relative_frobenius>0.01"] and not judged.passed
    assert rmt_torch.compare(base, tuned, device="cpu", fail_if="any(cka<0.5)").passed
    with pytest.raises(rmt_torch.OptionError, match="alpha_hat"):
        rmt_torch.compare(base, tuned, fail_if=["max_alpha_hat>1"])


def test_lora_adapters_in_python_equal_the_cli(tmp_path):
    peft = pytest.importorskip("peft")
    torch.manual_seed(5)
    base = torch.nn.Sequential(torch.nn.Linear(32, 48), torch.nn.Tanh(), torch.nn.Linear(48, 24))
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["0", "2"], init_lora_weights=False)
    adapted = peft.get_peft_model(copy.deepcopy(base), config)
    adapted.save_pretrained(str(tmp_path / "adapter"))
    adapter = tmp_path / "adapter"
    updates = rmt_torch.analyze(adapter, device="cpu")
    assert [l["rank"] for l in updates.layers] == [4, 4]
    # A PEFT model in memory is its adapter (before merge_and_unload below changes it).
    assert [l["rank"] for l in rmt_torch.analyze(adapted, device="cpu").layers] == [4, 4]
    in_memory = rmt_torch.compare(base, adapted, device="cpu")
    merged = rmt_torch.analyze(adapter, base=base, device="cpu", eigenvalues=True)
    reference = rmt_torch.analyze(adapted.merge_and_unload(), device="cpu", eigenvalues=True)
    for ours, theirs in zip(merged.layers, reference.layers):
        numpy.testing.assert_allclose(ours["eigenvalues"], theirs["eigenvalues"], rtol=1e-5, atol=1e-6)
    comparison = rmt_torch.compare(base, adapter, device="cpu")
    assert [l["update"]["rank"] for l in comparison.layers] == [4, 4]
    assert differences(in_memory.layers, comparison.layers) == []
    with pytest.raises(rmt_torch.OptionError, match="LoRA adapter"):
        rmt_torch.analyze(base, base=base)


def test_a_quantised_gguf_per_expert_and_per_head_as_the_cli_reads_it(tmp_path):
    """A GGUF the gguf package writes (Q8_0 attention, Q4_0 experts): Python's
    analysis with split heads equals the CLI's, record for record."""
    gguf = pytest.importorskip("gguf")
    rng = numpy.random.default_rng(0)
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    for name, shape, qtype in [
        ("blk.0.attn_q.weight", (64, 64), gguf.GGMLQuantizationType.Q8_0),
        ("blk.0.attn_k.weight", (32, 64), gguf.GGMLQuantizationType.Q8_0),
        ("blk.0.ffn_up_exps.weight", (4, 32, 64), gguf.GGMLQuantizationType.Q4_0),
    ]:
        weights = (rng.standard_normal(shape) * 0.05).astype(numpy.float32)
        writer.add_tensor(name, gguf.quants.quantize(weights, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    ours = rmt_torch.analyze(path, device="cpu", split_heads=True).record
    theirs = cli_json(path, "--split-heads")
    assert [layer["name"] for layer in ours["layers"]][:3] == [
        "blk.0.attn_q.weight", "blk.0.attn_q.weight[h0]", "blk.0.attn_q.weight[h1]"]
    assert sum(layer.get("expert") is not None for layer in ours["layers"]) == 4
    assert differences(comparable(ours), comparable(theirs)) == []


def test_allocations_equal_the_cli_and_take_an_analysis_or_a_model():
    for name, cli_args, ours in [
        ("sparsity", ["--target", "0.5"], lambda obj, **o: rmt_torch.allocate_sparsity(obj, 0.5, **o)),
        ("lr", ["--base", "0.01", "--map", "step"],
         lambda obj, **o: rmt_torch.allocate_lr(obj, 0.01, map="step", **o)),
    ]:
        cli = json.loads(subprocess.run(
            [str(CLI), "allocate", name, str(SHIPPED), *cli_args, "--device", "cpu", "-f", "json", "-q"],
            check=True, capture_output=True, text=True).stdout)
        from_path = ours(str(SHIPPED), device="cpu")
        assert differences(from_path, cli) == []
        # An analysis already made with the reference's estimator gives the same decision.
        analysis = rmt_torch.analyze(SHIPPED, device="cpu", estimator=cli["estimator"])
        assert ours(analysis)["values"] == from_path["values"]
    module = torch.jit.load(str(SHIPPED))
    farms = rmt_torch.allocate_sparsity(module, 0.5, estimator="farms-median", farms_window=16)
    assert farms["estimator"] == "farms-median"
    weights = [s["params"] for s in farms["shares"]]
    mean = sum(w * s["value"] for w, s in zip(weights, farms["shares"])) / sum(weights)
    assert abs(mean - 0.5) < 1e-12
    with pytest.raises(rmt_torch.OptionError, match="target"):
        rmt_torch.allocate_sparsity(SHIPPED, 1.5)
    with pytest.raises(TypeError):
        rmt_torch.allocate_lr(analysis, 0.1, layers="fc")


def _balanced_net():
    return torch.nn.Sequential(
        torch.nn.Linear(32, 96), torch.nn.Tanh(), torch.nn.Linear(96, 128), torch.nn.BatchNorm1d(128),
        torch.nn.Tanh(), torch.nn.Linear(128, 80), torch.nn.Tanh(), torch.nn.Linear(80, 4),
    )


def test_temp_balance_sets_each_groups_rate_to_the_decision_on_the_same_weights():
    torch.manual_seed(2)
    model = _balanced_net()
    groups = rmt_torch.param_groups(model)
    assert [g.get("name") for g in groups] == ["0.weight", "2.weight", "5.weight", "7.weight"]
    assert len(groups[1]["params"]) == 4  # the Linear's weight and bias, the BatchNorm's two
    optimizer = torch.optim.SGD(groups, lr=0.1)
    balance = rmt_torch.TempBalance(optimizer, model, 0.1, map="sqrt", device="cpu")
    applied = balance.step(0)
    expected = rmt_torch.allocate_lr(model, 0.1, map="sqrt", device="cpu")
    assert applied["values"] == expected["values"]
    assert [s["tuned"] for s in applied["shares"]] == [False, True, True, False]  # 7 counted, however small
    for group in optimizer.param_groups:
        assert group["lr"] == expected["values"][group["name"]]
    assert balance.step(1) is not None and rmt_torch.TempBalance(optimizer, model, 0.1, every=2).step(1) is None
    with pytest.raises(TypeError, match="param_groups"):
        rmt_torch.TempBalance(torch.optim.SGD(model.parameters(), lr=0.1), model, 0.1)


def test_training_with_temp_balance_is_deterministic(tmp_path):
    def train(background):
        torch.manual_seed(3)
        model = _balanced_net()
        optimizer = torch.optim.SGD(rmt_torch.param_groups(model), lr=0.05, momentum=0.9)
        balance = rmt_torch.TempBalance(optimizer, model, 0.05, background=background, device="cpu",
                                        jsonl=tmp_path / f"tb-{background}.jsonl")
        x, y = torch.randn(64, 32), torch.randint(0, 4, (64,))
        for epoch in range(3):
            for start in range(0, 64, 16):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x[start:start + 16]), y[start:start + 16]).backward()
                optimizer.step()
            balance.step(epoch)
        balance.finish()
        return [p.detach().clone() for p in model.parameters()]

    for background in (False, True):
        assert all(torch.equal(a, b) for a, b in zip(train(background), train(background)))
    assert "2.weight" in track_reads(tmp_path / "tb-True.jsonl")


def test_lightning_temp_balance_sets_and_logs_rates(tmp_path):
    lightning = pytest.importorskip("lightning")

    class Tiny(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _balanced_net()

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(rmt_torch.param_groups(self), lr=0.05)

    torch.manual_seed(5)
    data = torch.utils.data.TensorDataset(torch.randn(128, 32), torch.randint(0, 4, (128,)))
    callback = rmt_torch.LightningTempBalance(0.05, device="cpu")
    trainer = lightning.Trainer(
        max_epochs=2, accelerator="cpu", logger=lightning.pytorch.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[callback],
    )
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=32))
    rates = {g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups if "name" in g}
    assert rates == callback.balance.allocation["values"]
    assert rates["net.0.weight"] == 0.05 and rates["net.2.weight"] != 0.05
    logged = (Path(trainer.logger.log_dir) / "metrics.csv").read_text()
    assert "rmt/lr/net.2.weight" in logged
