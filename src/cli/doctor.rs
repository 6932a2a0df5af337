//! `rmt-torch doctor`: the environment rmt-torch runs in.
use std::process::ExitCode;

use clap::Args;

use rmt_torch::environment::Environment;
use rmt_torch::report::{csv::to_csv, table::Table, to_json, OutputFormat};

use super::choice;

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Output format: `table` for people, `json` or `csv` (setting,value rows) for machines.
    #[arg(long, short, value_parser = choice::<OutputFormat>(), default_value_t = OutputFormat::default())]
    format: OutputFormat,
}

/// Prints the environment.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let env = Environment::detect();
    if args.format == OutputFormat::Json {
        print!("{}", to_json(&env)?);
        return Ok(ExitCode::SUCCESS);
    }
    let serde_json::Value::Object(fields) = serde_json::to_value(&env)? else {
        anyhow::bail!("environment is not a JSON object");
    };
    let rows: Vec<(String, String)> = fields
        .into_iter()
        .map(|(key, value)| {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            (key, value)
        })
        .collect();
    if args.format == OutputFormat::Csv {
        let records: Vec<serde_json::Value> = rows
            .iter()
            .map(|(setting, value)| serde_json::json!({"setting": setting, "value": value}))
            .collect();
        print!("{}", to_csv(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(["setting", "value"]);
    for (key, value) in rows {
        table.push(vec![key, value]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}
