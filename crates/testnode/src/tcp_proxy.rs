//! A TCP proxy on loopback that can cut every connection through it: for faults below HTTP,
//! such as a WebSocket subscription whose connection drops. While it is down, it closes every
//! connection at once, and every new one as soon as it is accepted.

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

/// A running TCP proxy to one loopback port; stops accepting on drop.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    /// Both ends of every connection passed through, to cut them.
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl TcpProxy {
    /// Starts a proxy to `127.0.0.1:<upstream>`.
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("address").port();
        let proxy = Self {
            port,
            down: Arc::default(),
            stop: Arc::default(),
            accepted: Arc::default(),
            open: Arc::default(),
        };
        let (down, stop, accepted, open) = (
            proxy.down.clone(),
            proxy.stop.clone(),
            proxy.accepted.clone(),
            proxy.open.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                if down.load(Ordering::SeqCst) {
                    let _ = conn.shutdown(Shutdown::Both);
                    continue;
                }
                accepted.fetch_add(1, Ordering::SeqCst);
                let _ = conn.set_nonblocking(false);
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                pipe(conn, up, &open);
            }
        });
        proxy
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Connections passed through so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Down: every open connection is closed, new ones are closed at once. Up: it passes
    /// connections through again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for s in self.open.lock().expect("lock").drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.set_down(true);
    }
}

/// Copies bytes both ways between `a` and `b` on two threads; both ends are kept in `open`.
fn pipe(a: TcpStream, b: TcpStream, open: &Mutex<Vec<TcpStream>>) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    {
        let mut o = open.lock().expect("lock");
        o.extend([a.try_clone(), b.try_clone()].into_iter().flatten());
    }
    std::thread::spawn(move || copy(a, b2));
    std::thread::spawn(move || copy(b, a2));
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
