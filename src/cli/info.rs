//! `rmt-torch info`: a model's tensors and what rmt-torch makes of each.
use std::process::ExitCode;

use clap::Args;

use rmt_torch::report::{csv::to_csv, table::Table, to_json, OutputFormat};

use super::output::write_output;
use rmt_torch::analysis::SelectionRequest;

use super::{ModelArgs, OutputArgs};

/// Arguments of `info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    selection: SelectionRequest,
    #[command(flatten)]
    output: OutputArgs,
}

/// Lists the tensors with their verdicts.
pub fn run(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let selection = args.selection.resolve()?;
    let format = args.output.format;
    args.output.prepare(&[&args.model.model])?;
    let model = args.model.load()?;
    let inventory = model.inventory(&selection);
    let text = match format {
        OutputFormat::Json => to_json(&serde_json::json!({
            "model": model.path.display().to_string(),
            "format": model.format,
            "tensors": inventory,
            "other_entries": model.other_entries,
            "directory": model.directory,
        }))?,
        OutputFormat::Csv => to_csv(&inventory)?,
        OutputFormat::Table => {
            let mut table = Table::new(["tensor", "shape", "dtype", "verdict"]);
            for tensor in &inventory {
                let shape: Vec<String> = tensor.shape.iter().map(i64::to_string).collect();
                table.push(vec![
                    tensor.name.clone(),
                    format!("[{}]", shape.join(", ")),
                    tensor.dtype.clone(),
                    tensor.verdict.clone(),
                ]);
            }
            let analysed = inventory.iter().filter(|t| t.analysed).count();
            let mut text = format!(
                "{} ({}): {} tensors, {} weight matrices\n\n{}",
                model.path.display(),
                model.format,
                inventory.len(),
                analysed,
                table.render()
            );
            if let Some(layout) = &model.directory {
                text.push_str("\nread from:\n");
                if let Some(index) = &layout.index {
                    text.push_str(&format!("  index {}\n", index.display()));
                }
                for file in &layout.files {
                    text.push_str(&format!("  {}\n", file.display()));
                }
                if !layout.components.is_empty() {
                    text.push_str(&format!(
                        "  components (name prefixes): {}\n",
                        layout.components.join(", ")
                    ));
                }
            }
            if !model.other_entries.is_empty() {
                text.push_str("\nother entries (not analysed):\n");
                for entry in &model.other_entries {
                    text.push_str(&format!("  {}: {}\n", entry.name, entry.value));
                }
            }
            text
        }
    };
    write_output(&args.output, &text)?;
    Ok(ExitCode::SUCCESS)
}
