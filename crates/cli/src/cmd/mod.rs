//! One module per subcommand.

pub mod corpus;
pub mod import;
pub mod replay;
pub mod tx;
