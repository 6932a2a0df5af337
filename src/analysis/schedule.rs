//! The spectra of many layers at once within a memory budget: which layer starts when, and how
//! much each may hold.
use super::layer::{keeps_stack, layer_spectra, LayerSpectra, LoadedLayer};
use super::options::AnalyzeOptions;
use crate::error::Result;
use crate::model::layers::WeightLayer;
use crate::spectrum;

/// Whether a layer's outcome ends the run: an error does, except a spectrum outside float64's
/// range, which only skips that layer (the others are still analysed, whichever finishes
/// first).
fn stops_the_run(result: &Result<Option<LayerSpectra>>) -> bool {
    matches!(result, Err(err) if !matches!(err, crate::error::Error::OutOfRange { .. }))
}

/// The spectra of every selected layer, in order; `None` for layers not reached because an
/// earlier one failed.
///
/// On a GPU, one layer after another. On the CPU, whose eigensolves run on one thread (so that
/// the numbers do not depend on the thread count), up to one layer per libtorch thread at once,
/// each with its share of the threads. Layers are read here, the costliest first and then in
/// order ([`costliest_first`]), each only once it may start: while fewer layers than threads
/// are in flight and their working sets ([`LayerBytes`]) fit in [`in_flight_budget`] (one always
/// may). So at most one layer per thread is resident, and a model larger than memory streams.
pub(super) fn all_spectra(
    layers: &[WeightLayer<'_>],
    positions: &[usize],
    device: tch::Device,
    options: &AnalyzeOptions,
    on_layer: &mut impl FnMut(usize, usize, &str),
) -> Vec<Option<Result<Option<LayerSpectra>>>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Mutex};
    let total = layers.len();
    let threads = tch::get_num_threads().max(1);
    let workers = (threads as usize).min(total);
    let mut results: Vec<Option<Result<Option<LayerSpectra>>>> = (0..total).map(|_| None).collect();
    if device != tch::Device::Cpu || workers <= 1 {
        for (index, layer) in layers.iter().enumerate() {
            on_layer(index, total, &layer.name);
            let result = LoadedLayer::load(layer, index, positions[index], options)
                .and_then(|loaded| layer_spectra(loaded, device, options, || ()));
            let failed = stops_the_run(&result);
            results[index] = Some(result);
            if failed {
                break;
            }
        }
        return results;
    }
    let bytes: Vec<LayerBytes> = layers.iter().map(|l| LayerBytes::of(l, options)).collect();
    let budget = in_flight_budget(&bytes, workers);
    let in_flight = Admission::new(workers, budget);
    let failed = AtomicBool::new(false);
    let (jobs, queue) = mpsc::channel::<(LoadedLayer, LayerBytes)>();
    let queue = Mutex::new(queue);
    let (done, finished) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (queue, done, in_flight, failed) = (&queue, done.clone(), &in_flight, &failed);
            scope.spawn(move || {
                tch::set_num_threads((threads / workers as i32).max(1));
                loop {
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((loaded, bytes)) = job else { break };
                    let mut slot = Slot {
                        in_flight,
                        failed,
                        held: bytes.peak,
                        solving: bytes.solving,
                    };
                    let index = loaded.index;
                    let result = layer_spectra(loaded, device, options, || slot.shrink());
                    crate::environment::release_freed_memory();
                    failed.fetch_or(stops_the_run(&result), Ordering::Relaxed);
                    drop(slot);
                    if done.send((index, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        for (dispatched, index) in costliest_first(layers).into_iter().enumerate() {
            let (layer, bytes) = (&layers[index], bytes[index]);
            if !in_flight.admit(bytes.peak, &failed) {
                break;
            }
            on_layer(dispatched, total, &layer.name);
            let loaded = match LoadedLayer::load(layer, index, positions[index], options) {
                Ok(loaded) => loaded,
                Err(err) => {
                    results[index] = Some(Err(err));
                    break;
                }
            };
            if jobs.send((loaded, bytes)).is_err() {
                break;
            }
        }
        drop(jobs);
        for (index, result) in finished {
            results[index] = Some(result);
        }
    });
    tch::set_num_threads(threads);
    results
}

/// Bytes one layer holds while in flight on the CPU, an upper bound by phase. A layer already
/// in memory (a model passed in by a program) counts only what its spectrum adds.
#[derive(Debug, Clone, Copy)]
struct LayerBytes {
    /// The most it holds: until its Gram matrices are formed, the stack as read and the Gram
    /// product's working set ([`spectrum::WorkingSet`]).
    peak: f64,
    /// Once they are formed: the eigensolve's working set, and the stack too where a later step
    /// reads it again ([`keeps_stack`]; what that step needs beyond it is checked against the
    /// available memory when it runs) or FARMS's windows are cut from it beside the eigensolve
    /// (with their own working set).
    solving: f64,
}

impl LayerBytes {
    fn of(layer: &WeightLayer<'_>, options: &AnalyzeOptions) -> Self {
        let (slices, n, m) = layer.shape.sizes();
        let stored = if layer.tensor.is_in_memory() {
            0.0
        } else {
            slices * n * m * layer.tensor.dtype.loaded_size() as f64
        };
        let working = spectrum::WorkingSet::of(slices, n, m, options.rmt.vectors);
        // FARMS's windows are cut from the stack while the whole spectrum is solved.
        let windows = options
            .farms
            .map_or(0.0, |farms| spectrum::windows::working_bytes(n, m, farms));
        let solving = working.solving + if keeps_stack(options) { stored } else { 0.0 } + windows;
        Self {
            peak: (stored + working.forming).max(solving),
            solving,
        }
    }
}

/// Each worker may hold at least this much: small layers then never wait for memory.
const SMALL_LAYER_BYTES: f64 = (64 << 20) as f64;

/// The bytes the layers in flight may hold together: what the largest layer needs alone, or,
/// when that is more, one of the largest eigensolves per worker (each at least
/// [`SMALL_LAYER_BYTES`]), since each eigensolve runs on one core; and at most half the available
/// memory. A checkpoint of many similar layers (a transformer's) then peaks at libtorch's
/// footprint plus its largest layer's working set, as if its layers ran one after another,
/// while the cores stay busy: the largest layer's Gram product runs on all of them (its row
/// blocks are shared out) and its eigensolve beside smaller layers; two 4096-wide eigensolves
/// (AlexNet's, VGG19's) still run at once.
fn in_flight_budget(bytes: &[LayerBytes], workers: usize) -> f64 {
    let largest = |of: fn(&LayerBytes) -> f64| bytes.iter().map(of).fold(0.0, f64::max);
    let solves = workers as f64 * largest(|b| b.solving).max(SMALL_LAYER_BYTES);
    let available = crate::environment::available_memory_bytes().map_or(f64::INFINITY, |b| b / 2.0);
    largest(|b| b.peak).max(solves).min(available)
}

/// The order layers are started in: the costliest (Gram product and eigensolve) first, then
/// the others as stored. Its eigensolve, which runs on one thread, then overlaps the rest of
/// the model instead of being the last work left with the other cores idle (VGG19's 25088 ×
/// 4096 layer); only one layer moves, so the layers in flight beside it stay small.
fn costliest_first(layers: &[WeightLayer<'_>]) -> Vec<usize> {
    let cost = |layer: &WeightLayer<'_>| {
        let (slices, n, m) = layer.shape.sizes();
        // An eigensolve's flop runs several times slower than a product's.
        slices * m * m * (n + 4.0 * m)
    };
    let costliest = layers
        .iter()
        .enumerate()
        .max_by(|a, b| cost(a.1).total_cmp(&cost(b.1)))
        .map(|(index, _)| index);
    costliest
        .into_iter()
        .chain((0..layers.len()).filter(|&index| Some(index) != costliest))
        .collect()
}

/// The layers in flight and the bytes they hold, admitted against a worker count and a byte
/// budget: the one place that decides when a layer may start.
struct Admission {
    workers: usize,
    budget: f64,
    /// Layers in flight and the bytes they hold.
    busy: std::sync::Mutex<(usize, f64)>,
    wake: std::sync::Condvar,
}

impl Admission {
    fn new(workers: usize, budget: f64) -> Self {
        Self {
            workers,
            budget,
            busy: std::sync::Mutex::new((0, 0.0)),
            wake: std::sync::Condvar::new(),
        }
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, (usize, f64)> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a layer holding `bytes` may start, and counts it: while fewer than `workers`
    /// layers are in flight and their bytes with it stay within the budget, or when none is in
    /// flight (a layer larger than the budget runs alone). `false`, counting nothing, once
    /// `stop` is set.
    fn admit(&self, bytes: f64, stop: &std::sync::atomic::AtomicBool) -> bool {
        use std::sync::atomic::Ordering;
        let mut busy = self.busy();
        while !stop.load(Ordering::Relaxed)
            && (busy.0 >= self.workers || (busy.0 > 0 && busy.1 + bytes > self.budget))
        {
            busy = self.wake.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        busy.0 += 1;
        busy.1 += bytes;
        true
    }

    /// A layer in flight now holds `bytes` less.
    fn shrink(&self, bytes: f64) {
        self.busy().1 -= bytes;
        self.wake.notify_all();
    }

    /// A layer holding `bytes` is done.
    fn release(&self, bytes: f64) {
        {
            let mut busy = self.busy();
            busy.0 -= 1;
            busy.1 -= bytes;
        }
        self.wake.notify_all();
    }
}

/// A layer's place among those in flight (their count and working-set bytes), given back when
/// dropped: also when its worker panics, which then stops the reading of further layers, so
/// the reader never waits for a worker that is gone.
struct Slot<'a> {
    in_flight: &'a Admission,
    failed: &'a std::sync::atomic::AtomicBool,
    /// The bytes counted for the layer now.
    held: f64,
    /// What it holds once its Gram matrices are formed ([`LayerBytes::solving`]).
    solving: f64,
}

impl Slot<'_> {
    /// The layer's Gram matrices are formed: it holds only what its eigensolve needs from now.
    fn shrink(&mut self) {
        self.in_flight.shrink(self.held - self.solving);
        self.held = self.solving;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.in_flight.release(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_layer_larger_than_the_budget_runs_alone() {
        let admission = Admission::new(2, 10.0);
        let stop = AtomicBool::new(false);
        assert!(admission.admit(25.0, &stop));
        assert_eq!(*admission.busy(), (1, 25.0));
        admission.release(25.0);
        assert!(admission.admit(4.0, &stop) && admission.admit(6.0, &stop));
        assert_eq!(*admission.busy(), (2, 10.0));
    }

    #[test]
    fn a_stopped_admission_counts_nothing() {
        let admission = Admission::new(1, 10.0);
        let stop = AtomicBool::new(false);
        assert!(admission.admit(5.0, &stop));
        stop.store(true, Ordering::Relaxed);
        assert!(!admission.admit(1.0, &stop));
        assert_eq!(*admission.busy(), (1, 5.0));
    }

    #[test]
    fn shrinking_lets_a_waiting_layer_in() {
        let admission = Admission::new(4, 10.0);
        let stop = AtomicBool::new(false);
        assert!(admission.admit(8.0, &stop));
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| admission.admit(5.0, &stop));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(
                !waiting.is_finished(),
                "8 + 5 bytes exceed the budget of 10"
            );
            admission.shrink(6.0);
            assert!(waiting.join().unwrap());
        });
        assert_eq!(*admission.busy(), (2, 7.0));
    }

    #[test]
    fn the_budget_and_the_worker_count_are_never_exceeded() {
        let (workers, budget) = (3, 100.0);
        let admission = Admission::new(workers, budget);
        let stop = AtomicBool::new(false);
        let most = std::sync::Mutex::new((0usize, 0.0f64));
        let sizes: Vec<(f64, f64)> = (0..200u64)
            .map(|i| {
                let peak = ((i * 7919) % 97 + 1) as f64;
                (peak, peak * ((i % 3) as f64) / 4.0)
            })
            .collect();
        let (jobs, queue) = std::sync::mpsc::channel::<(f64, f64)>();
        let queue = std::sync::Mutex::new(queue);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let (queue, admission, stop, most) = (&queue, &admission, &stop, &most);
                scope.spawn(move || loop {
                    let job = queue.lock().unwrap().recv();
                    let Ok((peak, solving)) = job else { break };
                    let mut slot = Slot {
                        in_flight: admission,
                        failed: stop,
                        held: peak,
                        solving,
                    };
                    {
                        let busy = admission.busy();
                        let mut most = most.lock().unwrap();
                        assert!(busy.0 <= workers);
                        assert!(busy.0 == 1 || busy.1 <= budget + 1e-9, "{busy:?}");
                        most.0 = most.0.max(busy.0);
                        most.1 = most.1.max(busy.1);
                    }
                    std::thread::yield_now();
                    slot.shrink();
                    std::thread::yield_now();
                });
            }
            for &(peak, solving) in &sizes {
                assert!(admission.admit(peak, &stop));
                jobs.send((peak, solving)).unwrap();
            }
            drop(jobs);
        });
        assert_eq!(*admission.busy(), (0, 0.0));
        let most = most.into_inner().unwrap();
        assert!(most.0 >= 2, "layers ran side by side: {most:?}");
        assert!(most.1 <= budget, "{most:?}");
    }
}
