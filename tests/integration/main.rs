//! Integration tests: one binary, fixtures generated once per run by scripts/make_fixtures.py.
mod cli;
mod fixtures;
mod loading;
mod spectra;
