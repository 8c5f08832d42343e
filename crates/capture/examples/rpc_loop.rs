//! The node-bound limit of a capture: the same JSON-RPC calls `txshadow capture` makes for a
//! range of blocks, in a tight loop with the same concurrency, answers discarded unparsed.
//!
//! ```sh
//! cargo run --release -p txshadow-capture --example rpc_loop -- <rpc-url> <A..B> [concurrency]
//! ```
//!
//! Per block: its header (`eth_getBlockByNumber(n, false)`, batched 64 at a time, as the capture
//! plans), `eth_getBlockByHash(h, true)`, `eth_getBlockReceipts(h)`, `debug_traceBlockByNumber`
//! with the prestate tracer and with its diff mode, one batch reading the system contracts at
//! the parent block, and (for blocks within 64 of the head, which a reorg could still replace)
//! `eth_getBlockByNumber(n, false)` again after the traces. Prints blocks/s.

use std::time::Instant;

use futures_util::StreamExt;
use serde_json::{Value, json, value::RawValue};
use txshadow_capture::rpc::BlockRange;
use txshadow_rpc::{ClientConfig, Rpc, RpcUrl};

const SYSTEM: [(&str, &[u64]); 4] = [
    ("0x000F3df6D732807Ef1319fB7B8bB8522d0Beac02", &[0, 8191]),
    ("0x0000F90827F1C53a10cb7A02335B175320002935", &[0]),
    ("0x00000961Ef480Eb55e80D19ad83579A64c007002", &[0, 1, 2, 3]),
    ("0x0000BBdDc7CE488642fb579F8B00f3a590007251", &[0, 1, 2, 3]),
];

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: rpc_loop <rpc-url> <A..B> [concurrency]");
    let range: BlockRange = args.next().expect("a block range").parse().expect("A..B");
    let concurrency: usize = args.next().map_or(4, |c| c.parse().expect("concurrency"));
    let BlockRange::Span { from, to } = range else {
        panic!("give a range A..B")
    };
    let rpc = Rpc::new(
        RpcUrl::parse(&url).expect("url"),
        ClientConfig {
            concurrency,
            ..Default::default()
        },
    )
    .expect("client");
    let t = Instant::now();
    let head: Value = rpc.call("eth_blockNumber", (), None).await.expect("head");
    let head = u64::from_str_radix(head.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)
        .expect("hex");
    // the plan: headers
    let calls: Vec<_> = (from..=to)
        .map(|n| ("eth_getBlockByNumber", json!([hex(n), false])))
        .collect();
    let mut headers = vec![];
    for chunk in calls.chunks(64) {
        headers.extend(rpc.call_many(chunk, None).await.expect("headers"));
    }
    let hashes: Vec<(u64, Value, Value)> = (from..=to)
        .zip(headers)
        .map(|(n, h)| (n, h["hash"].clone(), h["parentHash"].clone()))
        .collect();
    // the blocks
    let rpc = &rpc;
    let mut s = futures_util::stream::iter(hashes)
        .map(|(n, hash, parent)| async move {
            let at = json!({ "blockHash": parent });
            let mut sys = vec![];
            for (a, slots) in SYSTEM {
                sys.push(("eth_getBalance", json!([a, at])));
                sys.push(("eth_getTransactionCount", json!([a, at])));
                sys.push(("eth_getCode", json!([a, at])));
                for k in slots {
                    sys.push(("eth_getStorageAt", json!([a, hex(*k), at])));
                }
            }
            let b =
                rpc.call::<_, Box<RawValue>>("eth_getBlockByHash", (hash.clone(), true), Some(n));
            let r = rpc.call::<_, Box<RawValue>>("eth_getBlockReceipts", (hash.clone(),), Some(n));
            let p = rpc.call::<_, Box<RawValue>>(
                "debug_traceBlockByNumber",
                (hex(n), json!({"tracer": "prestateTracer"})),
                Some(n),
            );
            let d = rpc.call::<_, Box<RawValue>>(
                "debug_traceBlockByNumber",
                (
                    hex(n),
                    json!({"tracer": "prestateTracer", "tracerConfig": {"diffMode": true}}),
                ),
                Some(n),
            );
            let o = rpc.call_many(&sys, Some(n));
            let (b, r, p, d, o) = tokio::join!(b, r, p, d, o);
            let again = if n + 64 >= head {
                rpc.call::<_, Box<RawValue>>("eth_getBlockByNumber", (hex(n), false), Some(n))
                    .await
                    .map(|_| ())
            } else {
                Ok(())
            };
            b.and(r)
                .and(p)
                .and(d)
                .and(o.map(|_| ()))
                .and(again)
                .map(|_| ())
        })
        .buffer_unordered(concurrency);
    let mut done = 0u64;
    while let Some(r) = s.next().await {
        r.expect("call");
        done += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{done} blocks in {secs:.2} s: {:.2} blocks/s (tight loop of the capture's calls, concurrency {concurrency})",
        done as f64 / secs
    );
}
