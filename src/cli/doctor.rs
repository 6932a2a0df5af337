//! `rmt-torch doctor`: the environment rmt-torch runs in.
use std::process::ExitCode;

use clap::Args;

use rmt_torch::environment::Environment;
use rmt_torch::report::{table::Table, to_json};

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints the environment.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let env = Environment::detect();
    if args.json {
        print!("{}", to_json(&env)?);
        return Ok(ExitCode::SUCCESS);
    }
    let serde_json::Value::Object(fields) = serde_json::to_value(&env)? else {
        anyhow::bail!("environment is not a JSON object");
    };
    let mut table = Table::new(["setting", "value"]);
    for (key, value) in fields {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        table.push(vec![key, value]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}
