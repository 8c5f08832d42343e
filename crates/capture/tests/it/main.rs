//! Integration tests of capture from a real node (anvil, from npm, see package.json).

mod anvil_roots;
mod capture;
mod common;
