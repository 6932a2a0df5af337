//! Link set-up of the extension: a run path into the torch package installed beside it
//! (`site-packages/rmt_torch/` and `site-packages/torch/lib/`), so that it finds libtorch by
//! itself, before or without `import torch` (the `rmt-torch` console script never imports it),
//! as torch's own extension packages do. The wheel carries none of torch's libraries.
fn main() {
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../torch/lib");
}
