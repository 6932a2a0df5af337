//! The names users type for the library's option enums, defined once per enum.

/// A fieldless option enum whose values have names users type (on the command line, in Python
/// keywords, in policy files): parsed by `FromStr`, printed by `Display`, listed by [`Self::NAMES`].
pub trait OptionNames: std::str::FromStr<Err = crate::error::Error> + std::fmt::Display {
    /// Every accepted name, in the order `--help` lists them.
    const NAMES: &'static [&'static str];
}

/// Implements [`OptionNames`], `FromStr` (unknown names are an [`crate::Error::InvalidOption`]
/// that lists the valid ones) and `Display` for a fieldless enum, from its `Variant => "name"`
/// pairs.
macro_rules! option_names {
    ($type:ty, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $crate::option_names::OptionNames for $type {
            const NAMES: &'static [&'static str] = &[$($name),+];
        }

        impl std::str::FromStr for $type {
            type Err = $crate::error::Error;
            fn from_str(text: &str) -> $crate::error::Result<Self> {
                match text {
                    $($name => Ok(Self::$variant),)+
                    other => Err($crate::error::Error::unknown_name($what, other, &[$($name),+])),
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

/// Implements `Serialize` and `Deserialize` for a type as its `Display` text, read back with
/// `FromStr`: rules, shards and field names travel through JSON as users write them.
macro_rules! serde_as_text {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use serde_as_text;

/// A clap value parser for one of the library's option enums: its names are listed in
/// `--help` and parsed straight into the enum.
#[cfg(feature = "cli")]
pub fn choice<T>() -> impl clap::builder::TypedValueParser<Value = T>
where
    T: OptionNames + Clone + Send + Sync + 'static,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::NAMES).try_map(|name| name.parse::<T>())
}

/// [`choice`] with each name described in `--help`: `descriptions` in the order of
/// `T::NAMES`, one each.
#[cfg(feature = "cli")]
pub fn described_choice<T>(
    descriptions: &'static [&'static str],
) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: OptionNames + Clone + Send + Sync + 'static,
{
    use clap::builder::{PossibleValue, TypedValueParser};
    assert_eq!(
        T::NAMES.len(),
        descriptions.len(),
        "one description per name"
    );
    let values = T::NAMES
        .iter()
        .zip(descriptions)
        .map(|(name, help)| PossibleValue::new(*name).help(*help));
    clap::builder::PossibleValuesParser::new(values).try_map(|name| name.parse::<T>())
}
