//! Integration tests: one binary, fixtures generated once per run by scripts/make_fixtures.py.
mod checkpoints;
mod cli;
mod cuda;
mod directories;
mod examples;
mod fixtures;
mod heavy_tail;
mod hostile;
mod jacobian;
mod loading;
mod monitor;
mod plots;
mod rmt_suite;
mod spectra;
mod theory;
mod transformers;
mod zoo;
