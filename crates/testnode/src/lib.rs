//! A real node for txshadow's tests.
//!
//! [`Anvil`] starts the anvil binary the repository pins in `package.json` (run `npm install` at
//! the repository root) on a free loopback port and kills it on drop; [`traffic`] drives it with
//! realistic blocks (every tx type, an ERC-20, CREATE/CREATE2, reverts, out-of-gas, logs, storage
//! writes and clears, block-context reads, blobs, EIP-7702 delegations); [`FaultProxy`] sits in
//! front of it and injects errors, 429s, dropped connections and delays; [`TcpProxy`] cuts
//! every connection below HTTP (a WebSocket that drops).
//!
//! ```no_run
//! let node = txshadow_testnode::Anvil::spawn().expect("anvil");
//! let report = txshadow_testnode::traffic::run(&node.url(), &Default::default()).unwrap();
//! println!("blocks 1..={} with {} txs", report.last_block, report.txs);
//! ```

mod anvil;
mod jsonrpc;
mod proxy;
mod tcp_proxy;
pub mod traffic;
mod wallet;

pub use anvil::{Anvil, OLDER_ANVIL, anvil_path, anvil_version_path};
pub use jsonrpc::{Client, RpcError};
pub use proxy::{Fault, FaultPlan, FaultProxy};
pub use tcp_proxy::TcpProxy;
pub use wallet::{DEV_KEYS, Wallet};
