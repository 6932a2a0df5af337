//! `rmt-torch doctor`: the environment rmt-torch runs in.

use clap::Args;

use crate::environment::Environment;
use crate::report::{OutputFormat, Render};

use super::choice;

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Output format: `table` for people, `json` or `csv` (setting,value rows) for machines.
    #[arg(long, short, value_parser = choice::<OutputFormat>(), default_value_t = OutputFormat::default())]
    format: OutputFormat,
}

/// Prints the environment.
pub fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    print!("{}", Environment::detect().render(args.format)?);
    Ok(0)
}
