//! One layer's way through the analysis: read from the model, its spectra on the device, then
//! every statistic on the host.
use super::options::AnalyzeOptions;
use super::record::LayerReport;
use crate::error::{Error, Result};
use crate::model::layers::{as_matrices, ConvMode, LayerKind, MatrixShape, WeightLayer};
use crate::model::roles;
use crate::spectrum;
use crate::stats::esd::EsdScale;
use crate::stats::heavy_tail::alternatives;
use crate::stats::heavy_tail::estimator;
use crate::stats::heavy_tail::hill::hill_plateau;
use crate::stats::heavy_tail::power_law::PowerLawFit;
use crate::stats::heavy_tail::quality::{AlphaMetrics, QualityLabel};
use crate::stats::heavy_tail::randomization::Randomization;
use crate::stats::spectral_metrics::SpectralMetrics;
use crate::stats::suite::{rmt_report, LayerSpectrum, SmallSample};

/// What the device computes for one layer: everything its statistics need, and no tensors.
pub(super) struct LayerSpectra {
    pub(super) layer_id: usize,
    meta: LayerMeta,
    /// From squared singular values to reported eigenvalues.
    scale: EsdScale,
    /// The reported ESD, ascending.
    eigenvalues: Vec<f64>,
    /// Norms, ranks, entropy.
    metrics: SpectralMetrics,
    spectrum: spectrum::Spectrum,
    /// A low-rank update's rank, when its spectrum came from its factors.
    rank: Option<usize>,
    /// Squared singular values of the shuffled matrices, when asked for.
    shuffled: Option<Vec<f64>>,
    /// (σ², right singular vector) of every matrix, when asked for.
    vectors: Option<SingularPairs>,
    /// Eigenvalues of the symmetric parts, when asked for and square.
    symmetric: Option<Vec<f64>>,
    /// Squared singular values of FARMS's windows, in the groups that are fitted, when the
    /// estimator pools windows.
    windows: Option<Vec<Vec<f64>>>,
}

/// (σ², right singular vector) of every matrix of a layer.
type SingularPairs = Vec<(f64, Vec<f64>)>;

/// What a layer's record says of the tensor itself, owned so that it can travel with the
/// layer's matrices and spectra between threads.
pub(crate) struct LayerMeta {
    name: String,
    kind: LayerKind,
    conv_mode: ConvMode,
    shape: MatrixShape,
    stored_shape: Vec<i64>,
    dtype: String,
}

/// What a layer's spectrum is computed from.
enum Stack {
    /// Its stack of matrices [slices, N, M]; `wide` when a matrix was stored M × N.
    Matrices { matrices: tch::Tensor, wide: bool },
    /// One tall matrix of ggml blocks (a GGUF weight, N ≥ M as stored), decoded a band of
    /// rows at a time as its Gram matrix is formed: never whole in memory as floats.
    Blocks(crate::model::quant::GgmlBlocks),
    /// A low-rank update's factors ([`crate::model::adapter::LowRank::stacks`]), s and r.
    Factors {
        b: tch::Tensor,
        a: tch::Tensor,
        scale: f64,
        rank: usize,
    },
}

/// One selected layer read from the model.
pub(super) struct LoadedLayer {
    /// Index among the layers being analysed: where its result goes.
    pub(super) index: usize,
    /// Position among the model's selected layers: seeds its shuffles (the same in a share of
    /// the model as in the whole).
    position: usize,
    meta: LayerMeta,
    stack: Stack,
}

impl LayerMeta {
    /// What the record of `layer` says of its tensor, its dtype given.
    pub(crate) fn of(layer: &WeightLayer<'_>, dtype: String) -> Self {
        Self {
            name: layer.name.to_string(),
            kind: layer.kind,
            conv_mode: layer.conv_mode,
            shape: layer.shape,
            stored_shape: layer.tensor.shape.clone(),
            dtype,
        }
    }
}

/// The report of the layer `meta` describes from a spectrum computed elsewhere, as `analyze`
/// would report it: `compare` forms the Gram matrices itself, to read CKA from them as well.
/// `None` when the spectrum is identically zero. Only for options that read no more of the
/// matrices than their spectrum ([`reads_matrices`] false).
pub(crate) fn report_of_spectrum(
    meta: LayerMeta,
    spectrum: spectrum::Spectrum,
    options: &AnalyzeOptions,
) -> Option<LayerReport> {
    let spectra = spectra_of(0, meta, spectrum, options, None)?;
    Some(layer_report(spectra, options))
}

impl LoadedLayer {
    /// Reads `layer`: a low-rank update as its factors, unless an option reads the matrices
    /// themselves (shuffles, symmetric parts, singular vectors, WeightWatcher's SVD).
    pub(super) fn load(
        layer: &WeightLayer<'_>,
        index: usize,
        position: usize,
        options: &AnalyzeOptions,
    ) -> Result<Self> {
        let factored = match layer.tensor.low_rank() {
            Some(update) if layer.rows.is_none() && !reads_matrices(options) => update
                .stacks(layer.kind, layer.conv_mode)?
                .map(|(b, a)| Stack::Factors {
                    b,
                    a,
                    scale: update.scale,
                    rank: update.rank(),
                }),
            _ => None,
        };
        let blocks = layer
            .tensor
            .ggml_blocks()
            .filter(|_| layer.kind == LayerKind::Dense && layer.rows.is_none())
            .filter(|_| !keeps_stack(options))
            .map(|blocks| match layer.expert {
                Some(expert) => blocks.slice(expert),
                None => blocks.clone(),
            })
            .filter(|blocks| blocks.shape().len() == 2 && blocks.shape()[0] >= blocks.shape()[1]);
        let stack = match (factored, blocks) {
            (Some(factors), _) => factors,
            (None, Some(blocks)) => Stack::Blocks(blocks),
            (None, None) => {
                let weight = layer.weight()?;
                let size = weight.size();
                Stack::Matrices {
                    matrices: as_matrices(&weight, layer.kind, layer.conv_mode)?,
                    wide: size.len() == 2 && size[0] < size[1],
                }
            }
        };
        Ok(Self {
            index,
            position,
            meta: LayerMeta::of(layer, layer.tensor.dtype.to_string()),
            stack,
        })
    }
}

/// Whether an analysis reads more of a layer's matrices than the spectrum of their Gram
/// matrices: the stack again ([`keeps_stack`]) or singular vectors.
pub(crate) fn reads_matrices(options: &AnalyzeOptions) -> bool {
    keeps_stack(options) || options.rmt.vectors
}

/// Whether a layer's stack is read again once its Gram matrices are formed: for
/// WeightWatcher's SVD of rank-deficient layers, shuffles, symmetric parts and FARMS's windows
/// (cut from it beside the eigensolve). Otherwise it is freed as soon as they are formed.
pub(crate) fn keeps_stack(options: &AnalyzeOptions) -> bool {
    options.selection.ww_compat
        || options.randomize.is_some()
        || options.rmt.semicircle
        || options.farms.is_some()
}

/// The spectra of one layer; `None` when it is identically zero. Its `layer_id` is set by the
/// caller, once the layers before it are known to have spectra. The stack is freed once its
/// Gram matrices are formed unless a later step reads it ([`keeps_stack`]); `gram_formed` is
/// called then.
pub(super) fn layer_spectra(
    layer: LoadedLayer,
    device: tch::Device,
    options: &AnalyzeOptions,
    gram_formed: impl FnOnce(),
) -> Result<Option<LayerSpectra>> {
    let LoadedLayer {
        index,
        position,
        meta,
        stack,
    } = layer;
    let (name, shape) = (meta.name.clone(), meta.shape);
    let name = name.as_str();
    let mut wide = false;
    let (gram, kept) = match stack {
        Stack::Matrices {
            matrices,
            wide: stored_wide,
        } => {
            wide = stored_wide;
            let gram = spectrum::Gram::of(name, &matrices, device, options.precision)?;
            (gram, keeps_stack(options).then_some(matrices))
        }
        Stack::Blocks(blocks) => {
            let (n, m) = (blocks.shape()[0], blocks.shape()[1]);
            let band = |start: i64, count: i64| blocks.rows(name, start, count);
            let gram = spectrum::Gram::of_bands(name, (n, m), &band, device, options.precision)?;
            (gram, None)
        }
        Stack::Factors { b, a, scale, rank } => {
            let spectrum = spectrum::low_rank_spectrum(name, &b, &a, scale, device)?;
            gram_formed();
            return Ok(spectra_of(index, meta, spectrum, options, Some(rank)));
        }
    };
    gram_formed();
    let solve = move || -> Result<(spectrum::Spectrum, Option<SingularPairs>)> {
        Ok(if options.rmt.vectors {
            let (spectrum, decompositions) = gram.spectrum_with_vectors()?;
            let pairs = decompositions
                .into_iter()
                .flat_map(|d| d.squared_singular_values.into_iter().zip(d.vectors))
                .collect::<Vec<_>>();
            (spectrum, Some(pairs))
        } else {
            (gram.spectrum()?, None)
        })
    };
    let convolution = meta.kind != LayerKind::Dense && meta.conv_mode != ConvMode::Reshape;
    let ((mut spectrum, mut vectors), windows) = match (options.farms, &kept) {
        // FARMS's windows beside the whole spectrum's eigensolve, which holds one core.
        (Some(farms), Some(matrices)) => std::thread::scope(|scope| {
            let matrices = matrices.shallow_clone();
            let windows = scope.spawn(move || {
                spectrum::windows::farms_spectra(
                    name,
                    &matrices,
                    wide,
                    convolution,
                    farms,
                    device,
                    options.precision,
                )
            });
            let solved = solve();
            let windows = windows.join().unwrap_or_else(|_| {
                Err(Error::Panicked {
                    task: format!("forming FARMS's windows of {name}"),
                })
            });
            Ok::<_, Error>((solved?, Some(windows?)))
        })?,
        _ => (solve()?, None),
    };
    let ww_compat = options.selection.ww_compat;
    if let (true, Some(matrices)) = (ww_compat, &kept) {
        spectrum.resolve_round_off(name, matrices, device)?;
    }
    if meta.kind == LayerKind::Conv1d && meta.conv_mode == ConvMode::WeightWatcher {
        spectrum.keep_largest(shape.m);
        if let Some(pairs) = &mut vectors {
            pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
            pairs.truncate(shape.m);
        }
    }
    let Some(mut spectra) = spectra_of(index, meta, spectrum, options, None) else {
        return Ok(None);
    };
    let shuffled = match (options.randomize, &kept) {
        (Some(seed), Some(matrices)) => {
            let shuffled = spectrum::shuffled(matrices, seed.wrapping_add(position as u64))?;
            Some(
                spectrum::spectrum(name, &shuffled, device, options.precision)?
                    .squared_singular_values,
            )
        }
        _ => None,
    };
    let symmetric = match &kept {
        Some(matrices) if options.rmt.semicircle => {
            spectrum::symmetric_part_eigenvalues(name, matrices, device)?
        }
        _ => None,
    };
    spectra.shuffled = shuffled;
    spectra.vectors = vectors;
    spectra.symmetric = symmetric;
    spectra.windows = windows;
    Ok(Some(spectra))
}

/// The spectra of a layer from its spectrum, in the report's convention; `None` when it is
/// identically zero. `rank` is a low-rank update's, read from its factors.
fn spectra_of(
    layer_id: usize,
    meta: LayerMeta,
    spectrum: spectrum::Spectrum,
    options: &AnalyzeOptions,
    rank: Option<usize>,
) -> Option<LayerSpectra> {
    let scale = EsdScale::new(options.convention, meta.kind, meta.conv_mode, meta.shape);
    let eigenvalues = scale.report_all(&spectrum.squared_singular_values);
    let ww_compat = options.selection.ww_compat;
    let metrics = SpectralMetrics::new(&eigenvalues, &spectrum, &scale, meta.shape.n, ww_compat)?;
    Some(LayerSpectra {
        layer_id,
        meta,
        scale,
        eigenvalues,
        metrics,
        spectrum,
        rank,
        shuffled: None,
        vectors: None,
        symmetric: None,
        windows: None,
    })
}

/// Every statistic of one layer from its spectra: pure arithmetic, safe to run in parallel.
pub(super) fn layer_report(layer: LayerSpectra, options: &AnalyzeOptions) -> LayerReport {
    let LayerSpectra {
        layer_id,
        meta:
            LayerMeta {
                name,
                kind,
                shape,
                stored_shape,
                dtype,
                ..
            },
        scale,
        eigenvalues,
        metrics,
        spectrum,
        rank,
        shuffled,
        vectors,
        symmetric,
        windows,
    } = layer;
    let threshold = scale.fit_threshold();
    // The ESDs α is fitted to: the layer's own, or FARMS's pooled windows in its scale.
    let windows: Option<Vec<Vec<f64>>> =
        windows.map(|groups| groups.iter().map(|g| scale.report_all(g)).collect());
    let fitted: Vec<&[f64]> = match &windows {
        Some(groups) => groups.iter().map(Vec::as_slice).collect(),
        None => vec![eigenvalues.as_slice()],
    };
    let power_law = estimator::fit_groups(options.estimator.rule(), &fitted, &scale, options.tail)
        .map(|fit| PowerLawFit {
            farms_groups: windows.as_ref().map(Vec::len),
            ..fit
        });
    let above_threshold: Vec<f64> = eigenvalues
        .iter()
        .copied()
        .filter(|&l| l > threshold)
        .collect();
    let hill = hill_plateau(&above_threshold);
    // A low-rank update's ESD is r values and zeros: no bulk for the suite to read.
    let mut rmt = if rank.is_some() {
        Default::default()
    } else {
        rmt_report(
            LayerSpectrum {
                pooled: &spectrum.squared_singular_values,
                by_matrix: &spectrum.by_matrix,
                n: shape.n,
                m: shape.m,
                entry_variance: spectrum.entry_variance,
                scale,
            },
            &options.rmt,
            vectors,
            symmetric.as_deref(),
        )
    };
    if let Some(flag) = power_law
        .as_ref()
        .and_then(|fit| SmallSample::flag("alpha", fit.num_pl_spikes))
    {
        rmt.small_samples.insert(0, flag);
    }
    let randomization = shuffled.map(|shuffled| {
        let edge = rmt.marchenko_pastur.as_ref().map(|mp| mp.mp_lambda_plus);
        Randomization::new(&eigenvalues, &scale.report_all(&shuffled), edge)
    });
    let alternatives = power_law
        .as_ref()
        .filter(|_| fitted.len() == 1)
        .and_then(|fit| {
            let tail: Vec<f64> = fitted[0]
                .iter()
                .copied()
                .filter(|&l| l >= fit.xmin && l <= fit.xmax)
                .collect();
            alternatives::compare(&tail, fit.xmin, fit.alpha)
        });
    let alpha_metrics = power_law
        .as_ref()
        .map(|fit| AlphaMetrics::new(fit.alpha, &eigenvalues));
    let warning = QualityLabel::from_alpha(power_law.as_ref());
    let quality = QualityLabel::of(power_law.as_ref(), rmt.is_noise(options.rmt.level));
    let role = roles::role_of(&name);
    LayerReport {
        layer_id,
        block: role.and_then(|r| r.block),
        role: role.map(|r| r.part),
        expert: role.and_then(|r| r.expert),
        head: role.and_then(|r| r.head),
        name,
        kind,
        shape: stored_shape,
        dtype,
        n: shape.n,
        m: shape.m,
        q: shape.q(),
        rf: shape.slices,
        rank,
        metrics,
        power_law,
        alternatives,
        alpha_metrics,
        quality,
        warning,
        hill,
        randomization,
        rmt,
        eigenvalues: options.keep_eigenvalues.then_some(eigenvalues),
    }
}
