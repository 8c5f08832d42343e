//! Integration tests of the importers and capture, on the real corpora in `../shared/corpora`
//! (skipped with a message when that directory is absent).

mod common;
mod geth;
mod hive;
mod keth;
mod pevm;
mod samples;
mod zeth;
