//! The model side of Jacobians: loading a TorchScript archive to run it, its forward pass, and
//! the checks an input batch must pass before it is differentiated.
use std::path::Path;

use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::error::{torch_message, Error, Result};

/// A model ready for differentiation: in eval mode, on its device, in its dtype.
pub struct Differentiable {
    module: CModule,
    pub(crate) device: Device,
    pub(crate) kind: Kind,
    pub(super) output_index: Option<usize>,
    /// The example inputs' shapes `torch.jit.trace` recorded, if the archive keeps them.
    traced_inputs: Option<Vec<Vec<i64>>>,
}

impl Differentiable {
    /// Loads a TorchScript model onto `device`, in eval mode, converted to float64 when asked.
    ///
    /// This runs the archive's code, as `torch.jit.load` does, through
    /// [`crate::model::torchscript::load_module`]'s checks.
    pub fn load(
        path: &Path,
        device: Device,
        float64: bool,
        output_index: Option<usize>,
    ) -> Result<Self> {
        let (module, traced_inputs) = crate::model::torchscript::load_module(path, device)?;
        Self::from_module(module, device, float64, output_index, traced_inputs)
    }

    /// A TorchScript module already in memory (one the caller scripted or traced itself) and
    /// loaded onto `device`, in eval mode, converted to float64 when asked.
    /// `traced_inputs` are the example inputs' shapes, when known.
    pub fn from_module(
        mut module: CModule,
        device: Device,
        float64: bool,
        output_index: Option<usize>,
        traced_inputs: Option<Vec<Vec<i64>>>,
    ) -> Result<Self> {
        module.set_eval();
        let stored = module
            .named_parameters()?
            .iter()
            .find(|(_, t)| t.is_floating_point())
            .map_or(Kind::Float, |(_, t)| t.kind());
        let kind = if float64 { Kind::Double } else { stored };
        if float64 {
            module.to(device, Kind::Double, false);
        }
        Ok(Self {
            module,
            device,
            kind,
            output_index,
            traced_inputs,
        })
    }

    /// Stops the parameters requiring gradients until the guard drops (restoring them):
    /// Jacobians with respect to the input then record no weight-gradient bookkeeping in the
    /// forward graph, as `torch.func` benchmarks run with `requires_grad_(False)`.
    pub fn frozen(&self) -> Result<FrozenParameters> {
        let mut thawed = Vec::new();
        for (_, mut parameter) in self.module.named_parameters()? {
            if parameter.requires_grad() {
                let _ = parameter.f_requires_grad_(false)?;
                thawed.push(parameter);
            }
        }
        Ok(FrozenParameters(thawed))
    }

    /// The module's parameters by dotted name (the tensors themselves, not copies).
    pub fn named_parameters(&self) -> Result<Vec<(String, Tensor)>> {
        Ok(self.module.named_parameters()?)
    }

    /// How many outputs the model returns for `batch`: the length of its tuple, or 1.
    pub fn output_count(&self, batch: &Tensor) -> Result<usize> {
        let _guard = tch::no_grad_guard();
        let first = batch
            .f_narrow(0, 0, 1)?
            .f_to_device(self.device)?
            .f_to_kind(self.kind)?;
        let output = self.run(&first, Some(&batch.size()))?;
        Ok(match output {
            IValue::Tuple(items) | IValue::GenericList(items) => items.len(),
            _ => 1,
        })
    }

    /// The model's forward pass on `input` (the first sample of a batch of shape `batch`, when
    /// given); a rejection carries the model's own error whole and, when the model's first
    /// weight tells it, the input shape it takes.
    fn run(&self, input: &Tensor, batch: Option<&[i64]>) -> Result<IValue> {
        self.module
            .forward_is(&[IValue::Tensor(input.shallow_clone())])
            .map_err(|err| {
                let hint = self
                    .expected_input()
                    .map(|hint| format!(" ({hint})"))
                    .unwrap_or_default();
                let sample = batch
                    .map(|batch| format!(" (the first sample of the batch, shape {batch:?})"))
                    .unwrap_or_default();
                Error::InvalidInput(format!(
                    "the model rejected an input of shape {:?}{sample}: {}{hint}",
                    input.size(),
                    torch_message(&err.to_string())
                ))
            })
    }

    /// The input shape the model expects, in words: the traced example input's when the
    /// archive records it, else what the first weight implies (a Linear weight [out, in] takes
    /// [batch, in], a ConvNd weight [out, in, k…] takes [batch, in, …], in channels per group).
    fn expected_input(&self) -> Option<String> {
        if let Some(first) = self
            .traced_inputs
            .as_ref()
            .and_then(|shapes| shapes.first())
        {
            return Some(format!("it was traced with an input of shape {first:?}"));
        }
        let parameters = self.module.named_parameters().ok()?;
        let (name, weight) = parameters
            .iter()
            .find(|(name, tensor)| name.ends_with("weight") && tensor.is_floating_point())?;
        let shape = weight.size();
        let spatial: &[&str] = match shape.len() {
            2 => &[],
            3 => &["length"],
            4 => &["height", "width"],
            5 => &["depth", "height", "width"],
            _ => return None,
        };
        let expected: Vec<String> = ["batch".to_string(), shape[1].to_string()]
            .into_iter()
            .chain(spatial.iter().map(|s| s.to_string()))
            .collect();
        Some(format!(
            "its first weight, {name} {shape:?}, takes inputs shaped [{}]",
            expected.join(", ")
        ))
    }

    /// f(x) flattened to [batch, outputs].
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        self.flattened(input, self.run(input, None)?)
    }

    /// f of the first sample of `batch`, flattened to [1, outputs]: the probe that finds the
    /// output's width, whose rejection names the batch it came from.
    pub fn forward_first_sample(&self, batch: &Tensor) -> Result<Tensor> {
        let first = batch.f_narrow(0, 0, 1)?;
        let output = self.run(&first, Some(&batch.size()))?;
        self.flattened(&first, output)
    }

    /// The model's `output` on `input` as [batch, outputs] (the tuple item chosen).
    fn flattened(&self, input: &Tensor, output: IValue) -> Result<Tensor> {
        let tensor = match (output, self.output_index) {
            (IValue::Tensor(t), None | Some(0)) => t,
            (IValue::Tuple(items) | IValue::GenericList(items), index) => {
                let count = items.len();
                let Some(index) = index else {
                    return Err(Error::InvalidInput(format!(
                        "the model returns a tuple of {count}: choose the output with --output-index"
                    )));
                };
                match items.into_iter().nth(index) {
                    Some(IValue::Tensor(t)) => t,
                    Some(_) => {
                        return Err(Error::InvalidInput(format!(
                            "output {index} of the model is not a tensor"
                        )))
                    }
                    None => {
                        return Err(Error::InvalidInput(format!(
                        "--output-index {index} is out of range: the model returns {count} outputs"
                    )))
                    }
                }
            }
            (IValue::Tensor(_), Some(index)) => {
                return Err(Error::InvalidInput(format!(
                    "--output-index {index}: the model returns a single tensor"
                )))
            }
            (other, _) => {
                return Err(Error::InvalidInput(format!(
                    "the model returns {}, not a tensor",
                    ivalue_kind(&other)
                )))
            }
        };
        let batch = input.size()[0];
        if tensor.dim() == 0 || tensor.size()[0] != batch {
            return Err(Error::InvalidInput(format!(
                "the model's output {:?} does not keep the batch dimension {batch} first",
                tensor.size()
            )));
        }
        Ok(tensor.f_reshape([batch, -1])?)
    }
}

fn ivalue_kind(value: &IValue) -> &'static str {
    match value {
        IValue::None => "None",
        IValue::Double(_) | IValue::Int(_) | IValue::Bool(_) => "a scalar",
        IValue::String(_) => "a string",
        IValue::GenericDict(_) => "a dict",
        _ => "a non-tensor value",
    }
}

/// Parameters that required gradients before [`Differentiable::frozen`]: they do again when
/// this drops.
pub struct FrozenParameters(Vec<Tensor>);

impl Drop for FrozenParameters {
    fn drop(&mut self) {
        for parameter in &mut self.0 {
            let _ = parameter.f_requires_grad_(true);
        }
    }
}

/// An input batch validated for a model: on its device and in its dtype, with the model's
/// output size known and the samples shown not to interact.
pub struct PreparedBatch {
    pub(super) x: Tensor,
    pub(super) outputs: i64,
}

impl PreparedBatch {
    /// Checks `batch` ([B, …], floating point) against `model`: runs it once (which also warms
    /// up TorchScript's executor) and refuses a model whose samples interact.
    pub fn new(model: &Differentiable, batch: &Tensor) -> Result<Self> {
        if !batch.is_floating_point() {
            return Err(Error::InvalidInput(format!(
                "the input batch is {:?}: Jacobians need floating-point inputs; convert it to float the way the model was trained (x.float() / 255, say)",
                batch.kind()
            )));
        }
        if batch.dim() < 2 || batch.size()[0] == 0 {
            return Err(Error::InvalidInput(format!(
                "the input batch has shape {:?}: expected [batch, …] with at least one sample and one feature dimension",
                batch.size()
            )));
        }
        let x = batch.f_to_device(model.device)?.f_to_kind(model.kind)?;
        let _guard = tch::no_grad_guard();
        let y = model.forward(&x)?;
        check_samples_independent(model, &x, &y)?;
        Ok(Self {
            outputs: y.size()[1],
            x,
        })
    }
}

/// Refuses a model whose output for one sample changes with the rest of the batch (batch
/// statistics in the forward pass): the replication trick would then be wrong.
fn check_samples_independent(model: &Differentiable, x: &Tensor, y: &Tensor) -> Result<()> {
    let first = x.f_narrow(0, 0, 1)?;
    let companion = (&first * 0.5 + 0.25).f_to_kind(model.kind)?;
    let pair = Tensor::f_cat(&[&first, &companion], 0)?;
    let alone = model.forward(&first)?;
    let together = model.forward(&pair)?.f_narrow(0, 0, 1)?;
    let in_batch = y.f_narrow(0, 0, 1)?;
    let scale = f64::try_from(alone.f_abs()?.f_max()?.f_to_kind(Kind::Double)?)?.max(1e-30);
    // Batch statistics move an output by O(1) of its scale; arithmetic alone by far less. On a
    // GPU, cuDNN convolves float32 in TF32 and picks its kernels by batch size: 2.8e-4 on
    // ResNet18 (H100), where the CPU stays below 1e-6.
    let tolerance = match (model.kind, model.device.is_cuda()) {
        (Kind::Double, _) => 1e-10,
        (_, false) => 1e-4,
        (_, true) => 1e-2,
    };
    for other in [&together, &in_batch] {
        let difference =
            f64::try_from((other - &alone).f_abs()?.f_max()?.f_to_kind(Kind::Double)?)?;
        if difference > tolerance * scale {
            return Err(Error::InvalidInput(format!(
                "the model's output for a sample depends on the other samples in its batch (difference {:.2e} in eval mode, e.g. batch statistics in forward): per-sample Jacobians are undefined",
                difference / scale
            )));
        }
    }
    Ok(())
}
