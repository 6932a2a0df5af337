//! ggml's block quantisations, as llama.cpp stores them in GGUF files: each row is cut into
//! blocks of 32 (Q4_0…Q8_0) or 256 (the K-quants) weights, each block stored as its scales and
//! packed integers. Decoded to float32 with the same arithmetic, in the same order, as
//! `ggml-quants.c` and the `gguf` Python package's `gguf.quants.dequantize`, so that the values
//! are bit for bit theirs.
use std::fmt;

use half::f16;

/// The ggml element types a GGUF file can name, by their numbers in `ggml.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// float32.
    F32,
    /// float16.
    F16,
    /// bfloat16.
    BF16,
    /// float64.
    F64,
    /// int8, int16, int32, int64: not weights.
    Int(u8),
    /// A block quantisation rmt-torch decodes.
    Block(BlockFormat),
    /// A type ggml knows and rmt-torch does not decode (the i-quants, ternary and FP4 types),
    /// with its block size and bytes per block so that its extent is still checked.
    Undecoded {
        /// The type's name in ggml.
        name: &'static str,
        /// Weights per block.
        block: u64,
        /// Bytes per block.
        bytes: u64,
    },
}

/// The block formats rmt-torch decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFormat {
    /// 32 weights: an f16 scale d and 4-bit q; w = d·(q − 8).
    Q4_0,
    /// 32 weights: f16 d and m, 4-bit q; w = d·q + m.
    Q4_1,
    /// 32 weights: f16 d, 5-bit q (high bits apart); w = d·(q − 16).
    Q5_0,
    /// 32 weights: f16 d and m, 5-bit q; w = d·q + m.
    Q5_1,
    /// 32 weights: f16 d, 8-bit q; w = d·q.
    Q8_0,
    /// 256 weights in 16 groups: 4-bit scales and mins, 2-bit q.
    Q2K,
    /// 256 weights in 16 groups: 6-bit signed scales, 3-bit q.
    Q3K,
    /// 256 weights in 8 groups: 6-bit scales and mins, 4-bit q.
    Q4K,
    /// 256 weights in 8 groups: 6-bit scales and mins, 5-bit q.
    Q5K,
    /// 256 weights in 16 groups: 8-bit scales, 6-bit q.
    Q6K,
}

impl GgmlType {
    /// The type numbered `id` in `ggml.h`; `None` for a number ggml does not define.
    pub fn from_id(id: u32) -> Option<Self> {
        use BlockFormat::*;
        let undecoded = |name, block, bytes| Self::Undecoded { name, block, bytes };
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Block(Q4_0),
            3 => Self::Block(Q4_1),
            6 => Self::Block(Q5_0),
            7 => Self::Block(Q5_1),
            8 => Self::Block(Q8_0),
            9 => undecoded("Q8_1", 32, 40),
            10 => Self::Block(Q2K),
            11 => Self::Block(Q3K),
            12 => Self::Block(Q4K),
            13 => Self::Block(Q5K),
            14 => Self::Block(Q6K),
            15 => undecoded("Q8_K", 256, 292),
            16 => undecoded("IQ2_XXS", 256, 66),
            17 => undecoded("IQ2_XS", 256, 74),
            18 => undecoded("IQ3_XXS", 256, 98),
            19 => undecoded("IQ1_S", 256, 50),
            20 => undecoded("IQ4_NL", 32, 18),
            21 => undecoded("IQ3_S", 256, 110),
            22 => undecoded("IQ2_S", 256, 82),
            23 => undecoded("IQ4_XS", 256, 136),
            24 => Self::Int(1),
            25 => Self::Int(2),
            26 => Self::Int(4),
            27 => Self::Int(8),
            28 => Self::F64,
            29 => undecoded("IQ1_M", 256, 56),
            30 => Self::BF16,
            34 => undecoded("TQ1_0", 256, 54),
            35 => undecoded("TQ2_0", 256, 66),
            39 => undecoded("MXFP4", 32, 17),
            40 => undecoded("NVFP4", 64, 36),
            41 => undecoded("Q1_0", 128, 18),
            _ => return None,
        })
    }

    /// Weights per block and bytes per block.
    pub fn block_layout(self) -> (u64, u64) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::F64 => (1, 8),
            Self::Int(bytes) => (1, u64::from(bytes)),
            Self::Block(format) => (format.block_size() as u64, format.block_bytes() as u64),
            Self::Undecoded { block, bytes, .. } => (block, bytes),
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::F32 => f.write_str("F32"),
            Self::F16 => f.write_str("F16"),
            Self::BF16 => f.write_str("BF16"),
            Self::F64 => f.write_str("F64"),
            Self::Int(bytes) => write!(f, "I{}", bytes * 8),
            Self::Block(format) => format.fmt(f),
            Self::Undecoded { name, .. } => f.write_str(name),
        }
    }
}

impl fmt::Display for BlockFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q2K => "Q2_K",
            Self::Q3K => "Q3_K",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
        })
    }
}

/// Weights per K-quant super-block.
const QK_K: usize = 256;

impl BlockFormat {
    /// Weights per block.
    pub fn block_size(self) -> usize {
        match self {
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q2K | Self::Q3K | Self::Q4K | Self::Q5K | Self::Q6K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q2K => 84,
            Self::Q3K => 110,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
        }
    }

    /// Bits stored per weight, scales included.
    pub fn bits_per_weight(self) -> f64 {
        8.0 * self.block_bytes() as f64 / self.block_size() as f64
    }

    /// Decodes whole blocks: `bytes` holds `out.len() / block_size` blocks.
    pub fn decode(self, bytes: &[u8], out: &mut [f32]) {
        let decode_block: fn(&[u8], &mut [f32]) = match self {
            Self::Q4_0 => q4_0,
            Self::Q4_1 => q4_1,
            Self::Q5_0 => q5_0,
            Self::Q5_1 => q5_1,
            Self::Q8_0 => q8_0,
            Self::Q2K => q2_k,
            Self::Q3K => q3_k,
            Self::Q4K => q4_k,
            Self::Q5K => q5_k,
            Self::Q6K => q6_k,
        };
        for (block, values) in bytes
            .chunks_exact(self.block_bytes())
            .zip(out.chunks_exact_mut(self.block_size()))
        {
            decode_block(block, values);
        }
    }
}

fn half_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// The 4-bit nibbles of 16 bytes in ggml's order: the low nibbles first, then the high ones.
fn nibble(qs: &[u8], i: usize) -> u8 {
    (qs[i % 16] >> (4 * (i / 16))) & 0x0F
}

fn q4_0(block: &[u8], out: &mut [f32]) {
    let d = half_at(block, 0);
    for (i, value) in out.iter_mut().enumerate() {
        *value = d * f32::from(nibble(&block[2..], i) as i8 - 8);
    }
}

fn q4_1(block: &[u8], out: &mut [f32]) {
    let (d, m) = (half_at(block, 0), half_at(block, 2));
    for (i, value) in out.iter_mut().enumerate() {
        *value = d * f32::from(nibble(&block[4..], i)) + m;
    }
}

/// Five-bit q: a nibble and one bit of the 32-bit high mask.
fn five_bits(qh: u32, qs: &[u8], i: usize) -> u8 {
    nibble(qs, i) | ((((qh >> i) & 1) as u8) << 4)
}

fn q5_0(block: &[u8], out: &mut [f32]) {
    let d = half_at(block, 0);
    let qh = u32::from_le_bytes(block[2..6].try_into().expect("4 bytes"));
    for (i, value) in out.iter_mut().enumerate() {
        *value = d * f32::from(five_bits(qh, &block[6..], i) as i8 - 16);
    }
}

fn q5_1(block: &[u8], out: &mut [f32]) {
    let (d, m) = (half_at(block, 0), half_at(block, 2));
    let qh = u32::from_le_bytes(block[4..8].try_into().expect("4 bytes"));
    for (i, value) in out.iter_mut().enumerate() {
        *value = d * f32::from(five_bits(qh, &block[8..], i)) + m;
    }
}

fn q8_0(block: &[u8], out: &mut [f32]) {
    let d = half_at(block, 0);
    for (value, &q) in out.iter_mut().zip(&block[2..]) {
        *value = f32::from(q as i8) * d;
    }
}

/// Two bits per weight, four weights a byte: weight `i` of a 128-weight half is bits
/// `2·(i / 32)` of byte `i % 32`.
fn crumb(qs: &[u8], i: usize) -> u8 {
    let (half, within) = (i / 128, i % 128);
    (qs[half * 32 + within % 32] >> (2 * (within / 32))) & 3
}

fn q2_k(block: &[u8], out: &mut [f32]) {
    let (scales, qs) = (&block[..16], &block[16..80]);
    let (d, dmin) = (half_at(block, 80), half_at(block, 82));
    for (i, value) in out.iter_mut().enumerate() {
        let scale = scales[i / 16];
        let dl = d * f32::from(scale & 0x0F);
        let ml = dmin * f32::from(scale >> 4);
        *value = dl * f32::from(crumb(qs, i)) - ml;
    }
}

fn q3_k(block: &[u8], out: &mut [f32]) {
    let (hmask, qs, packed) = (&block[..32], &block[32..96], &block[96..108]);
    let d = half_at(block, 108);
    let scale = |group: usize| {
        let low = (packed[group % 8] >> (4 * (group / 8))) & 0x0F;
        let high = (packed[8 + group % 4] >> (2 * (group / 4))) & 0x03;
        f32::from(((low | (high << 4)) as i8) - 32)
    };
    for (i, value) in out.iter_mut().enumerate() {
        let high = ((hmask[i % 32] >> (i / 32)) & 1) ^ 1;
        let q = crumb(qs, i) as i8 - ((high << 2) as i8);
        *value = (d * scale(i / 16)) * f32::from(q);
    }
}

/// The 6-bit scale and min of group `j` of a Q4_K or Q5_K block's 12 packed bytes.
fn scale_min_k4(packed: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (packed[j] & 0x3F, packed[j + 4] & 0x3F)
    } else {
        (
            (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 2) & 0x30),
            (packed[j + 4] >> 4) | ((packed[j] >> 2) & 0x30),
        )
    }
}

/// Four bits per weight in 32-byte chunks: group `j` is the low (even `j`) or high nibbles of
/// chunk `j / 2`.
fn nibble_k(qs: &[u8], i: usize) -> u8 {
    let (group, within) = (i / 32, i % 32);
    (qs[(group / 2) * 32 + within] >> (4 * (group % 2))) & 0x0F
}

fn q4_k(block: &[u8], out: &mut [f32]) {
    let (d, dmin) = (half_at(block, 0), half_at(block, 2));
    let (packed, qs) = (&block[4..16], &block[16..144]);
    for (i, value) in out.iter_mut().enumerate() {
        let (scale, min) = scale_min_k4(packed, i / 32);
        let dl = d * f32::from(scale);
        let ml = dmin * f32::from(min);
        *value = dl * f32::from(nibble_k(qs, i)) - ml;
    }
}

fn q5_k(block: &[u8], out: &mut [f32]) {
    let (d, dmin) = (half_at(block, 0), half_at(block, 2));
    let (packed, qh, qs) = (&block[4..16], &block[16..48], &block[48..176]);
    for (i, value) in out.iter_mut().enumerate() {
        let (scale, min) = scale_min_k4(packed, i / 32);
        let dl = d * f32::from(scale);
        let ml = dmin * f32::from(min);
        let q = nibble_k(qs, i) | (((qh[i % 32] >> (i / 32)) & 1) << 4);
        *value = dl * f32::from(q) - ml;
    }
}

fn q6_k(block: &[u8], out: &mut [f32]) {
    let (ql, qh, scales) = (&block[..128], &block[128..192], &block[192..208]);
    let d = half_at(block, 208);
    for (i, value) in out.iter_mut().enumerate() {
        let (half, within) = (i / 128, i % 128);
        let low = (ql[half * 64 + within % 64] >> (4 * (within / 64))) & 0x0F;
        let high = crumb(qh, i);
        let q = (low | (high << 4)) as i8 - 32;
        *value = (d * f32::from(scales[i / 16] as i8)) * f32::from(q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(x: f32) -> [u8; 2] {
        f16::from_f32(x).to_le_bytes()
    }

    #[test]
    fn q8_0_and_q4_0_blocks_decode_by_hand() {
        let mut block = f16_bytes(0.5).to_vec();
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let mut out = [0f32; 32];
        BlockFormat::Q8_0.decode(&block, &mut out);
        assert_eq!(out[0], -8.0);
        assert_eq!(out[31], 7.5);

        let mut block = f16_bytes(2.0).to_vec();
        block.extend([0x10u8; 16]);
        BlockFormat::Q4_0.decode(&block, &mut out);
        assert_eq!(&out[..16], &[-16.0; 16]);
        assert_eq!(&out[16..], &[-14.0; 16]);
    }

    #[test]
    fn every_block_format_has_the_sizes_ggml_gives_it() {
        for (id, block, bytes) in [
            (2, 32, 18),
            (3, 32, 20),
            (6, 32, 22),
            (7, 32, 24),
            (8, 32, 34),
            (10, 256, 84),
            (11, 256, 110),
            (12, 256, 144),
            (13, 256, 176),
            (14, 256, 210),
        ] {
            let GgmlType::Block(format) = GgmlType::from_id(id).unwrap() else {
                panic!("{id} is a block format");
            };
            assert_eq!((format.block_size(), format.block_bytes()), (block, bytes));
        }
        assert_eq!(GgmlType::from_id(5), None);
        assert_eq!(GgmlType::from_id(16).unwrap().to_string(), "IQ2_XXS");
        assert_eq!(BlockFormat::Q4K.bits_per_weight(), 4.5);
    }
}
