//! A bounded, ordered parallel map over a block source.
//!
//! One reader thread pulls blocks from the source while fewer than `capacity` blocks are read
//! and not yet emitted; the pool's workers take the largest block ready (so a large block does
//! not start last), and the caller's thread emits the results in source order. Memory holds at
//! most `capacity` blocks or their results, whatever the source's length.

use std::{
    collections::BTreeMap,
    sync::{
        Condvar, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
};

use crate::{BlockSource, RunError, SourceBlock};

struct State {
    ready: Vec<(usize, SourceBlock)>,
    /// Read and not yet emitted.
    held: usize,
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
        done_reading: false,
        stop: false,
        read_error: None,
    });
    let cv = Condvar::new();
    let stopped = || stop.is_some_and(|s| s.load(Ordering::Relaxed));
    let lock = || state.lock().expect("window state is not poisoned");
    std::thread::scope(|s| {
        let (cv, work) = (&cv, &work);
        s.spawn(move || {
            let mut seq = 0;
            loop {
                {
                    let mut st = lock();
                    while st.held >= capacity && !st.stop {
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
        });
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
                            if tx.send((seq, work(block))).is_err() {
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
                st.held -= 1;
                if flow == Flow::Stop || stopped() {
                    // blocks read and not started are dropped; those running finish
                    st.stop = true;
                    st.held -= st.ready.len();
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
