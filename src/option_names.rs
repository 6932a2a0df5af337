//! The names users type for the library's option enums, defined once per enum.

/// Implements `FromStr` (unknown names are an [`crate::Error::InvalidOption`] that lists the
/// valid ones) and `Display` for a fieldless enum, from its `Variant => "name"` pairs.
macro_rules! option_names {
    ($type:ty, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl std::str::FromStr for $type {
            type Err = $crate::error::Error;
            fn from_str(text: &str) -> $crate::error::Result<Self> {
                match text {
                    $($name => Ok(Self::$variant),)+
                    other => Err($crate::error::Error::InvalidOption(format!(
                        "{} '{other}': expected {}",
                        $what,
                        [$($name),+].join(" or ")
                    ))),
                }
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $(Self::$variant => $name,)+
                })
            }
        }
    };
}

pub(crate) use option_names;
