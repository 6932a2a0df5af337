//! Fuzzes the GGUF reader through the library: any input gives a model or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rmt_torch_fuzz::read_model(data, "gguf");
});
