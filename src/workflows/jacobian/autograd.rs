//! J(x) by reverse-mode autograd over replicated inputs, in chunks sized from the memory
//! available.
use tch::{Device, Kind, Tensor};

use super::{Differentiable, PreparedBatch};
use crate::error::{torch_message, Error, Result};

/// Activations of one replicated sample are assumed to take at most this many times the
/// input's size when the chunk is chosen automatically (ResNet18 at 64×64 needs about 100×).
const ACTIVATION_FACTOR: usize = 256;
/// The automatic chunk never exceeds this many rows on a CPU (measured on ResNet18 at 64×64,
/// 2 cores, balanced passes, parameters frozen: 63 rows per pass 16.6–17.4 s, 128 rows
/// 16.2–16.4 s, 200 rows 18.9 s, 500 rows 22.7 s: larger passes fall out of cache) …
const MAX_AUTO_CHUNK_CPU: usize = 128;
/// … and this many on a GPU, where larger passes keep it busy.
const MAX_AUTO_CHUNK_CUDA: usize = 512;

/// The Jacobians of every sample of a prepared batch ([B, …] → [B, outputs, inputs], on the
/// model's device in its dtype). `on_chunk(done, total)` reports progress in rows.
pub fn jacobians(
    model: &Differentiable,
    batch: &PreparedBatch,
    chunk: Option<usize>,
    mut on_chunk: impl FnMut(usize, usize),
) -> Result<Tensor> {
    let (x, outputs) = (&batch.x, batch.outputs);
    let samples = x.size()[0] as usize;
    let inputs = (x.numel() / samples) as i64;
    let rows = samples * outputs as usize;
    let chunk = chunk
        .unwrap_or_else(|| automatic_chunk(inputs as usize, model.kind, model.device, rows))
        .max(1);
    // Each sample is replicated `replicas` times and run forward once; every backward pass
    // then seeds replica k with output row p·replicas + k, reusing the retained graph, so the
    // forward cost is samples·replicas rather than samples·outputs. The passes are balanced
    // (1000 outputs in chunks of 64: 16 passes of 63 rows, not 15 of 64 and one of 40).
    let balanced = (outputs as usize).div_ceil((outputs as usize).div_ceil(chunk));
    let replicas = balanced.clamp(1, outputs as usize);
    let _frozen = model.frozen()?;
    let group = (chunk / replicas).clamp(1, samples.max(1));
    let passes = (outputs as usize).div_ceil(replicas);
    check_jacobian_memory(model, samples, outputs as usize, inputs as usize)?;
    let mut jacobian = Tensor::f_zeros([rows as i64, inputs], (model.kind, model.device))?;
    let replica = Tensor::f_arange(replicas as i64, (Kind::Int64, model.device))?;
    let mut done = 0;
    for first in (0..samples).step_by(group) {
        let members = group.min(samples - first);
        let sample_index = Tensor::f_arange_start(
            first as i64,
            (first + members) as i64,
            (Kind::Int64, model.device),
        )?
        .f_repeat_interleave_self_int(replicas as i64, 0, None)?;
        let replicated = x
            .f_index_select(0, &sample_index)?
            .f_detach()?
            .f_requires_grad_(true)?;
        let y = model.forward(&replicated)?;
        if !y.requires_grad() {
            return Err(Error::InvalidInput(
                "the model's output does not depend differentiably on its input".into(),
            ));
        }
        let replica_of_row = replica.f_repeat([members as i64])?;
        for pass in 0..passes {
            on_chunk(done, rows);
            let offset = (pass * replicas) as i64;
            let live = replicas.min(outputs as usize - pass * replicas) as i64;
            let column = (&replica_of_row + offset).f_clamp_max(outputs - 1)?;
            let weight = replica_of_row.f_lt(live)?.f_to_kind(model.kind)?;
            let selected = (y
                .f_gather(1, &column.f_unsqueeze(1)?, false)?
                .f_squeeze_dim(1)?
                * &weight)
                .f_sum(model.kind)?;
            let gradient =
                Tensor::f_run_backward(&[selected], &[&replicated], pass + 1 < passes, false)
                    .map_err(|err| {
                        Error::InvalidInput(format!(
                            "the output cannot be differentiated with respect to the input: {}",
                            torch_message(&err.to_string())
                        ))
                    })?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::InvalidInput("autograd returned no gradient".into()))?;
            // Rows of replicas that seeded a real output go to J[sample, offset + k].
            let keep = replica_of_row.f_lt(live)?.f_nonzero()?.f_squeeze_dim(1)?;
            let target = (&sample_index * outputs + &column).f_index_select(0, &keep)?;
            let values = gradient
                .f_reshape([(members * replicas) as i64, inputs])?
                .f_index_select(0, &keep)?;
            let _ = jacobian.f_index_copy_(0, &target, &values)?;
            done += members * live as usize;
        }
    }
    on_chunk(rows, rows);
    Ok(jacobian.f_reshape([samples as i64, outputs, inputs])?)
}

/// Refuses Jacobians whose storage, with a float64 copy of one sample's for its spectrum, would
/// not fit in the host's available memory (checked on the CPU, where running out kills the
/// process).
fn check_jacobian_memory(
    model: &Differentiable,
    samples: usize,
    outputs: usize,
    inputs: usize,
) -> Result<()> {
    let entries = (samples * outputs * inputs) as f64;
    let needed =
        entries * model.kind.elt_size_in_bytes() as f64 + 8.0 * (outputs * inputs) as f64 * 2.0;
    crate::environment::ensure_host_memory(
        || format!("the Jacobians ({samples} × {outputs} × {inputs}; try --samples)"),
        model.device,
        needed,
    )
}

/// Rows per backward pass from the host's available memory (half of it for activations).
pub(super) fn automatic_chunk(inputs: usize, kind: Kind, device: Device, rows: usize) -> usize {
    let element = kind.elt_size_in_bytes();
    let per_row = inputs * element * ACTIVATION_FACTOR;
    let available =
        crate::environment::available_memory_bytes().unwrap_or(4.0 * 1024.0 * 1024.0 * 1024.0);
    let cap = if device == Device::Cpu {
        MAX_AUTO_CHUNK_CPU
    } else {
        MAX_AUTO_CHUNK_CUDA
    };
    ((available / 2.0) as usize / per_row.max(1)).clamp(1, cap.min(rows.max(1)))
}
