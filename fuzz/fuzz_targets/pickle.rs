//! Fuzzes the torch.save pickle reader: any input gives a value or an error, never a panic, a
//! hang or an abort. The reader is pure Rust, so it is compiled in directly, without libtorch.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/model/pickle.rs"]
#[allow(dead_code)]
mod pickle;

fuzz_target!(|data: &[u8]| {
    let _ = pickle::read(data);
});
