//! The `rmt-torch` command line: clap definitions, validated into library options, then library
//! calls. [`main`] is its one entry point, for the binary and for the Python wheel's `rmt-torch`
//! console script alike, so both parse, print and exit the same way.
mod allocate;
mod analyze;
mod compare;
mod dist;
mod doctor;
mod exit;
mod hessian;
mod info;
mod jacobian;
mod output;
mod report;
mod theory;
mod track;
mod zoo;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, FromArgMatches, Parser, Subcommand};

use crate::analysis::options::finite_number;
use crate::report::plots::{FigureFiles, ImageFormat};
use crate::report::OutputFormat;
use crate::{choice, AnalysisRequest, AnalyzeOptions};

/// Random matrix theory diagnostics for PyTorch models.
///
/// Reads TorchScript archives (scripted or traced) and safetensors files, computes the
/// eigenvalue spectrum (ESD) of every weight matrix in float64, and reports norms, ranks,
/// spectral entropy and the Marchenko-Pastur bulk for each layer.
#[derive(Debug, Parser)]
#[command(name = "rmt-torch", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Threads for libtorch's kernels and for the statistics (default: every core).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-layer spectral statistics of a model's weight matrices.
    Analyze(analyze::AnalyzeArgs),
    /// What changed between two models, layer by layer: each side, the update ΔW and their
    /// distances.
    Compare(compare::CompareArgs),
    /// List a model's tensors: shape, dtype, and whether each is analysed as a weight matrix.
    Info(info::InfoArgs),
    /// A self-contained HTML report of one model: summary, layer table, every layer's figures.
    Report(report::ReportArgs),
    /// Input-output Jacobians of a TorchScript model on an input batch, and their spectra.
    Jacobian(jacobian::JacobianArgs),
    /// The loss Hessian of a TorchScript model on a batch: top eigenvalues, trace and spectral
    /// density by Lanczos, without forming it.
    Hessian(hessian::HessianArgs),
    /// Health checks over a model zoo: analyse every model, rank, apply a policy; exit 0/1/2.
    Zoo(zoo::ZooArgs),
    /// Decisions from α: per-layer pruning ratios (AlphaPruning), learning rates (TempBalance)
    /// or LoRA experts per block (AlphaLoRA).
    Allocate(allocate::AllocateArgs),
    /// Spectral statistics over training: a sequence of checkpoints, or a SpectralMonitor's JSONL.
    Track(track::TrackArgs),
    /// The theory behind the spectra: Dyson Brownian motion, Hermite linearisation, the curse of
    /// depth, pre-activation statistics, ridge and random-features double descent.
    Theory(theory::TheoryArgs),
    /// Evaluate a distribution of the RMT suite: density, CDF, quantile, moments.
    Dist(dist::DistArgs),
    /// Show the libtorch build, CUDA and thread settings rmt-torch runs with.
    Doctor(doctor::DoctorArgs),
}

/// The model file, and where its weights sit when it is a nested checkpoint.
#[derive(Debug, Args)]
struct ModelArgs {
    /// Model file: a TorchScript archive, a torch.save checkpoint (zip or legacy) or a
    /// safetensors file; the format is read from the content, not the extension.
    model: PathBuf,
    #[command(flatten)]
    entry: EntryArgs,
}

/// Which entry of a torch.save checkpoint holds the weights.
#[derive(Debug, Args)]
struct EntryArgs {
    /// For torch.save checkpoints: the dotted path of the entry holding the weights
    /// (e.g. 'ema.state_dict' or 'models.0'); by default state_dict, model_state_dict, model,
    /// module or net is used when present, else the whole checkpoint.
    #[arg(long, value_name = "A.B.C")]
    key: Option<String>,
}

impl ModelArgs {
    fn load(&self) -> anyhow::Result<crate::Model> {
        Ok(crate::Model::load_entry(
            &self.model,
            self.entry.key.as_deref(),
        )?)
    }
}

/// How every command that analyses weights (analyze, report, zoo, track) reads and analyses
/// them: the library's one options request, resolved once into [`AnalyzeOptions`].
#[derive(Debug, Args)]
struct AnalysisArgs {
    #[command(flatten)]
    request: AnalysisRequest,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

impl AnalysisArgs {
    /// Refuses --eigenvalues and --figure-data where nothing would carry them: they add to
    /// the JSON (and feed the figures), and a table or CSV holds one number per cell.
    fn refuse_unwritten_data(&self, format: OutputFormat, plots: bool) -> anyhow::Result<()> {
        let flag = if self.request.eigenvalues {
            "--eigenvalues adds each layer's ESD"
        } else if self.request.figure_data {
            "--figure-data adds what the figures draw"
        } else {
            return Ok(());
        };
        if format != OutputFormat::Json && !plots {
            anyhow::bail!(
                "{flag} to the JSON: add -f json (a table or CSV holds one number per cell)"
            );
        }
        Ok(())
    }

    /// The checked library options these flags mean, once `adjust` has added what the
    /// command itself implies (the data its figures draw).
    fn options(&self, adjust: impl FnOnce(&mut AnalysisRequest)) -> crate::Result<AnalyzeOptions> {
        let mut request = self.request.clone();
        adjust(&mut request);
        request.resolve()
    }
}

/// The command line as it parses and documents itself: the derived [`Cli`] with the analysis
/// defaults in its help ([`with_defaults`]), and the shared flags a command refuses kept out
/// of its help: `jacobian` tests J's singular values, not vectors or symmetric parts; `report`
/// keeps every eigenvalue for its figures and writes no JSON.
fn command() -> clap::Command {
    let hide = |ids: &'static [&'static str]| {
        move |command: clap::Command| {
            ids.iter().fold(command, |command, id| {
                command.mut_arg(*id, |arg| arg.hide(true))
            })
        }
    };
    // `allocate`'s analysis defaults are its decisions' (their estimators, every layer counted).
    let derived = <Cli as clap::CommandFactory>::command().mut_subcommand("allocate", |allocate| {
        ["sparsity", "lr", "lora"]
            .iter()
            .fold(allocate, |allocate, name| {
                allocate.mut_subcommand(name, |decision| {
                    annotated_with(decision, &allocate::analysis_defaults(name))
                })
            })
    });
    let command = with_defaults(derived)
        .mut_subcommand("jacobian", hide(&["vectors", "pt_window", "semicircle"]))
        .mut_subcommand("jacobian", |jacobian| {
            jacobian.mut_arg("tw_level", |arg| {
                arg.help(
                    "False-positive rate of the Tracy-Widom spike count (num_spikes_tw) of each \
                     sample's σ²: the spectrum of a random Jacobian has spikes with this \
                     probability [default: 0.05]",
                )
            })
        })
        .mut_subcommand("report", hide(&["eigenvalues", "figure_data"]));
    with_csv_rows(command)
}

/// What one CSV row of each command's output is, for its `--format` help.
fn csv_row(command: &str) -> &'static str {
    match command {
        "analyze" => "one row per layer, its scalar fields (with --ww-compat WeightWatcher's details columns)",
        "info" => "one row per tensor",
        "compare" => "one row per matched layer: its distances and base., other. and update. fields",
        "zoo" | "merge" => "one row per model: rank, path, verdict, violations, the summary fields",
        "jacobian" => "one row per sample (with --each-output per output and sample; with --lanczos its top singular values)",
        "hessian" => "one row per top eigenvalue: rank, eigenvalue, residual",
        "dist" => "one row per value evaluated",
        "track" => "one row per step and layer",
        "sparsity" | "lr" => "one row per layer: name, block, alpha, params, value, tuned",
        "lora" => "one row per block: name, block, alpha, params, value (experts)",
        _ => "the table's rows",
    }
}

/// `command` with each subcommand's `--format` help saying what its CSV rows are (the shared
/// flag would otherwise describe every command's at once).
fn with_csv_rows(command: clap::Command) -> clap::Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    names.iter().fold(command, |command, name| {
        command.mut_subcommand(name, |sub| {
            let sub = if sub.get_arguments().any(|arg| arg.get_id() == "format") && name != "doctor"
            {
                sub.mut_arg("format", |arg| {
                    arg.help(format!(
                        "Output format: `table` for people, `json` (the full record, documented \
                         schema) or `csv` ({}; JSON's field names) for machines",
                        csv_row(name)
                    ))
                })
            } else {
                sub
            };
            with_csv_rows(sub)
        })
    })
}

/// `command` with every analysis option's default, as the library resolves it, added to its
/// help (the options stay "not given" when absent, so clap itself shows no default), in every
/// subcommand that takes them.
fn with_defaults(command: clap::Command) -> clap::Command {
    annotated_with(command, &AnalyzeOptions::default().settings_json())
}

/// [`with_defaults`] with the defaults `defaults` (settings as JSON), leaving alone an option
/// whose help already states its default (a command with defaults of its own, annotated first).
fn annotated_with(
    command: clap::Command,
    defaults: &serde_json::Map<String, serde_json::Value>,
) -> clap::Command {
    let annotated = command.clone().mut_args(|arg| {
        let value = match defaults.get(arg.get_id().as_str()) {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(serde_json::Value::Number(number)) => number.to_string(),
            _ => return arg,
        };
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        if !arg.get_default_values().is_empty() || help.contains("[default: ") {
            return arg;
        }
        arg.help(format!("{help} [default: {value}]"))
    });
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    names.iter().fold(annotated, |command, name| {
        command.mut_subcommand(name, |sub| annotated_with(sub, defaults))
    })
}

/// Runs the command line `args` (the program's name first, as `std::env::args_os` gives them)
/// and returns the process's exit status: 0, 1 for a policy violated (`zoo`, `compare
/// --fail-if`), 2 for an error of the input or the options (clap's usage errors included), 3
/// for a failure of rmt-torch itself. Output goes to the process's stdout and stderr, errors as
/// one line `error: …`; `--help` and `--version` print to stdout and succeed.
pub fn main<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = command()
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return 0;
        }
        Err(err) => {
            eprintln!("{}", exit::one_line_usage_error(&err));
            return exit::EXIT_ERROR;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) if exit::is_broken_pipe(&err) => 0,
        Err(err) => {
            eprintln!("error: {}", crate::report::printable(&exit::one_line(&err)));
            exit::exit_code(&err)
        }
    }
}

/// Runs the parsed command line.
fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Some(threads) = cli.threads {
        if threads == 0 {
            anyhow::bail!("invalid option --threads: must be at least 1");
        }
        tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }
    match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Info(args) => info::run(args),
        Command::Report(args) => report::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Dist(args) => dist::run(args),
        Command::Jacobian(args) => jacobian::run(args),
        Command::Hessian(args) => hessian::run(args),
        Command::Zoo(args) => zoo::run(args),
        Command::Allocate(args) => allocate::run(args),
        Command::Track(args) => track::run(args),
        Command::Theory(args) => theory::run(args),
    }
}

/// Figures written beside the numbers.
#[derive(Debug, Args)]
struct PlotArgs {
    /// Write figures into DIR (created when missing), as PNG unless --plot-format says
    /// otherwise. Text is drawn with a bundled font, so no system fonts are needed. For analyze
    /// and track the JSON then also carries what the figures draw (eigenvalues; analyze: the
    /// unfolded spacings and Σ²(L) at L = 0.5…10 unless --number-variance chose lengths).
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// Image formats of the figures: `png`, `svg` (text kept as text) or both (`png,svg`).
    #[arg(long, default_value = "png", value_delimiter = ',', value_parser = choice::<ImageFormat>(), value_name = "FORMATS", requires = "plots")]
    plot_format: Vec<ImageFormat>,
    /// Pixels of a one-panel figure's layout, WIDTHxHEIGHT (figures of several panels scale
    /// with it); text keeps its size, so larger figures give the data more room.
    #[arg(long, default_value = "720x440", value_parser = plot_size, value_name = "WxH", requires = "plots")]
    plot_size: (u32, u32),
    /// Draw everything (text, lines, margins) S times larger, 0.25 to 8: the same figure with
    /// S times the pixels each way, for print. Pixels = inches × dpi: a 720-pixel-wide figure
    /// printed 6 inches wide at 300 dpi needs 1800 pixels, --plot-scale 2.5. PNG and SVG alike.
    #[arg(long, default_value_t = 1.0, value_parser = plot_scale, value_name = "S", requires = "plots")]
    plot_scale: f64,
}

/// A plot scale within [`crate::report::plots::PLOT_SCALES`].
fn plot_scale(text: &str) -> Result<f64, String> {
    let scales = crate::report::plots::PLOT_SCALES;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|scale| scales.contains(scale))
        .ok_or_else(|| {
            format!(
                "expected a scale from {} to {} (e.g. 2), got `{text}`",
                scales.start(),
                scales.end()
            )
        })
}

/// `WIDTHxHEIGHT` in pixels, each within [`crate::report::plots::PLOT_SIZES`].
fn plot_size(text: &str) -> Result<(u32, u32), String> {
    let sizes = crate::report::plots::PLOT_SIZES;
    let parse = |part: Option<&str>| {
        part.and_then(|p| p.trim().parse::<u32>().ok())
            .filter(|p| sizes.contains(p))
    };
    let mut parts = text.split(['x', 'X', '×']);
    match (parse(parts.next()), parse(parts.next()), parts.next()) {
        (Some(width), Some(height), None) => Ok((width, height)),
        _ => Err(format!(
            "expected WIDTHxHEIGHT in pixels, each {} to {} (e.g. 1200x800), got `{text}`",
            sizes.start(),
            sizes.end()
        )),
    }
}

impl PlotArgs {
    /// Creates the figure directory before any work, so a bad path fails at once.
    fn prepare(&self) -> anyhow::Result<()> {
        if let Some(directory) = &self.plots {
            crate::report::plots::create_directory(directory)?;
        }
        Ok(())
    }

    /// Writes figures with `write(directory, files)` when --plots was given, and says where.
    fn write(
        &self,
        quiet: bool,
        write: impl FnOnce(&std::path::Path, &FigureFiles) -> crate::Result<Vec<PathBuf>>,
    ) -> anyhow::Result<()> {
        let Some(directory) = &self.plots else {
            return Ok(());
        };
        self.prepare()?;
        let files = FigureFiles {
            formats: self.plot_format.clone(),
            panel_size: self.plot_size,
            scale: self.plot_scale,
        };
        let written = write(directory, &files)?;
        if !quiet {
            eprintln!(
                "wrote {} to {}",
                crate::report::counted(written.len(), "figure", "figures"),
                directory.display()
            );
        }
        Ok(())
    }
}

/// Where results go: a file, or standard output.
#[derive(Debug, Args)]
struct OutputArgs {
    /// Output format: `table` for people, `json` (the full record, documented schema) or
    /// `csv` for machines (each command's help says what its rows are).
    #[arg(long, short, value_parser = choice::<OutputFormat>(), default_value_t = OutputFormat::default())]
    format: OutputFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The long flags of `command` as option names (`-` read as `_`).
    fn flags(command: &clap::Command) -> Vec<String> {
        command
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .map(|long| long.replace('-', "_"))
            .collect()
    }

    /// One list, the request's fields, gives the analysis flags of every command that analyses
    /// weights and the Python keywords (which are the request's serde names by construction).
    #[test]
    fn analysis_flags_and_python_keywords_are_one_list() {
        let names = AnalysisRequest::names();
        assert!(names.len() >= 26, "{names:?}");
        let request = AnalysisRequest::augment_args(clap::Command::new("request"));
        assert_eq!(flags(&request), names);
        let cli = with_defaults(Cli::command());
        for command in ["analyze", "compare", "report", "zoo", "track"] {
            let subcommand = cli.find_subcommand(command).unwrap();
            let flags = flags(subcommand);
            let missing: Vec<&String> = names.iter().filter(|n| !flags.contains(n)).collect();
            assert!(missing.is_empty(), "{command} lacks {missing:?}");
        }
    }

    /// Help lists only what a command uses: no flag it would refuse.
    #[test]
    fn help_has_no_flag_the_command_refuses() {
        let mut cli = command();
        for (name, refused, kept) in [
            (
                "jacobian",
                &["--vectors", "--pt-window", "--semicircle"][..],
                "--tw-level",
            ),
            (
                "report",
                &["--eigenvalues", "--figure-data"][..],
                "--vectors",
            ),
        ] {
            let help = cli
                .find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string();
            for flag in refused {
                assert!(!help.contains(flag), "{name} {flag}");
            }
            assert!(help.contains(kept), "{name} {kept}");
        }
    }

    /// The long help of `command` and of every subcommand under it, by path.
    fn every_help(command: &mut clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        let path = format!("{path} {}", command.get_name()).trim().to_string();
        let help = command.render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push((path.clone(), help));
        for sub in command.get_subcommands_mut() {
            every_help(sub, &path, out);
        }
    }

    /// Each command's help describes that command: `--format` says what its own CSV rows are,
    /// `jacobian` (which has no layers nor convolutions) says nothing of them, and no help
    /// speaks of table columns that are not that command's.
    #[test]
    fn each_command_describes_its_own_flags() {
        let mut helps = Vec::new();
        every_help(&mut command(), "", &mut helps);
        assert!(helps.len() > 15);
        for (path, help) in &helps {
            let name = path.rsplit(' ').next().unwrap();
            assert!(
                !help.contains("a layer, a model, a sample"),
                "{path}: the generic --format text"
            );
            if help.contains("--format") && name != "doctor" && path != "rmt-torch" {
                assert!(help.contains(csv_row(name)), "{path}");
            }
            for stale in [
                "rand_dist ",
                "traps to",
                "pt_rejected",
                "p_semicircle",
                "alpha_w ",
            ] {
                assert!(!help.contains(stale), "{path}: {stale}");
            }
        }
        let jacobian = &helps
            .iter()
            .find(|(p, _)| p == "rmt-torch jacobian")
            .unwrap()
            .1;
        for foreign in ["convolution", "slices", "per layer", "each layer"] {
            assert!(!jacobian.contains(foreign), "jacobian: {foreign}");
        }
    }

    /// Every possible value of every flag is described: in its own help or named in the
    /// flag's (`--conv ww` had neither).
    #[test]
    fn every_possible_value_is_described() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command
                .get_arguments()
                .filter(|arg| arg.get_action().takes_values())
            {
                let help = arg
                    .get_long_help()
                    .or(arg.get_help())
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let listed = command
                    .get_after_long_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let listed: Vec<&str> = listed
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .collect();
                for value in arg.get_possible_values() {
                    let described = value.get_help().is_some()
                        || help.contains(&format!("`{}`", value.get_name()))
                        || listed.contains(&value.get_name());
                    if !described && !value.is_hide_set() {
                        missing.push(format!("{path} --{} {}", arg.get_id(), value.get_name()));
                    }
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        check(&command(), "rmt-torch", &mut missing);
        assert!(missing.is_empty(), "undescribed values: {missing:#?}");
    }

    /// `--help` shows each option's default as the library resolves it.
    #[test]
    fn help_shows_the_resolved_defaults() {
        let cli = with_defaults(Cli::command());
        let analyze = cli.find_subcommand("analyze").unwrap();
        let help = |id: &str| {
            analyze
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .and_then(|arg| arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        assert!(
            help("min_evals").ends_with("[default: 8]"),
            "{}",
            help("min_evals")
        );
        assert!(help("conv").ends_with("[default: slices]"));
        assert!(help("tw_level").ends_with("[default: 0.05]"));
        assert!(!help("eigenvalues").contains("[default"));
        assert!(!help("layers").contains("[default"));
    }
}
