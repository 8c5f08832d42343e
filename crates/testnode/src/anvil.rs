//! The anvil process.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::Client;

/// Where `npm install` at the repository root puts the pinned anvil (`TXSHADOW_ANVIL`
/// overrides it).
pub fn anvil_path() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("TXSHADOW_ANVIL") {
        return Ok(PathBuf::from(p));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    if p.is_file() {
        return Ok(p);
    }
    Err(format!(
        "anvil is not installed (expected {}): run `npm install` at the repository root \
         (scripts/test does it); package.json pins @foundry-rs/anvil",
        p.display()
    ))
}

/// The older anvil the node-engine tests compare with (`scripts/test` installs it from npm,
/// pinned, into `.tools/anvil-<version>`).
pub const OLDER_ANVIL: &str = "1.4.4";

/// Where `scripts/test` puts anvil `version` (`.tools/anvil-<version>` at the repository
/// root; `TXSHADOW_ANVIL_<version with _>` overrides it, e.g. `TXSHADOW_ANVIL_1_4_4`).
pub fn anvil_version_path(version: &str) -> Result<PathBuf, String> {
    let var = format!("TXSHADOW_ANVIL_{}", version.replace('.', "_"));
    if let Ok(p) = std::env::var(&var) {
        return Ok(PathBuf::from(p));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join(format!(
        ".tools/anvil-{version}/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    ));
    if p.is_file() {
        return Ok(p);
    }
    Err(format!(
        "anvil {version} is not installed (expected {}): run scripts/test, which installs \
         @foundry-rs/anvil@{version} from npm into .tools/anvil-{version}, or set {var}",
        p.display()
    ))
}

/// A free loopback port (the listener is closed again, so another process could take it; the
/// spawn retries).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running anvil on a loopback port, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    port: u16,
}

impl Anvil {
    /// Starts anvil with its defaults (chain id 31337, hardfork `latest`, 10 funded accounts).
    pub fn spawn() -> Result<Self, String> {
        Self::spawn_with(&[])
    }

    /// Starts anvil with extra arguments.
    pub fn spawn_with(args: &[&str]) -> Result<Self, String> {
        Self::spawn_bin(&anvil_path()?, args)
    }

    /// Starts anvil `version` (see [`anvil_version_path`]) with extra arguments.
    pub fn spawn_version(version: &str, args: &[&str]) -> Result<Self, String> {
        Self::spawn_bin(&anvil_version_path(version)?, args)
    }

    /// Starts the anvil binary `bin` with extra arguments.
    pub fn spawn_bin(bin: &std::path::Path, args: &[&str]) -> Result<Self, String> {
        let bin = bin.to_path_buf();
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
            let mut node = Self { child, port };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(status)) = node.child.try_wait() {
                    last = format!("anvil exited at start ({status})");
                    break;
                }
                if node
                    .client()
                    .call("eth_blockNumber", serde_json::json!([]))
                    .is_ok()
                {
                    return Ok(node);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if last.is_empty() {
                last = "anvil did not answer within 20 s".into();
            }
        }
        Err(last)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// A JSON-RPC client for this node.
    pub fn client(&self) -> Client {
        Client::new(&self.url())
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
