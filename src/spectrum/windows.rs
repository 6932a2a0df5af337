//! FARMS's pooled window spectra (Hu et al. 2025, "Eigenspectrum analysis of neural networks
//! without aspect ratio bias"): α fitted to the ESD of a matrix's b × ⌊b·Q⌋ sub-matrices, all of
//! one shape whatever the matrix's, removes the bias that the aspect ratio puts in α.
//!
//! The windows are FARMS's `fixed_sampling`: on the matrix as stored (out × in), b = min(b, rows,
//! cols), and `grid` window positions per dimension at steps max(1, ⌊(rows − b)/(grid − 1)⌋),
//! the last ones clamped to the edge. A convolution is read as FARMS's estimator reads it: each
//! kernel position's matrix (rows ≥ cols), its rows cut into ⌊rows/cols⌋ blocks of r × c with
//! (r, c) = (⌊cols/Q⌋, cols) for Q > 1 and (cols, ⌊cols·Q⌋) otherwise; each block's ESD is
//! pooled over the kernel positions and fitted, and the layer's α is the mean over the blocks.
//!
//! Windows overlap, and a window's Gram matrix is a sub-block of a sum: the Gram matrix over the
//! smaller side (its lower triangle, which is all the eigensolver reads) is summed over the
//! chunks of the other side between window edges, each chunk's product formed once; each window's is then a principal sub-block. The windows' eigensolves
//! run in parallel on the CPU (each on one thread) and as one batch on a GPU.
use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use super::gram::{add_gram_lower, blas_readable, eigensolve_on_one_thread, non_finite_error};
use super::Precision;
use crate::error::Result;

/// FARMS's window parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FarmsWindows {
    /// Rows b of a window (fewer when the matrix has fewer).
    pub window: usize,
    /// Aspect ratio Q: a window has ⌊b·Q⌋ columns.
    pub q: f64,
    /// Window positions per dimension (k: k × k windows).
    pub grid: usize,
}

/// FARMS's values for language models (b = 2000, Q = 1, k = 10).
pub const DEFAULT_FARMS_WINDOWS: FarmsWindows = FarmsWindows {
    window: 2000,
    q: 1.0,
    grid: 10,
};

impl Default for FarmsWindows {
    fn default() -> Self {
        DEFAULT_FARMS_WINDOWS
    }
}

/// A window summed from more chunks than this is formed whole (see [`pooled_windows`]).
const MAX_SHARED_CHUNKS: usize = 4;

/// Bytes FARMS's windows of an n × m layer hold at most beyond the stack: the Gram matrices over
/// the smaller side (the chunks kept, at most [`MAX_SHARED_CHUNKS`], and their sum) and a window
/// being solved on each core.
pub(crate) fn working_bytes(n: f64, m: f64, windows: FarmsWindows) -> f64 {
    let side = n.min(m);
    let b = (windows.window as f64).min(side);
    let cores = rayon::current_num_threads() as f64;
    8.0 * ((MAX_SHARED_CHUNKS as f64 + 2.0) * side * side + 3.0 * cores * b * b)
}

/// Where the windows of one dimension start, and how long they are.
#[derive(Debug, Clone, PartialEq)]
struct Positions {
    starts: Vec<i64>,
    length: i64,
}

impl Positions {
    /// `fixed_sampling`'s positions of windows of `length` along a dimension of `extent`.
    fn along(extent: i64, length: i64, grid: usize) -> Self {
        let grid = grid as i64;
        let step = ((extent - length) / (grid - 1)).max(1);
        let count = grid.min(((extent - length) / step + 1).max(1));
        let starts = (0..count)
            .map(|i| (i * step).min(extent - length))
            .collect();
        Self { starts, length }
    }

    fn span(&self) -> (i64, i64) {
        let first = self.starts.iter().copied().min().unwrap_or(0);
        let last = self.starts.iter().copied().max().unwrap_or(0);
        (first, last + self.length)
    }
}

/// Squared singular values of FARMS's windows of one layer, in groups that are each fitted:
/// one group for a matrix, one per row block for a convolution. `matrices` is the layer's
/// stack [slices, N, M] (N ≥ M); `wide` says a matrix was stored M × N (out < in) and is read
/// back in that orientation. An error when an entry is not finite.
pub fn farms_spectra(
    name: &str,
    matrices: &Tensor,
    wide: bool,
    convolution: bool,
    windows: FarmsWindows,
    device: tch::Device,
    precision: Precision,
) -> Result<Vec<Vec<f64>>> {
    let _no_grad = tch::no_grad_guard();
    let kind = match precision {
        Precision::F64 => Kind::Double,
        Precision::Fast => Kind::Float,
    };
    // In the stored dtype: each chunk or block is converted to `kind` as it is multiplied.
    let stack = matrices.f_to_device(device)?;
    let groups = if convolution {
        row_blocks(&stack, windows.q, kind)?
    } else {
        let matrix = stack.f_get(0)?;
        let matrix = if wide { matrix.f_tr()? } else { matrix };
        vec![pooled_windows(&matrix, windows, kind)?]
    };
    if groups.iter().flatten().any(|value| !value.is_finite()) {
        return Err(non_finite_error(name, &[matrices])?);
    }
    Ok(groups)
}

/// The pooled window ESD of one matrix (rows × cols as stored), its products in `kind`.
fn pooled_windows(matrix: &Tensor, windows: FarmsWindows, kind: Kind) -> Result<Vec<f64>> {
    let (rows, cols) = (matrix.size()[0], matrix.size()[1]);
    let b = (windows.window as i64).min(rows).min(cols).max(1);
    let bc = ((b as f64 * windows.q) as i64).clamp(1, cols);
    let row_positions = Positions::along(rows, b, windows.grid);
    let col_positions = Positions::along(cols, bc, windows.grid);
    // The Gram matrix over the shorter side, summed over chunks of the longer one.
    let (gram_side, side_positions, sum_positions) = if rows <= cols {
        (matrix.shallow_clone(), &row_positions, &col_positions)
    } else {
        (matrix.f_tr()?, &col_positions, &row_positions)
    };
    let (side_first, side_end) = side_positions.span();
    let gram_side = gram_side.f_narrow(0, side_first, side_end - side_first)?;
    let keep = b.min(bc) as usize;
    let mut edges: Vec<i64> = sum_positions
        .starts
        .iter()
        .flat_map(|&start| [start, start + sum_positions.length])
        .collect();
    edges.sort_unstable();
    edges.dedup();
    let mut spans = sum_positions.starts.clone();
    spans.sort_unstable();
    spans.dedup();
    let pieces_of = |start: i64| -> Vec<(i64, i64)> {
        let end = start + sum_positions.length;
        edges
            .windows(2)
            .filter(|p| p[0] >= start && p[1] <= end)
            .map(|p| (p[0], p[1]))
            .collect()
    };
    // Windows that overlap so much that each would sum many chunks are formed whole instead:
    // the chunks kept at once stay few.
    let shared = spans
        .iter()
        .all(|&s| pieces_of(s).len() <= MAX_SHARED_CHUNKS);
    let mut chunks: BTreeMap<(i64, i64), Tensor> = BTreeMap::new();
    let mut pooled = Vec::with_capacity(keep * row_positions.starts.len() * spans.len());
    for start in spans {
        let pieces = if shared {
            pieces_of(start)
        } else {
            vec![(start, start + sum_positions.length)]
        };
        chunks.retain(|&(chunk_start, _), _| chunk_start >= start);
        let mut gram: Option<Tensor> = None;
        for piece in pieces {
            let product = match chunks.entry(piece) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    let chunk = gram_side.f_narrow(1, piece.0, piece.1 - piece.0)?;
                    let side = gram_side.size()[0];
                    let mut lower = Tensor::f_zeros([1, side, side], (kind, gram_side.device()))?;
                    add_gram_lower(
                        &mut lower,
                        &blas_readable(chunk.f_tr()?.f_unsqueeze(0)?, kind)?,
                    )?;
                    entry.insert(lower.f_squeeze_dim(0)?)
                }
            };
            gram = Some(match gram {
                Some(sum) => sum.f_add(product)?,
                None => product.shallow_clone(),
            });
        }
        let Some(gram) = gram else { continue };
        let blocks = side_positions
            .starts
            .iter()
            .map(|&s| {
                let offset = s - side_first;
                gram.f_narrow(0, offset, side_positions.length)?.f_narrow(
                    1,
                    offset,
                    side_positions.length,
                )
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        pooled.extend(solve_windows(blocks, keep)?);
    }
    pooled.sort_by(f64::total_cmp);
    Ok(pooled)
}

/// FARMS's convolution blocks: per row block, the pooled ESD of that block of every slice,
/// its products in `kind`.
fn row_blocks(stack: &Tensor, q: f64, kind: Kind) -> Result<Vec<Vec<f64>>> {
    let (rows, cols) = (stack.size()[1], stack.size()[2]);
    let (block_rows, block_cols) = if q > 1.0 {
        (((cols as f64 / q).floor() as i64).max(1), cols)
    } else {
        (cols, ((cols as f64 / (1.0 / q)).floor() as i64).max(1))
    };
    let keep = block_rows.min(block_cols) as usize;
    (0..rows / cols)
        .map(|block| {
            let windows = stack
                .f_narrow(1, block * block_rows, block_rows)?
                .f_narrow(2, 0, block_cols)?
                .f_to_kind(kind)?;
            let gram = if block_rows <= block_cols {
                windows.f_matmul(&windows.f_transpose(1, 2)?)?
            } else {
                windows.f_transpose(1, 2)?.f_matmul(&windows)?
            };
            let mut values = largest_eigenvalues(&gram, keep)?;
            values.sort_by(f64::total_cmp);
            Ok(values)
        })
        .collect()
}

/// The `keep` largest eigenvalues of each window's Gram matrix: on the CPU, the windows spread
/// over the rayon pool, each solved on one libtorch thread (so the numbers do not depend on the
/// thread count, and the cores are used all the same); on a GPU, as one batch.
fn solve_windows(blocks: Vec<Tensor>, keep: usize) -> Result<Vec<f64>> {
    use rayon::prelude::*;
    if blocks
        .first()
        .is_some_and(|b| b.device() != tch::Device::Cpu)
    {
        return largest_eigenvalues(&Tensor::f_stack(&blocks, 0)?, keep);
    }
    let solved: Vec<Vec<f64>> = blocks
        .into_par_iter()
        .map(|block| largest_eigenvalues(&block.f_unsqueeze(0)?, keep))
        .collect::<Result<_>>()?;
    Ok(solved.concat())
}

/// The `keep` largest eigenvalues of each symmetric matrix of a batch [k, s, s], as f64 (the
/// smallest of an s × s Gram matrix beyond the window's rank are zeros); NaN where a Gram
/// matrix is not finite, for the caller to name.
fn largest_eigenvalues(batch: &Tensor, keep: usize) -> Result<Vec<f64>> {
    if !bool::try_from(batch.f_isfinite()?.f_all()?)? {
        return Ok(vec![f64::NAN]);
    }
    let values = eigensolve_on_one_thread(batch, || Ok(batch.f_linalg_eigvalsh("L")?))?;
    let size = values.size()[1] as usize;
    let host = Vec::<f64>::try_from(
        values
            .f_to_kind(Kind::Double)?
            .f_clamp_min(0.0)?
            .f_flatten(0, -1)?
            .f_to_device(tch::Device::Cpu)?,
    )?;
    Ok(host
        .chunks(size)
        .flat_map(|row| row[size - keep.min(size)..].to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_fixed_sampling() {
        // 4096 rows, b = 2000, k = 10: steps of ⌊2096/9⌋ = 232, ten windows, none clamped.
        let rows = Positions::along(4096, 2000, 10);
        assert_eq!(rows.starts.len(), 10);
        assert_eq!(rows.starts[1], 232);
        assert_eq!(rows.starts[9], 2088);
        // A dimension as long as the window: one window at 0.
        assert_eq!(Positions::along(64, 64, 10).starts, [0]);
        // Steps of 1 when the slack is shorter than the grid; ends clamped.
        assert_eq!(Positions::along(13, 10, 10).starts, [0, 1, 2, 3]);
    }

    /// The shared chunk sums (and, where windows overlap heavily, the whole windows) give each
    /// window's own spectrum: the same values as an SVD of every window.
    #[test]
    fn window_grams_equal_each_windows_svd() {
        tch::manual_seed(3);
        // (rows, cols, b, Q, k): chunks shared (2 per window), then 16 per window (formed whole).
        for (rows, cols, b, q, grid) in [(30, 47, 12, 1.5, 4), (20, 100, 16, 4.0, 10)] {
            let matrix = Tensor::randn([rows, cols], (Kind::Double, tch::Device::Cpu));
            let windows = FarmsWindows {
                window: b as usize,
                q,
                grid,
            };
            let ours = pooled_windows(&matrix, windows, Kind::Double).unwrap();
            let bc = (b as f64 * q) as i64;
            let (row_starts, col_starts) = (
                Positions::along(rows, b, grid).starts,
                Positions::along(cols, bc, grid).starts,
            );
            let mut direct = Vec::new();
            for &r in &row_starts {
                for &c in &col_starts {
                    let window = matrix.narrow(0, r, b).narrow(1, c, bc);
                    let s = Vec::<f64>::try_from(window.svd(true, false).1).unwrap();
                    direct.extend(s.iter().map(|x| x * x));
                }
            }
            direct.sort_by(f64::total_cmp);
            assert_eq!(ours.len(), direct.len());
            for (a, b) in ours.iter().zip(&direct) {
                assert!((a - b).abs() < 1e-10 * direct.last().unwrap(), "{a} vs {b}");
            }
        }
    }
}
