//! CLI tests: the real `txshadow` binary on the corpus shipped in `corpora/`.

mod bench;
mod candidate;
mod capture;
mod conformance;
mod follow;
mod kill_anywhere;
mod nightly;
mod node;
mod pushgateway;
mod replay;
mod state_roots;
mod triage;
