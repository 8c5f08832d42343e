//! One module per subcommand.

pub mod bench;
pub mod capture;
pub mod corpus;
pub mod follow;
pub mod import;
pub mod replay;
pub mod report;
pub mod tx;
