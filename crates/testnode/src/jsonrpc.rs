//! A small blocking JSON-RPC client over HTTP/1.1 on loopback, and the HTTP bits the proxy
//! shares with it.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    time::Duration,
};

use serde_json::{Value, json};

/// A JSON-RPC failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// The node answered with an error object.
    Node {
        /// Its code.
        code: i64,
        /// Its message.
        message: String,
    },
    /// Anything else (I/O, HTTP status, malformed answer).
    Transport(String),
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Node { code, message } => write!(f, "node error {code}: {message}"),
            Self::Transport(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RpcError {}

/// An HTTP message read from a stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpMessage {
    /// Request line or status line.
    pub(crate) start: String,
    /// Header lines, as (lower-case name, value).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpMessage {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 message (content-length, chunked, or until EOF). `Ok(None)` at a clean EOF.
pub(crate) fn read_message<R: BufRead>(r: &mut R) -> std::io::Result<Option<HttpMessage>> {
    let mut start = String::new();
    if r.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut m = HttpMessage {
        start: start.trim_end().to_string(),
        ..Default::default()
    };
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            m.headers
                .push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    if let Some(len) = m.header("content-length") {
        let len: usize = len.parse().unwrap_or(0);
        m.body.resize(len, 0);
        r.read_exact(&mut m.body)?;
    } else if m
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            m.body.extend_from_slice(&chunk[..size]);
        }
    } else if m.start.starts_with("HTTP/") {
        r.read_to_end(&mut m.body)?;
    }
    Ok(Some(m))
}

/// A blocking JSON-RPC client (one connection per call).
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    path: String,
    timeout: Duration,
}

impl Client {
    /// A client for `http://host:port[/path]`.
    pub fn new(url: &str) -> Self {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Self {
            host: host.to_string(),
            path: path.to_string(),
            timeout: Duration::from_secs(120),
        }
    }

    /// Calls `method` with `params` (a JSON array).
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp = self.post(&serde_json::to_vec(&body).expect("json"))?;
        let v: Value = serde_json::from_slice(&resp)
            .map_err(|e| RpcError::Transport(format!("{method}: bad JSON answer: {e}")))?;
        if let Some(e) = v.get("error") {
            return Err(RpcError::Node {
                code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    fn post(&self, body: &[u8]) -> Result<Vec<u8>, RpcError> {
        let t = |e: std::io::Error| RpcError::Transport(format!("{}: {e}", self.host));
        let mut s = TcpStream::connect(&self.host).map_err(t)?;
        s.set_read_timeout(Some(self.timeout)).map_err(t)?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            body.len()
        );
        s.write_all(head.as_bytes()).map_err(t)?;
        s.write_all(body).map_err(t)?;
        let mut r = BufReader::new(s);
        let m = read_message(&mut r)
            .map_err(t)?
            .ok_or_else(|| RpcError::Transport("empty answer".into()))?;
        let status: u16 = m
            .start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status != 200 {
            return Err(RpcError::Transport(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&m.body)
            )));
        }
        Ok(m.body)
    }
}
