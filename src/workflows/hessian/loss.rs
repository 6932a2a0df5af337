//! The loss of a model on a batch as a function of its parameters, and products with its
//! Hessian by double backward: Hv = ∇_θ (∇_θ L · v), one forward pass (or one per mini-batch)
//! and two backward passes, never H itself.
use serde::Serialize;
use tch::{Device, Kind, Reduction, Tensor};

use super::LossDescription;
use crate::error::{torch_message, Error, Result};
use crate::option_names::option_names;
use crate::workflows::jacobian::Differentiable;
use crate::workflows::lanczos::{vector_kind, SymmetricOperator};

/// The loss whose Hessian is taken, averaged over the samples as PyTorch's `reduction="mean"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// `F.cross_entropy(logits, labels)`: the model returns logits [B, classes], the targets
    /// are class indices `[B]`.
    CrossEntropy,
    /// `F.mse_loss(output, target)`: the mean over every element of the output.
    Mse,
}

option_names!(Loss, "loss", { CrossEntropy => "cross-entropy", Mse => "mse" });

/// One mini-batch: inputs, targets (checked against the loss) and its share of the samples.
struct MiniBatch {
    inputs: Tensor,
    targets: Tensor,
    share: f64,
}

/// The loss Hessian of a model on a batch, restricted to some of its parameters.
pub struct LossHessian<'m> {
    model: &'m Differentiable,
    loss: Loss,
    names: Vec<String>,
    parameters: Vec<Tensor>,
    batches: Vec<MiniBatch>,
    /// ∇L per parameter with its graph, kept between products when the batch is one pass.
    gradient: Option<Vec<Tensor>>,
    /// A product's vector in the model's dtype (when the vectors' is another: a bfloat16
    /// model), converted into this one buffer rather than a fresh tensor per product.
    converted: Option<Tensor>,
    loss_value: f64,
    samples: usize,
    batch_size: usize,
    products: usize,
}

impl<'m> LossHessian<'m> {
    /// The Hessian of `loss` of `model` on (`inputs`, `targets`) with respect to its floating
    /// parameters whose names match `parameters` (all when `None`), streamed in mini-batches
    /// of `batch_size` samples when given.
    pub fn new(
        model: &'m Differentiable,
        inputs: &Tensor,
        targets: &Tensor,
        loss: Loss,
        parameters: Option<&regex::Regex>,
        batch_size: Option<usize>,
    ) -> Result<Self> {
        let all = model.named_parameters()?;
        let (names, tensors): (Vec<String>, Vec<Tensor>) = all
            .iter()
            .filter(|(name, tensor)| {
                tensor.is_floating_point()
                    && parameters.is_none_or(|pattern| pattern.is_match(name))
            })
            .map(|(name, tensor)| (name.clone(), tensor.shallow_clone()))
            .unzip();
        if names.is_empty() {
            let available: Vec<&str> = all.iter().map(|(name, _)| name.as_str()).take(8).collect();
            return Err(Error::InvalidInput(match parameters {
                Some(pattern) => format!(
                    "no parameter matches --layers '{pattern}' (the model's are {}{})",
                    available.join(", "),
                    if all.len() > 8 { ", …" } else { "" }
                ),
                None => "the model has no floating-point parameters".into(),
            }));
        }
        let tensors = tensors
            .into_iter()
            .map(|mut t| Ok(t.f_requires_grad_(true)?))
            .collect::<Result<Vec<_>>>()?;
        let (inputs, targets) = check_batch(model, inputs, targets, loss)?;
        let samples = inputs.size()[0] as usize;
        let batch_size = batch_size.unwrap_or(samples).clamp(1, samples);
        let batches = (0..samples)
            .step_by(batch_size)
            .map(|first| {
                let count = batch_size.min(samples - first) as i64;
                Ok(MiniBatch {
                    inputs: inputs.f_narrow(0, first as i64, count)?,
                    targets: targets.f_narrow(0, first as i64, count)?,
                    share: count as f64 / samples as f64,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut hessian = Self {
            model,
            loss,
            names,
            parameters: tensors,
            batches,
            gradient: None,
            converted: None,
            loss_value: 0.0,
            samples,
            batch_size,
            products: 0,
        };
        // One batch: its gradient's graph serves every product. Several: each product rebuilds
        // theirs, so here only their losses are needed.
        let mut loss_value = 0.0;
        let single = hessian.batches.len() == 1;
        for index in 0..hessian.batches.len() {
            let no_grad = (!single).then(tch::no_grad_guard);
            let loss = hessian.loss_of(index)?;
            drop(no_grad);
            loss_value += f64::try_from(loss.f_detach()?.f_to_kind(Kind::Double)?)?;
            if single {
                hessian.gradient = Some(hessian.gradient_of(&loss)?);
            }
        }
        if !loss_value.is_finite() {
            return Err(Error::InvalidInput(format!(
                "the loss is {loss_value} at the model's parameters: its Hessian is undefined"
            )));
        }
        hessian.loss_value = loss_value;
        if model.kind != vector_kind(model.kind) {
            hessian.converted = Some(Tensor::f_empty(
                [hessian.dimension() as i64],
                (model.kind, model.device),
            )?);
        }
        Ok(hessian)
    }

    /// The mini-batch's loss, weighted by its share of the samples.
    fn loss_of(&self, index: usize) -> Result<Tensor> {
        let batch = &self.batches[index];
        let output = self.model.forward(&batch.inputs)?;
        Ok(match self.loss {
            Loss::CrossEntropy => output.f_cross_entropy_loss::<Tensor>(
                &batch.targets,
                None,
                Reduction::Mean,
                -100,
                0.0,
            )?,
            Loss::Mse => output.f_mse_loss(&batch.targets, Reduction::Mean)?,
        } * batch.share)
    }

    /// The gradient of `loss` per parameter, with its graph kept for a second
    /// differentiation.
    fn gradient_of(&self, loss: &Tensor) -> Result<Vec<Tensor>> {
        Tensor::f_run_backward(&[loss], &self.parameters, true, true)
            .map_err(|err| differentiation_error(&err))
    }

    /// `flat` split into views shaped like the parameters, in their order.
    fn parameter_views(&self, flat: &Tensor) -> Result<Vec<Tensor>> {
        let sizes: Vec<i64> = self.parameters.iter().map(|p| p.numel() as i64).collect();
        flat.f_split_with_sizes(&sizes, 0)?
            .into_iter()
            .zip(&self.parameters)
            .map(|(part, parameter)| Ok(part.f_view(parameter.size().as_slice())?))
            .collect()
    }

    /// The loss, the data and the parameters, for the report.
    pub fn describe(&self) -> LossDescription {
        LossDescription {
            loss: self.loss.to_string(),
            samples: self.samples,
            batch_size: self.batch_size,
            value: self.loss_value,
            parameters: self
                .names
                .iter()
                .cloned()
                .zip(self.parameters.iter().map(|t| t.numel() as i64))
                .collect(),
        }
    }
}

impl SymmetricOperator for LossHessian<'_> {
    fn dimension(&self) -> usize {
        self.parameters.iter().map(Tensor::numel).sum()
    }

    fn device(&self) -> Device {
        self.model.device
    }

    fn kind(&self) -> Kind {
        self.model.kind
    }

    /// H·v for a flat vector `v` on the device, into `out`, as PyTorch's
    /// own product (`torch.autograd.grad(g, θ, grad_outputs=v)`) computes it: per parameter
    /// tensor, the directional derivative Σᵢ gᵢ·vᵢ differentiated once more, with no flat
    /// concatenation in the graph and no vector of H's order allocated.
    fn apply(&mut self, v: &Tensor, out: &mut Tensor) -> Result<()> {
        let v = match &mut self.converted {
            Some(buffer) => {
                buffer.f_copy_(v)?;
                buffer.shallow_clone()
            }
            None => v.shallow_clone(),
        };
        let directions = self.parameter_views(&v)?;
        let outputs = self.parameter_views(out)?;
        for index in 0..self.batches.len() {
            let gradient = match &self.gradient {
                Some(gradient) => gradient.iter().map(Tensor::shallow_clone).collect(),
                None => self.gradient_of(&self.loss_of(index)?)?,
            };
            let terms = gradient
                .iter()
                .zip(&directions)
                .map(|(g, d)| Ok(g.f_reshape([-1])?.f_dot(&d.f_reshape([-1])?)?))
                .collect::<Result<Vec<_>>>()?;
            let directional = Tensor::f_stack(&terms, 0)?.f_sum(self.model.kind)?;
            let keep_graph = self.gradient.is_some();
            let second =
                Tensor::f_run_backward(&[&directional], &self.parameters, keep_graph, false)
                    .map_err(|err| differentiation_error(&err))?;
            for (target, part) in outputs.iter().zip(&second) {
                let mut target = target.shallow_clone();
                match (index, part.defined()) {
                    (0, true) => target.f_copy_(part)?,
                    (0, false) => {
                        let _ = target.f_zero_()?;
                    }
                    (_, true) => {
                        let _ = target.f_add_(part)?;
                    }
                    (_, false) => {}
                }
            }
        }
        self.products += 1;
        // A non-finite entry makes the sum non-finite: one pass, no 11 M-entry mask.
        if !f64::try_from(out.f_sum(out.kind())?.f_to_kind(Kind::Double)?)?.is_finite() {
            return Err(Error::InvalidInput(
                "a Hessian-vector product is not finite (the loss's curvature overflows)".into(),
            ));
        }
        Ok(())
    }

    fn products(&self) -> usize {
        self.products
    }
}

fn differentiation_error(err: &tch::TchError) -> Error {
    Error::InvalidInput(format!(
        "the loss cannot be differentiated twice with respect to the parameters: {}",
        torch_message(&err.to_string())
    ))
}

/// The inputs and targets on the model's device, checked against each other, the model's
/// output and the loss: the same number of samples; class indices in range for cross-entropy;
/// as many target values as outputs for the squared error.
fn check_batch(
    model: &Differentiable,
    inputs: &Tensor,
    targets: &Tensor,
    loss: Loss,
) -> Result<(Tensor, Tensor)> {
    if !inputs.is_floating_point() || inputs.dim() < 2 || inputs.size()[0] == 0 {
        return Err(Error::InvalidInput(format!(
            "the input batch is {:?} of shape {:?}: expected floating point [batch, …] with at least one sample",
            inputs.kind(),
            inputs.size()
        )));
    }
    let samples = inputs.size()[0];
    if targets.dim() == 0 || targets.size()[0] != samples {
        return Err(Error::InvalidInput(format!(
            "the targets have shape {:?}: expected {samples} of them, one per input sample",
            targets.size()
        )));
    }
    let inputs = inputs.f_to_device(model.device)?.f_to_kind(model.kind)?;
    let outputs = {
        let _guard = tch::no_grad_guard();
        model.forward_first_sample(&inputs)?.size()[1]
    };
    let targets = match loss {
        Loss::CrossEntropy => {
            if targets.is_floating_point() || targets.dim() != 1 || targets.kind() == Kind::Bool {
                return Err(Error::InvalidInput(format!(
                    "cross-entropy takes class indices: integer targets of shape [{samples}], got {:?} of shape {:?} (the mse loss takes real-valued targets)",
                    targets.kind(),
                    targets.size()
                )));
            }
            let labels = targets.f_to_kind(Kind::Int64)?;
            let (low, high) = (
                i64::try_from(labels.f_min()?)?,
                i64::try_from(labels.f_max()?)?,
            );
            if low < 0 || high >= outputs {
                return Err(Error::InvalidInput(format!(
                    "the targets hold class {} but the model has {outputs} outputs (classes 0…{})",
                    if low < 0 { low } else { high },
                    outputs - 1
                )));
            }
            labels.f_to_device(model.device)?
        }
        Loss::Mse => {
            if targets.numel() as i64 != samples * outputs || !targets.is_floating_point() {
                return Err(Error::InvalidInput(format!(
                    "the squared error needs floating-point targets with {outputs} values per sample (the model's outputs), got {:?} of shape {:?}",
                    targets.kind(),
                    targets.size()
                )));
            }
            targets
                .f_reshape([samples, outputs])?
                .f_to_device(model.device)?
                .f_to_kind(model.kind)?
        }
    };
    Ok((inputs, targets))
}
