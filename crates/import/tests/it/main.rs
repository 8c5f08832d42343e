//! Integration tests of the importers, on the samples in the root `testdata/` and on the real
//! corpora in `../shared/corpora` (those tests are skipped with a message when that directory is
//! absent).

mod common;
mod ethtests;
mod geth;
mod hive;
mod keth;
mod keth_witness;
mod pevm;
mod samples;
mod state_roots;
mod zeth;
