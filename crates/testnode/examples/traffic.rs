//! Drives a fresh anvil with the test traffic: `cargo run -p txshadow-testnode --example traffic
//! -- <rpc-url> [rounds] [transfers]`. Prints the last block mined.

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: traffic <rpc-url> [rounds] [transfers]");
    let mut opts = txshadow_testnode::traffic::TrafficOptions::default();
    if let Some(r) = args.next() {
        opts.rounds = r.parse().expect("rounds");
    }
    if let Some(t) = args.next() {
        opts.transfers = t.parse().expect("transfers");
    }
    match txshadow_testnode::traffic::run(&url, &opts) {
        Ok(r) => {
            eprintln!("{} txs, by type {:?}", r.txs, r.by_type);
            println!("{}", r.last_block);
        }
        Err(e) => {
            eprintln!("traffic: {e}");
            std::process::exit(1);
        }
    }
}
