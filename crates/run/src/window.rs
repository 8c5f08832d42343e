//! A bounded, ordered parallel map over a block source.
//!
//! One reader thread pulls blocks from the source while fewer than `capacity` blocks are read
//! and not yet replayed; the pool's workers take the largest block ready (so a large block does
//! not start last), and the caller's thread emits the results in source order. A block's
//! memory is freed when its worker is done with it, so a large block still running does not
//! stop the others: later blocks are read and replayed while their results wait to be emitted
//! in order, up to [`RESULTS_PER_BLOCK`] times `capacity` of them. Memory holds at most
//! `capacity` blocks and that many results, whatever the source's length.

use std::{
    collections::BTreeMap,
    sync::{
        Condvar, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
};

use crate::{BlockSource, RunError, SourceBlock};

/// Results that may wait for an earlier block's, per block of `capacity`: a result is a
/// block's rows and findings, a small part of the block it came from.
pub const RESULTS_PER_BLOCK: usize = 8;

/// Blocks read and not yet replayed, per worker: a run's `capacity`. The workers take the
/// largest block ready, so the wider the window, the earlier the largest of the last blocks
/// starts and the closer together the workers finish. Scheduled by gas on the 42-block pevm
/// corpus with 2 workers, the last worker overruns an even split by 1.0% of the run with two
/// blocks per worker and by under 0.1% with four (as with every block sorted by size).
pub const BLOCKS_PER_WORKER: usize = 4;

struct State {
    ready: Vec<(usize, SourceBlock)>,
    /// Read and not yet replayed (ready or running).
    held: usize,
    /// Read and not yet emitted.
    unemitted: usize,
    done_reading: bool,
    stop: bool,
    read_error: Option<RunError>,
}

/// What the emitter says after each result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on.
    Continue,
    /// Read no more blocks; results in flight are still emitted.
    Stop,
}

/// Runs `work` on every block of `source` on the pool's threads and hands each result to `emit`
/// in source order. Stops reading when `emit` says so or `stop` is set; a source error stops
/// the reading too and is returned after every block read before it has been emitted.
pub(crate) fn map_ordered<O, W, E>(
    pool: &rayon::ThreadPool,
    capacity: usize,
    source: &mut dyn BlockSource,
    stop: Option<&AtomicBool>,
    work: W,
    mut emit: E,
) -> Result<(), RunError>
where
    O: Send,
    W: Fn(SourceBlock) -> O + Sync,
    E: FnMut(O) -> Flow,
{
    let capacity = capacity.max(1);
    let state = Mutex::new(State {
        ready: vec![],
        held: 0,
        unemitted: 0,
        done_reading: false,
        stop: false,
        read_error: None,
    });
    let cv = Condvar::new();
    let stopped = || stop.is_some_and(|s| s.load(Ordering::Relaxed));
    let lock = || state.lock().expect("window state is not poisoned");
    std::thread::scope(|s| {
        let (cv, work) = (&cv, &work);
        let reader = std::thread::Builder::new().name("read-blocks".into());
        reader
            .spawn_scoped(s, move || {
                let mut seq = 0;
                loop {
                    {
                        let mut st = lock();
                        while (st.held >= capacity
                            || st.unemitted >= capacity.saturating_mul(RESULTS_PER_BLOCK))
                            && !st.stop
                        {
                            st = cv.wait(st).expect("not poisoned");
                        }
                        if st.stop || stopped() {
                            st.done_reading = true;
                            cv.notify_all();
                            return;
                        }
                    }
                    let next = source.next_block();
                    let mut st = lock();
                    match next {
                        Some(Ok(b)) => {
                            st.ready.push((seq, b));
                            st.held += 1;
                            st.unemitted += 1;
                            seq += 1;
                        }
                        Some(Err(e)) => {
                            st.read_error = Some(e);
                            st.done_reading = true;
                        }
                        None => st.done_reading = true,
                    }
                    let done = st.done_reading;
                    cv.notify_all();
                    if done {
                        return;
                    }
                }
            })
            // as `s.spawn` does when the OS refuses a thread
            .expect("start the block reader thread");
        let (tx, rx) = mpsc::channel::<(usize, O)>();
        s.spawn(move || {
            pool.scope(|ps| {
                for _ in 0..pool.current_num_threads() {
                    let tx = tx.clone();
                    ps.spawn(move |_| {
                        loop {
                            let (seq, block) = {
                                let mut st = lock();
                                loop {
                                    if st.stop {
                                        return;
                                    }
                                    if let Some(k) = largest(&st.ready) {
                                        break st.ready.swap_remove(k);
                                    }
                                    if st.done_reading {
                                        return;
                                    }
                                    st = cv.wait(st).expect("not poisoned");
                                }
                            };
                            let out = work(block);
                            {
                                // the block is gone: room for the next one
                                let mut st = lock();
                                st.held -= 1;
                                cv.notify_all();
                            }
                            if tx.send((seq, out)).is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            drop(tx);
        });
        let mut pending: BTreeMap<usize, O> = BTreeMap::new();
        let mut next = 0;
        for (seq, out) in rx {
            pending.insert(seq, out);
            while let Some(out) = pending.remove(&next) {
                next += 1;
                let flow = emit(out);
                let mut st = lock();
                st.unemitted -= 1;
                if flow == Flow::Stop || stopped() {
                    // blocks read and not started are dropped; those running finish
                    st.stop = true;
                    st.held -= st.ready.len();
                    st.unemitted -= st.ready.len();
                    st.ready.clear();
                }
                cv.notify_all();
            }
        }
    });
    match state.into_inner().expect("not poisoned").read_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn largest(ready: &[(usize, SourceBlock)]) -> Option<usize> {
    ready
        .iter()
        .enumerate()
        .max_by_key(|(_, (seq, b))| (b.block.gas_used(), std::cmp::Reverse(*seq)))
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::AtomicUsize,
        time::{Duration, Instant},
    };

    use txshadow_corpus::{BlockRecord, ChainConfig};

    use super::*;
    use crate::MemorySource;

    /// Blocks `0..n`, block `n` using `gas(n)`.
    fn source(n: u64, gas: impl Fn(u64) -> u64) -> MemorySource {
        let chain = ChainConfig::mainnet();
        let blocks = (0..n)
            .map(|i| {
                let header = alloy_consensus::Header {
                    number: i,
                    gas_used: gas(i),
                    ..Default::default()
                };
                let b = BlockRecord::new(header.hash_slow(), header, vec![]);
                SourceBlock::new(b, &chain, Default::default())
            })
            .collect();
        MemorySource::new("test", chain, blocks)
    }

    #[test]
    fn a_slow_block_does_not_hold_back_the_others_and_memory_stays_bounded() {
        // block 0 is slow; while it runs, the other worker replays the rest (their results
        // wait to be emitted in order) instead of idling with a full window
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let (read, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let most_in_memory = AtomicUsize::new(0);
        let others_done_before_first = AtomicUsize::new(0);
        let first_done = AtomicBool::new(false);
        let mut src = source(12, |i| if i == 0 { 30_000_000 } else { 1 });
        let mut counted = Counted {
            inner: &mut src,
            read: &read,
            done: &done,
            most: &most_in_memory,
        };
        let t = Instant::now();
        let mut emitted = vec![];
        map_ordered(
            &pool,
            2,
            &mut counted,
            None,
            |b| {
                let n = b.block.number();
                if n == 0 {
                    std::thread::sleep(Duration::from_millis(300));
                    first_done.store(true, Ordering::SeqCst);
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                    if !first_done.load(Ordering::SeqCst) {
                        others_done_before_first.fetch_add(1, Ordering::SeqCst);
                    }
                }
                drop(b);
                done.fetch_add(1, Ordering::SeqCst);
                n
            },
            |n| {
                emitted.push(n);
                Flow::Continue
            },
        )
        .unwrap();
        assert_eq!(emitted, (0..12).collect::<Vec<_>>(), "in source order");
        // the 11 small blocks ran beside the slow one, not after it
        assert_eq!(others_done_before_first.load(Ordering::SeqCst), 11);
        assert!(t.elapsed() < Duration::from_secs(5));
        // blocks read and not yet replayed: at most the window's capacity (+ the one whose
        // worker just finished and is about to say so)
        let most = most_in_memory.load(Ordering::SeqCst);
        assert!(most <= 3, "{most} blocks in memory at once");
    }

    #[test]
    fn results_waiting_for_a_slow_block_are_bounded() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let (read, done, most) = Default::default();
        let n = 2 * 2 * RESULTS_PER_BLOCK as u64 + 20;
        let mut src = source(n, |i| if i == 0 { 30_000_000 } else { 1 });
        let mut counted = Counted {
            inner: &mut src,
            read: &read,
            done: &done,
            most: &most,
        };
        let read_during_slow = AtomicUsize::new(0);
        let mut emitted = 0;
        map_ordered(
            &pool,
            4,
            &mut counted,
            None,
            |b| {
                if b.block.number() == 0 {
                    std::thread::sleep(Duration::from_millis(300));
                    read_during_slow.store(read.load(Ordering::SeqCst), Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            },
            |()| {
                emitted += 1;
                Flow::Continue
            },
        )
        .unwrap();
        assert_eq!(emitted, n as usize);
        // while block 0 ran, the reader stopped at the results' cap, not at the corpus's end
        let r = read_during_slow.load(Ordering::SeqCst);
        assert!(r <= 4 * RESULTS_PER_BLOCK, "{r} read while block 0 ran");
        assert!(r > 4, "{r}: the window did not move past the slow block");
    }

    /// Counts reads and, at each read, the blocks read and not yet done with.
    struct Counted<'a> {
        inner: &'a mut MemorySource,
        read: &'a AtomicUsize,
        done: &'a AtomicUsize,
        most: &'a AtomicUsize,
    }

    impl BlockSource for Counted<'_> {
        fn chain(&self) -> &ChainConfig {
            self.inner.chain()
        }
        fn plan(&self) -> crate::SourcePlan {
            self.inner.plan()
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn next_block(&mut self) -> Option<Result<SourceBlock, RunError>> {
            let b = self.inner.next_block()?;
            let read = self.read.fetch_add(1, Ordering::SeqCst) + 1;
            let live = read - self.done.load(Ordering::SeqCst);
            self.most.fetch_max(live, Ordering::SeqCst);
            Some(b)
        }
    }
}
