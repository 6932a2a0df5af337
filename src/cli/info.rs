//! `rmt-torch info`: a model's tensors and what rmt-torch makes of each.

use clap::Args;

use serde::Serialize;

use crate::analysis::SelectionRequest;
use crate::model::{CheckpointEntry, DirectoryLayout, FileFormat, TensorInfo};
use crate::report::{counted, json_rows, table::Table, Render};

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
pub fn run(args: InfoArgs) -> anyhow::Result<u8> {
    let selection = args.selection.resolve()?;
    args.output.prepare(&[&args.model.model])?;
    let model = args.model.load()?;
    let info = Info {
        model: model.path.display().to_string(),
        format: model.format,
        tensors: model.inventory(&selection),
        other_entries: &model.other_entries,
        directory: &model.directory,
    };
    args.output.emit(&info)?;

    Ok(0)
}

/// A model's tensors, with what rmt-torch makes of each, and what else its file holds.
#[derive(Debug, Serialize)]
struct Info<'a> {
    model: String,
    format: FileFormat,
    tensors: Vec<TensorInfo>,
    other_entries: &'a [CheckpointEntry],
    directory: &'a Option<DirectoryLayout>,
}

impl Render for Info<'_> {
    fn table(&self) -> String {
        let mut table = Table::new(["tensor", "shape", "dtype", "verdict"]);
        for tensor in &self.tensors {
            let shape: Vec<String> = tensor.shape.iter().map(i64::to_string).collect();
            table.push(vec![
                tensor.name.clone(),
                format!("[{}]", shape.join(", ")),
                tensor.dtype.clone(),
                tensor.verdict.clone(),
            ]);
        }
        let analysed = self.tensors.iter().filter(|t| t.analysed).count();
        let mut text = format!(
            "{} ({}): {}, {}\n\n{}",
            self.model,
            self.format,
            counted(self.tensors.len(), "tensor", "tensors"),
            counted(analysed, "weight matrix", "weight matrices"),
            table.render()
        );
        if let Some(layout) = &self.directory {
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
            if let Some(adapter) = &layout.adapter {
                text.push_str(&format!(
                    "LoRA adapter: r = {}, lora_alpha = {}{}{}; targets {}{}\n",
                    adapter.r,
                    adapter.lora_alpha,
                    if adapter.use_rslora {
                        ", rsLoRA (s = lora_alpha/√r)"
                    } else {
                        " (s = lora_alpha/r)"
                    },
                    if adapter.use_dora { ", DoRA" } else { "" },
                    adapter.target_modules.join(", "),
                    if adapter.modules_to_save.is_empty() {
                        String::new()
                    } else {
                        format!("; saved whole: {}", adapter.modules_to_save.join(", "))
                    }
                ));
            }
        }
        if !self.other_entries.is_empty() {
            text.push_str(if self.format == FileFormat::Gguf {
                "\nmetadata:\n"
            } else {
                "\nother entries (not analysed):\n"
            });
            for entry in self.other_entries {
                text.push_str(&format!("  {}: {}\n", entry.name, entry.value));
            }
        }
        text
    }

    /// One row per tensor.
    fn csv_rows(&self) -> crate::Result<Vec<serde_json::Value>> {
        json_rows(&self.tensors)
    }
}
