//! A fault-injecting HTTP proxy on loopback: forwards JSON-RPC requests to a node and, as its
//! plan says, answers with an error status, a 429, a JSON-RPC error, closes the connection
//! without an answer, cuts the answer short, or delays it. Bounded: one thread per client
//! connection, and the plan decides how many faults there are.

use std::{
    io::{BufReader, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::jsonrpc::{HttpMessage, read_message};

/// What the proxy does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward it.
    Pass,
    /// Answer with this HTTP status and no JSON.
    Status(u16),
    /// Answer 429 Too Many Requests with `Retry-After: 0`.
    TooManyRequests,
    /// Close the connection without an answer.
    Drop,
    /// Send half of the node's answer, then close.
    Cut,
    /// Wait, then forward.
    Delay(Duration),
    /// Answer with a JSON-RPC error (e.g. -32601 method not found).
    RpcError(i64, String),
}

type Decide = dyn Fn(usize, &[String]) -> Fault + Send + Sync;

/// Decides the fault of each request from its index (0-based, every request the proxy sees)
/// and its JSON-RPC method names.
#[derive(Clone)]
pub struct FaultPlan(Arc<Decide>);

impl std::fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultPlan")
    }
}

impl FaultPlan {
    /// Any rule.
    pub fn new(f: impl Fn(usize, &[String]) -> Fault + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Forward everything.
    pub fn none() -> Self {
        Self::new(|_, _| Fault::Pass)
    }

    /// Every `every`-th request fails, cycling through 500, 429, a dropped connection, a cut
    /// answer, 503 and a delay of `delay` (longer than the client's timeout, to make it time
    /// out); at most `limit` faults, then everything passes.
    pub fn transient(every: usize, limit: usize, delay: Duration) -> Self {
        let faults = Arc::new(AtomicUsize::new(0));
        Self::new(move |i, _| {
            if i % every != every - 1 {
                return Fault::Pass;
            }
            let k = faults.fetch_add(1, Ordering::SeqCst);
            if k >= limit {
                return Fault::Pass;
            }
            match k % 6 {
                0 => Fault::Status(500),
                1 => Fault::TooManyRequests,
                2 => Fault::Drop,
                3 => Fault::Cut,
                4 => Fault::Status(503),
                _ => Fault::Delay(delay),
            }
        })
    }

    /// The first `healthy` requests pass; every later one gets a 503.
    pub fn dead_after(healthy: usize) -> Self {
        Self::new(move |i, _| {
            if i < healthy {
                Fault::Pass
            } else {
                Fault::Status(503)
            }
        })
    }

    /// Requests calling one of `methods` get "method not found"; the rest pass.
    pub fn without_methods(methods: &[&str]) -> Self {
        let methods: Vec<String> = methods.iter().map(|s| s.to_string()).collect();
        Self::new(
            move |_, called| match called.iter().find(|m| methods.contains(m)) {
                Some(m) => Fault::RpcError(
                    -32601,
                    format!("the method {m} does not exist/is not available"),
                ),
                None => Fault::Pass,
            },
        )
    }

    /// Every request waits `delay` before it is forwarded (a slow node).
    pub fn slow(delay: Duration) -> Self {
        Self::new(move |_, _| Fault::Delay(delay))
    }
}

/// What the proxy saw.
#[derive(Debug, Default)]
struct Seen {
    /// Request targets (paths with queries).
    targets: Vec<String>,
    /// Authorization headers.
    authorizations: Vec<String>,
    faults: usize,
}

/// A running proxy; stops accepting on drop.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:<port>`).
    pub fn start(upstream: &str, plan: FaultPlan) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let accept = {
            let (stop, requests, seen) = (stop.clone(), requests.clone(), seen.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let ctx = Conn {
                        upstream: upstream.clone(),
                        plan: plan.clone(),
                        requests: requests.clone(),
                        seen: seen.clone(),
                        stop: stop.clone(),
                    };
                    std::thread::spawn(move || ctx.serve(conn));
                }
            })
        };
        Self {
            port,
            stop,
            requests,
            seen,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// Requests seen so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Faults injected so far.
    pub fn faults(&self) -> usize {
        self.seen.lock().expect("lock").faults
    }

    /// Every request target (path and query) seen.
    pub fn targets(&self) -> Vec<String> {
        self.seen.lock().expect("lock").targets.clone()
    }

    /// Every `Authorization` header seen.
    pub fn authorizations(&self) -> Vec<String> {
        self.seen.lock().expect("lock").authorizations.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

struct Conn {
    upstream: String,
    plan: FaultPlan,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

fn methods(body: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let one = |x: &serde_json::Value| x.get("method").and_then(|m| m.as_str()).map(str::to_string);
    match &v {
        serde_json::Value::Array(a) => a.iter().filter_map(one).collect(),
        x => one(x).into_iter().collect(),
    }
}

fn respond(w: &mut TcpStream, status: u16, extra: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

impl Conn {
    fn serve(self, conn: TcpStream) {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(300)));
        let Ok(mut w) = conn.try_clone() else { return };
        let mut r = BufReader::new(conn);
        while !self.stop.load(Ordering::SeqCst) {
            let req = match read_message(&mut r) {
                Ok(Some(m)) => m,
                _ => return,
            };
            let i = self.requests.fetch_add(1, Ordering::SeqCst);
            let called = methods(&req.body);
            {
                let mut s = self.seen.lock().expect("lock");
                s.targets.push(
                    req.start
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_string(),
                );
                if let Some(a) = req.header("authorization") {
                    s.authorizations.push(a.to_string());
                }
            }
            let fault = (self.plan.0)(i, &called);
            if fault != Fault::Pass && !matches!(fault, Fault::Delay(_)) {
                self.seen.lock().expect("lock").faults += 1;
            }
            let ok = match fault {
                Fault::Pass => self.forward(&req, &mut w, false),
                Fault::Delay(d) => {
                    std::thread::sleep(d);
                    self.forward(&req, &mut w, false)
                }
                Fault::Status(s) => respond(&mut w, s, "", b"upstream failure").is_ok(),
                Fault::TooManyRequests => {
                    respond(&mut w, 429, "Retry-After: 0\r\n", b"slow down").is_ok()
                }
                Fault::RpcError(code, msg) => {
                    let id = serde_json::from_slice::<serde_json::Value>(&req.body)
                        .ok()
                        .and_then(|v| v.get("id").cloned())
                        .unwrap_or(serde_json::Value::Null);
                    let body = serde_json::json!({"jsonrpc": "2.0", "id": id,
                        "error": {"code": code, "message": msg}});
                    respond(&mut w, 200, "", body.to_string().as_bytes()).is_ok()
                }
                Fault::Drop => {
                    let _ = w.shutdown(Shutdown::Both);
                    false
                }
                Fault::Cut => {
                    self.forward(&req, &mut w, true);
                    false
                }
            };
            if !ok {
                return;
            }
        }
    }

    /// Forwards to the node and relays its answer (half of it when `cut`).
    fn forward(&self, req: &HttpMessage, w: &mut TcpStream, cut: bool) -> bool {
        let answer = (|| -> std::io::Result<HttpMessage> {
            let mut up = TcpStream::connect(&self.upstream)?;
            let head = format!(
                "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                self.upstream,
                req.body.len()
            );
            up.write_all(head.as_bytes())?;
            up.write_all(&req.body)?;
            let mut r = BufReader::new(up);
            read_message(&mut r)?.ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
        })();
        let Ok(a) = answer else {
            let _ = respond(w, 502, "", b"node unreachable");
            return false;
        };
        let status: u16 = a
            .start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(502);
        if cut {
            let head = format!(
                "HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                a.body.len()
            );
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(&a.body[..a.body.len() / 2]);
            let _ = w.flush();
            let _ = w.shutdown(Shutdown::Both);
            return false;
        }
        respond(w, status, "", &a.body).is_ok()
    }
}
