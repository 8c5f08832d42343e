//! CLI tests: the real `txshadow` binary on the corpus shipped in `corpora/`.

mod candidate;
mod replay;
mod triage;
