//! Element types as files store them, known before any byte of a tensor is read: the index of
//! a model says what each tensor is without loading it.
use std::fmt;

/// A stored tensor's element type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dtype {
    /// float64.
    F64,
    /// float32.
    F32,
    /// float16.
    F16,
    /// bfloat16.
    BF16,
    /// float8 e4m3fn (analysed in f64 after upcasting, like every float type).
    F8E4M3,
    /// float8 e5m2.
    F8E5M2,
    /// int64.
    I64,
    /// int32.
    I32,
    /// int16.
    I16,
    /// int8.
    I8,
    /// uint8.
    U8,
    /// bool.
    Bool,
    /// Quantised weights, dequantised to float32 when read (a GGUF file's Q4_K blocks, …).
    Quantized(super::quant::Scheme),
    /// A type rmt-torch lists but does not read (complex, quantised, 4-bit packed…), by its
    /// name in the file, with the element size when the file states it.
    Other {
        /// The type's name as the file spells it.
        name: String,
        /// Bytes per element, when known.
        size: Option<usize>,
    },
}

impl Dtype {
    /// Bytes per element (`None` for an unknown type).
    pub fn size(&self) -> Option<usize> {
        Some(match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::F8E4M3 | Self::F8E5M2 | Self::I8 | Self::U8 | Self::Bool => 1,
            Self::Quantized(_) => return None,
            Self::Other { size, .. } => return *size,
        })
    }

    /// Bytes per element once read into memory: float8 is upcast to float32 as it is read (its
    /// bytes and the float32 copy), an unknown type counted as float64.
    pub fn loaded_size(&self) -> usize {
        match self {
            Self::F8E4M3 | Self::F8E5M2 | Self::Quantized(_) => 1 + 4,
            _ => self.size().unwrap_or(8),
        }
    }

    /// Whether the type is a real floating-point type rmt-torch analyses.
    pub fn is_float(&self) -> bool {
        matches!(
            self,
            Self::F64
                | Self::F32
                | Self::F16
                | Self::BF16
                | Self::F8E4M3
                | Self::F8E5M2
                | Self::Quantized(_)
        )
    }

    /// Why a tensor of this type is not analysed, when it is not a float type.
    pub fn skip_reason(&self) -> Option<String> {
        match self {
            _ if self.is_float() => None,
            Self::Other { name, .. } if is_complex(name) => Some(format!(
                "complex ({name}): the spectra rmt-torch computes are of real matrices"
            )),
            Self::Other { name, .. } if is_quantized(name) => Some(format!(
                "quantised ({name}): dequantise the weights to float first"
            )),
            Self::Other { name, .. } if name.starts_with("ggml ") => Some(format!(
                "{name}, a quantisation rmt-torch does not decode (it decodes Q4_0…Q8_0 and \
                 Q2_K…Q6_K)"
            )),
            other => Some(format!("not floating point ({other})")),
        }
    }

    /// The dtype of a pickled storage class (`FloatStorage`, …), as `torch.save` and
    /// `torch.jit.save` name them.
    pub fn of_storage(storage_type: &str) -> Self {
        match storage_type {
            "DoubleStorage" => Self::F64,
            "FloatStorage" => Self::F32,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "Float8_e4m3fnStorage" => Self::F8E4M3,
            "Float8_e5m2Storage" => Self::F8E5M2,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            other => Self::Other {
                name: other.to_string(),
                size: match other {
                    "ComplexDoubleStorage" => Some(16),
                    "ComplexFloatStorage" => Some(8),
                    "ComplexHalfStorage" | "QInt32Storage" => Some(4),
                    "QInt8Storage" | "QUInt8Storage" | "QUInt4x2Storage" | "QUInt2x4Storage" => {
                        Some(1)
                    }
                    _ => None,
                },
            },
        }
    }

    /// The dtype a safetensors header names (`F32`, `BF16`, `F8_E4M3`, …).
    pub fn of_safetensors(name: &str) -> Self {
        match name {
            "F64" => Self::F64,
            "F32" => Self::F32,
            "F16" => Self::F16,
            "BF16" => Self::BF16,
            "F8_E4M3" => Self::F8E4M3,
            "F8_E5M2" => Self::F8E5M2,
            "I64" => Self::I64,
            "I32" => Self::I32,
            "I16" => Self::I16,
            "I8" => Self::I8,
            "U8" => Self::U8,
            "BOOL" => Self::Bool,
            other => Self::Other {
                name: other.to_string(),
                size: match other {
                    "C64" | "U64" => Some(8),
                    "U32" => Some(4),
                    "U16" => Some(2),
                    _ => None,
                },
            },
        }
    }

    /// The dtype of a NumPy type string (`<f4`, `|u1`, …); big-endian types are `Other`.
    pub fn of_numpy(descr: &str) -> Self {
        match descr {
            "<f8" => Self::F64,
            "<f4" => Self::F32,
            "<f2" => Self::F16,
            "<i8" => Self::I64,
            "<i4" => Self::I32,
            "<i2" => Self::I16,
            "|i1" => Self::I8,
            "|u1" => Self::U8,
            "|b1" => Self::Bool,
            other => Self::Other {
                name: other.to_string(),
                size: None,
            },
        }
    }
}

fn is_complex(name: &str) -> bool {
    name.starts_with("Complex") || name == "C64" || name.starts_with("<c")
}

fn is_quantized(name: &str) -> bool {
    name.starts_with("QInt") || name.starts_with("QUInt")
}

impl fmt::Display for Dtype {
    /// PyTorch's spelling (`float32`, `bfloat16`, `float8_e4m3fn`, …).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F64 => "float64",
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
            Self::F8E4M3 => "float8_e4m3fn",
            Self::F8E5M2 => "float8_e5m2",
            Self::I64 => "int64",
            Self::I32 => "int32",
            Self::I16 => "int16",
            Self::I8 => "int8",
            Self::U8 => "uint8",
            Self::Bool => "bool",
            Self::Quantized(scheme) => return scheme.fmt(f),
            Self::Other { name, .. } => name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_names_the_same_types() {
        for (storage, safetensors, numpy, size) in [
            ("DoubleStorage", "F64", "<f8", 8),
            ("FloatStorage", "F32", "<f4", 4),
            ("HalfStorage", "F16", "<f2", 2),
            ("LongStorage", "I64", "<i8", 8),
            ("ByteStorage", "U8", "|u1", 1),
        ] {
            let dtype = Dtype::of_storage(storage);
            assert_eq!(dtype, Dtype::of_safetensors(safetensors));
            assert_eq!(dtype, Dtype::of_numpy(numpy));
            assert_eq!(dtype.size(), Some(size));
        }
        assert_eq!(
            Dtype::of_safetensors("F8_E4M3").to_string(),
            "float8_e4m3fn"
        );
        assert!(Dtype::of_safetensors("F8_E5M2").is_float());
        let complex = Dtype::of_storage("ComplexFloatStorage");
        assert_eq!(complex.size(), Some(8));
        assert!(complex.skip_reason().unwrap().starts_with("complex"));
        assert!(Dtype::of_storage("QInt8Storage")
            .skip_reason()
            .unwrap()
            .starts_with("quantised"));
        assert_eq!(Dtype::of_numpy(">f4").size(), None);
    }
}
