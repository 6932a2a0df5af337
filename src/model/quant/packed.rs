//! Hugging Face quantised checkpoints: a linear layer stored as packed integer codes and the
//! scales (and zero points) that turn them back into weights, several tensors per layer. Each
//! set becomes one tensor `….weight`, dequantised when read with the arithmetic of the format's
//! own kernels — codes minus zero times scale, rounded to the scales' float type:
//! - GPTQ (`qweight` int32 [in·b/32, out], codes packed along the input; `qzeros` [groups,
//!   out·b/32]; `scales` [groups, out]; `g_idx` `[in]`, each input's group). Checkpoints in the
//!   original format (`checkpoint_format: gptq`) store each zero point minus one.
//! - AWQ (`qweight` int32 [in, out·b/32], packed along the output in the order 0 2 4 6 1 3 5 7;
//!   `qzeros` alike; `scales` [groups, out]).
//! - compressed-tensors `pack-quantized` (`weight_packed` int32 [out, in·b/32], code i at bit
//!   i·b of the row, stored plus 2^(b−1); `weight_scale` [out, groups]; an asymmetric scheme's
//!   `weight_zero_point` packed along the output; `weight_shape`).
//! - bitsandbytes int8 (`weight` int8 `[out, in]` and `SCB` `[out]`: w = q·SCB/127) and 4-bit NF4
//!   or FP4 (`weight` uint8 of nibble pairs, high nibble first; `weight.absmax` per block of
//!   `blocksize`, itself 8-bit quantised when nested; `weight.quant_map`, the 16 code values;
//!   `weight.quant_state.bitsandbytes__nf4`, a JSON of the shape and block size).
use std::fmt;

use tch::{Kind, Tensor};

use super::super::NamedTensor;
use crate::error::{Error, Result};

/// A packed integer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackedFormat {
    /// GPTQ, with the zero-point convention of its checkpoint format.
    Gptq {
        /// Bits per code (2, 4 or 8).
        bits: u8,
        /// Zero points stored minus one (the original `gptq` checkpoint format).
        zeros_minus_one: bool,
    },
    /// AWQ (`gemm` layout).
    Awq {
        /// Bits per code (4).
        bits: u8,
    },
    /// compressed-tensors `pack-quantized`.
    PackQuantized {
        /// Bits per code (1 to 8).
        bits: u8,
    },
    /// bitsandbytes LLM.int8(): row-wise absmax int8.
    BnbInt8,
    /// bitsandbytes 4-bit (NF4 or FP4): a code book of 16 values, block-wise absmax.
    Bnb4 {
        /// NF4 (normal float) rather than FP4.
        normal_float: bool,
        /// Weights per absmax block.
        blocksize: u32,
    },
}

impl fmt::Display for PackedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gptq { bits, .. } => write!(f, "GPTQ int{bits}"),
            Self::Awq { bits } => write!(f, "AWQ int{bits}"),
            Self::PackQuantized { bits } => write!(f, "pack-quantized int{bits}"),
            Self::BnbInt8 => f.write_str("bitsandbytes int8"),
            Self::Bnb4 {
                normal_float: true, ..
            } => f.write_str("bitsandbytes NF4"),
            Self::Bnb4 { .. } => f.write_str("bitsandbytes FP4"),
        }
    }
}

impl PackedFormat {
    /// How a weight of this format is turned into floats, in words (what `info` says).
    pub fn describe(&self) -> String {
        match self {
            Self::Gptq {
                zeros_minus_one, ..
            } => format!(
                "{self}: codes minus zero points{}, times the scale of each input's group \
                 (g_idx), rounded to the scales' type",
                if *zeros_minus_one {
                    " (stored minus one)"
                } else {
                    ""
                }
            ),
            Self::Awq { .. } => format!(
                "{self}: codes (packed 0 2 4 6 1 3 5 7) minus zero points, times the group's \
                 scale, rounded to the scales' type"
            ),
            Self::PackQuantized { .. } => format!(
                "{self}: codes minus zero points, times the group's scale, rounded to the \
                 scales' type, as compressed-tensors decompresses"
            ),
            Self::BnbInt8 => format!("{self}: codes times the row's SCB / 127"),
            Self::Bnb4 { blocksize, .. } => {
                format!("{self}: code-book values times the absmax of each block of {blocksize}")
            }
        }
    }
}

/// One quantised weight: its format, its dequantised shape and the tensors it is stored as.
pub struct PackedWeight {
    /// The format.
    pub format: PackedFormat,
    /// The weight's shape [out, in].
    pub shape: Vec<i64>,
    /// The stored tensors by their role: `qweight`, `qzeros`, `scales`, `g_idx`, `SCB`,
    /// `absmax`, `quant_map`, `nested_absmax`, `nested_quant_map`, `zero_point`.
    parts: Vec<(&'static str, NamedTensor)>,
    /// The float type results are rounded to (the scales').
    rounding: Kind,
    /// A nested bitsandbytes absmax: its block size and the offset added back.
    nested: Option<(i64, f32)>,
}

impl PackedWeight {
    /// A weight of `format` and `shape` stored as `parts`, results rounded to `rounding`.
    pub(crate) fn new(
        format: PackedFormat,
        shape: Vec<i64>,
        parts: Vec<(&'static str, NamedTensor)>,
        rounding: Kind,
    ) -> Self {
        Self {
            format,
            shape,
            parts,
            rounding,
            nested: None,
        }
    }

    /// With a nested absmax of `blocksize` and `offset` (bitsandbytes' double quantisation).
    pub(crate) fn with_nested(mut self, blocksize: i64, offset: f32) -> Self {
        self.nested = Some((blocksize, offset));
        self
    }

    fn part(&self, role: &str) -> Result<Tensor> {
        let (_, tensor) = self
            .parts
            .iter()
            .find(|(name, _)| *name == role)
            .ok_or_else(|| {
                Error::InvalidInput(format!("the {role} of a {} weight is missing", self.format))
            })?;
        tensor.load()
    }

    fn has(&self, role: &str) -> bool {
        self.parts.iter().any(|(name, _)| *name == role)
    }

    /// The weight [out, in] in float32, dequantised from the parts read now; `label` names it
    /// in errors.
    pub fn dense(&self, label: &str) -> Result<Tensor> {
        let (out, inputs) = (self.shape[0], self.shape[1]);
        let lie = |message: String| Error::InvalidInput(format!("{label}: {message}"));
        let weight = match self.format {
            PackedFormat::Gptq {
                bits,
                zeros_minus_one,
            } => {
                let codes = unpack(&self.part("qweight")?, bits, 0)?.f_narrow(0, 0, inputs)?;
                let scales = self.part("scales")?;
                let mut zeros = unpack(&self.part("qzeros")?, bits, 1)?.f_narrow(1, 0, out)?;
                if zeros_minus_one {
                    zeros = (zeros + 1i64).f_bitwise_and((1i64 << bits) - 1)?;
                }
                let groups = match self.has("g_idx") {
                    true => self.part("g_idx")?.f_to_kind(Kind::Int64)?,
                    false => {
                        let size = inputs / scales.size()[0].max(1);
                        Tensor::f_arange(inputs, (Kind::Int64, tch::Device::Cpu))?
                            .f_div_scalar_mode(size.max(1), "floor")?
                    }
                };
                check_groups(&groups, scales.size()[0]).map_err(lie)?;
                let zeros = zeros.f_index_select(0, &groups)?;
                let scales = scales.f_index_select(0, &groups)?;
                self.scaled(&codes, Some(&zeros), &scales)?
                    .f_transpose(0, 1)?
            }
            PackedFormat::Awq { bits } => {
                let codes = awq_order(&unpack(&self.part("qweight")?, bits, 1)?, bits)?;
                let zeros = awq_order(&unpack(&self.part("qzeros")?, bits, 1)?, bits)?;
                let scales = self.part("scales")?;
                let size = inputs / scales.size()[0].max(1);
                let expand = |t: Tensor| t.f_repeat_interleave_self_int(size, 0, None::<i64>);
                self.scaled(&codes, Some(&expand(zeros)?), &expand(scales)?)?
                    .f_transpose(0, 1)?
            }
            PackedFormat::PackQuantized { bits } => {
                let offset = 1i64 << (bits - 1);
                let codes =
                    unpack(&self.part("qweight")?, bits, 1)?.f_narrow(1, 0, inputs)? - offset;
                let scales = self.part("scales")?;
                let scales = if scales.dim() < 2 {
                    scales.f_reshape([1, 1])?
                } else {
                    scales
                };
                let size = inputs / scales.size()[1].max(1);
                let expand = |t: Tensor| t.f_repeat_interleave_self_int(size, 1, None::<i64>);
                let zeros = match self.has("zero_point") {
                    true => {
                        let zeros = unpack(&self.part("zero_point")?, bits, 0)?
                            .f_narrow(0, 0, out)?
                            - offset;
                        Some(expand(zeros)?)
                    }
                    false => None,
                };
                self.scaled(&codes, zeros.as_ref(), &expand(scales)?)?
            }
            PackedFormat::BnbInt8 => {
                // bitsandbytes' int8_vectorwise_dequant: q · SCB · (1/127 as float32).
                let codes = self.part("qweight")?.f_to_kind(Kind::Float)?;
                let scb = self.part("SCB")?.f_to_kind(Kind::Float)?.f_unsqueeze(1)?;
                let reciprocal = Tensor::from_slice(&[7.874_016e-3f32]);
                (codes * scb * reciprocal).f_to_kind(self.rounding)?
            }
            PackedFormat::Bnb4 { blocksize, .. } => self.bnb4(blocksize)?,
        };
        if weight.size() != self.shape {
            return Err(lie(format!(
                "its parts dequantise to {:?}, not the {:?} it claims",
                weight.size(),
                self.shape
            )));
        }
        Ok(weight.f_to_kind(Kind::Float)?.f_contiguous()?)
    }

    /// `(codes − zeros) · scales`, computed exactly in float32 and rounded to the scales' type
    /// as the format's kernels round.
    fn scaled(&self, codes: &Tensor, zeros: Option<&Tensor>, scales: &Tensor) -> Result<Tensor> {
        let codes = match zeros {
            Some(zeros) => codes.f_sub(zeros)?,
            None => codes.shallow_clone(),
        };
        Ok(
            (codes.f_to_kind(Kind::Float)? * scales.f_to_kind(Kind::Float)?)
                .f_to_kind(self.rounding)?,
        )
    }

    /// NF4 / FP4: each byte two codes (high nibble first), each code's value from the code
    /// book times its block's absmax (itself dequantised when nested).
    fn bnb4(&self, blocksize: u32) -> Result<Tensor> {
        let bytes = self
            .part("qweight")?
            .f_flatten(0, -1)?
            .f_to_kind(Kind::Int64)?;
        let codes = Tensor::f_stack(
            &[
                bytes.f_bitwise_right_shift_tensor_scalar(4)?,
                bytes.f_bitwise_and(15)?,
            ],
            1,
        )?
        .f_flatten(0, -1)?;
        let book = self.part("quant_map")?.f_to_kind(Kind::Float)?;
        let mut absmax = self.part("absmax")?;
        if let Some((nested_block, offset)) = self.nested {
            let nested_book = self.part("nested_quant_map")?.f_to_kind(Kind::Float)?;
            let nested = self.part("nested_absmax")?.f_to_kind(Kind::Float)?;
            let codes = absmax.f_to_kind(Kind::Int64)?.f_flatten(0, -1)?;
            let values = nested_book.f_index_select(0, &codes)?;
            let scale = nested
                .f_repeat_interleave_self_int(nested_block, 0, None::<i64>)?
                .f_narrow(0, 0, values.size()[0])?;
            absmax = values * scale + f64::from(offset);
        }
        let numel: i64 = self.shape.iter().product();
        let absmax = absmax
            .f_to_kind(Kind::Float)?
            .f_flatten(0, -1)?
            .f_repeat_interleave_self_int(blocksize as i64, 0, None::<i64>)?;
        let values = book.f_index_select(0, &codes)?.f_narrow(0, 0, numel)?;
        let absmax = absmax.f_narrow(0, 0, numel)?;
        Ok((values * absmax)
            .f_to_kind(self.rounding)?
            .f_reshape(&self.shape)?)
    }
}

/// Codes of `bits` packed in int32 words along `dim` (code j of a word at bits j·b), unpacked
/// along that dimension: a [r, c] tensor becomes [r·32/b, c] (dim 0) or [r, c·32/b] (dim 1).
fn unpack(packed: &Tensor, bits: u8, dim: i64) -> Result<Tensor> {
    if packed.dim() != 2 {
        return Err(Error::InvalidInput(format!(
            "packed codes of shape {:?}, not a matrix",
            packed.size()
        )));
    }
    let per_word = 32 / bits as i64;
    let shifts = Tensor::f_arange(per_word, (Kind::Int64, tch::Device::Cpu))? * bits as i64;
    let words = packed
        .f_to_kind(Kind::Int64)?
        .f_bitwise_and(0xFFFF_FFFFi64)?;
    let mask = (1i64 << bits) - 1;
    let size = packed.size();
    let codes = if dim == 0 {
        words
            .f_unsqueeze(1)?
            .f_bitwise_right_shift(&shifts.f_view([1, per_word, 1])?)?
            .f_bitwise_and(mask)?
            .f_reshape([size[0] * per_word, size[1]])?
    } else {
        words
            .f_unsqueeze(2)?
            .f_bitwise_right_shift(&shifts.f_view([1, 1, per_word])?)?
            .f_bitwise_and(mask)?
            .f_reshape([size[0], size[1] * per_word])?
    };
    Ok(codes)
}

/// AWQ's packing order within a word, undone: the code at position j belongs to column
/// `ORDER[j]` of its group of eight.
fn awq_order(codes: &Tensor, bits: u8) -> Result<Tensor> {
    const ORDER: [i64; 8] = [0, 2, 4, 6, 1, 3, 5, 7];
    let per_word = 32 / bits as i64;
    if per_word != 8 {
        return Ok(codes.shallow_clone());
    }
    let mut inverse = [0i64; 8];
    for (position, column) in ORDER.iter().enumerate() {
        inverse[*column as usize] = position as i64;
    }
    let size = codes.size();
    let index = Tensor::from_slice(&inverse);
    Ok(codes
        .f_reshape([size[0], size[1] / 8, 8])?
        .f_index_select(2, &index)?
        .f_reshape([size[0], size[1]])?)
}

/// Refuses group indices outside the scales' rows.
fn check_groups(groups: &Tensor, rows: i64) -> std::result::Result<(), String> {
    if groups.numel() == 0 {
        return Ok(());
    }
    let (low, high) = (groups.min().int64_value(&[]), groups.max().int64_value(&[]));
    if low < 0 || high >= rows {
        return Err(format!(
            "g_idx names groups {low}..={high}, and the scales have {rows} rows"
        ));
    }
    Ok(())
}
