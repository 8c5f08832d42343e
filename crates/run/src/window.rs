//! A bounded, ordered parallel map over a block source.
//!
//! A reader thread pulls blocks from the source while fewer than `capacity` blocks are read
//! and not yet replayed; the pool's workers take the largest block ready (so a large block does
//! not start last), and the caller's thread emits the results in source order. A source that
//! loads blocks by position ([`LoadAt`]: a corpus) is read by one thread per
//! [`WORKERS_PER_READER`] workers, each taking the next position, so that loading keeps up
//! with many workers; their blocks are emitted in source order all the same. A block's
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

use crate::{BlockSource, LoadAt, RunError, SourceBlock, cpu::thread_cpu_seconds};

/// Results that may wait for an earlier block's, per block of `capacity`: a result is a
/// block's rows and findings, a small part of the block it came from.
pub const RESULTS_PER_BLOCK: usize = 8;

/// Blocks read and not yet replayed, per worker: a run's `capacity`. The workers take the
/// largest block ready, so the wider the window, the earlier the largest of the last blocks
/// starts and the closer together the workers finish. Scheduled by gas on the 42-block pevm
/// corpus with 2 workers, the last worker overruns an even split by 1.0% of the run with two
/// blocks per worker and by under 0.1% with four (as with every block sorted by size).
pub const BLOCKS_PER_WORKER: usize = 4;

/// Workers one reader thread is started for. On the 42-block pevm corpus the workers take 10
/// to 13 times the reader's CPU time with codes read in place and 4.5 to 5.5 times with codes
/// stored compressed (`txshadow bench`, `block_workers_per_reader`): one reader per four
/// workers keeps either fed, where a single reader would hold back more than 10 (or 4)
/// workers.
pub const WORKERS_PER_READER: usize = 4;

/// Reader threads for `jobs` workers: one per [`WORKERS_PER_READER`] (a source that can only
/// be read in order gets one whatever this says).
pub(crate) fn readers_for(jobs: usize) -> usize {
    jobs.div_ceil(WORKERS_PER_READER).max(1)
}

/// The time the reader threads spent loading blocks: wall and CPU seconds, summed over them.
#[derive(Debug, Default)]
pub(crate) struct LoadClock(Mutex<(f64, f64)>);

impl LoadClock {
    /// Runs `load` on this thread, adding its wall and CPU time.
    fn time<T>(&self, load: impl FnOnce() -> T) -> T {
        let (t, cpu) = (std::time::Instant::now(), thread_cpu_seconds());
        let out = load();
        let (wall, cpu) = (t.elapsed().as_secs_f64(), thread_cpu_seconds() - cpu);
        let mut g = self.0.lock().expect("load clock is not poisoned");
        g.0 += wall;
        g.1 += cpu;
        out
    }

    /// Wall and CPU seconds so far.
    pub(crate) fn totals(&self) -> (f64, f64) {
        *self.0.lock().expect("load clock is not poisoned")
    }
}

struct State {
    ready: Vec<(usize, SourceBlock)>,
    /// Read (or, by position, being read) and not yet replayed: loading, ready or running.
    held: usize,
    /// Read (or being read) and not yet emitted.
    unemitted: usize,
    done_reading: bool,
    stop: bool,
    read_error: Option<RunError>,
    /// Readers by position: the next position to load, the readers still reading, and the
    /// first position that failed to load (nothing from it on is replayed or emitted).
    claimed: usize,
    readers: usize,
    cut: Option<usize>,
}

/// What the emitter says after each result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on.
    Continue,
    /// Read no more blocks; results in flight are still emitted.
    Stop,
}

/// How a window reads its source.
pub(crate) struct Reading<'a> {
    /// Blocks read and not yet replayed, at most.
    pub(crate) capacity: usize,
    /// Reader threads, where the source loads by position.
    pub(crate) readers: usize,
    /// Where the readers' time goes.
    pub(crate) clock: &'a LoadClock,
}

/// Runs `work` on every block of `source` on the pool's threads and hands each result to `emit`
/// in source order. Stops reading when `emit` says so or `stop` is set; a source error stops
/// the reading too and is returned after every block before it has been emitted (with
/// several readers, blocks after it that were already read are dropped unreplayed, and those
/// already running are not emitted).
pub(crate) fn map_ordered<O, W, E>(
    pool: &rayon::ThreadPool,
    reading: Reading<'_>,
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
    let capacity = reading.capacity.max(1);
    let clock = reading.clock;
    let described = source.describe();
    let describe = described.as_str();
    let how = if reading.readers > 1 && source.by_position().is_some() {
        let source: &dyn BlockSource = source;
        Read::ByPosition(source.by_position().expect("checked just above"))
    } else {
        Read::InOrder(source)
    };
    let state = Mutex::new(State {
        ready: vec![],
        held: 0,
        unemitted: 0,
        done_reading: false,
        stop: false,
        read_error: None,
        claimed: 0,
        readers: match how {
            Read::ByPosition(_) => reading.readers,
            Read::InOrder(_) => 1,
        },
        cut: None,
    });
    let cv = Condvar::new();
    let stopped = || stop.is_some_and(|s| s.load(Ordering::Relaxed));
    let lock = || state.lock().expect("window state is not poisoned");
    let emit_panic = std::thread::scope(|s| {
        let (cv, work, state, stopped) = (&cv, &work, &state, &stopped);
        let reader = || std::thread::Builder::new().name("read-blocks".into());
        match how {
            Read::ByPosition(at) => {
                for _ in 0..reading.readers {
                    reader()
                        .spawn_scoped(s, move || {
                            read_by_position(
                                at,
                                Shared {
                                    state,
                                    cv,
                                    capacity,
                                    stopped,
                                    clock,
                                    describe,
                                },
                            );
                        })
                        // as `s.spawn` does when the OS refuses a thread
                        .expect("start a block reader thread");
                }
            }
            Read::InOrder(source) => {
                reader()
                    .spawn_scoped(s, move || {
                        let mut seq = 0;
                        loop {
                            {
                                let mut st = wait_for_room(cv, capacity, lock());
                                if st.stop || stopped() {
                                    st.done_reading = true;
                                    cv.notify_all();
                                    return;
                                }
                            }
                            let next = clock.time(|| {
                                guarded(seq, describe, || source.next_block())
                                    .unwrap_or_else(|e| Some(Err(e)))
                            });
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
            }
        }
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
                // a panic while emitting stops the window and is raised again once its threads
                // are done (they would otherwise wait for room in it forever)
                let flow = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| emit(out)));
                let mut st = lock();
                st.unemitted -= 1;
                if !matches!(flow, Ok(Flow::Continue)) || stopped() {
                    // blocks read and not started are dropped; those running finish
                    st.stop = true;
                    st.held -= st.ready.len();
                    st.unemitted -= st.ready.len();
                    st.ready.clear();
                }
                cv.notify_all();
                if let Err(panic) = flow {
                    // the results channel closes: the workers stop at their next result
                    return Some(panic);
                }
            }
        }
        None
    });
    if let Some(panic) = emit_panic {
        std::panic::resume_unwind(panic);
    }
    match state.into_inner().expect("not poisoned").read_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What the readers of a window share.
#[derive(Clone, Copy)]
struct Shared<'a> {
    state: &'a Mutex<State>,
    cv: &'a Condvar,
    capacity: usize,
    /// Whether the run's stop flag is set.
    stopped: &'a (dyn Fn() -> bool + Sync),
    clock: &'a LoadClock,
    /// The source, as errors name it.
    describe: &'a str,
}

/// How the readers read the source.
enum Read<'s> {
    /// Several readers, each loading the next position.
    ByPosition(&'s dyn LoadAt),
    /// One reader, block after block.
    InOrder(&'s mut dyn BlockSource),
}

/// Runs `load` (of block `i`, counted from 0 in source order), a panic in it becoming an error
/// that names the block: the run then ends there as for a damaged block, where its workers
/// would otherwise wait for a reader that is gone.
fn guarded<T>(
    i: usize,
    source: &(impl std::fmt::Display + ?Sized),
    load: impl FnOnce() -> T,
) -> Result<T, RunError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(load)).map_err(|_| {
        RunError::Input(format!(
            "reading block {} of {source} (in source order) panicked: a bug in txshadow, please \
             report it with the corpus; the blocks before it were replayed",
            i + 1
        ))
    })
}

/// Waits until the window has room for one more block read, or reading is over: stopped, or
/// cut at a failed load (after which results beyond the cut are never emitted and free no room).
fn wait_for_room<'g>(
    cv: &Condvar,
    capacity: usize,
    mut st: std::sync::MutexGuard<'g, State>,
) -> std::sync::MutexGuard<'g, State> {
    while (st.held >= capacity || st.unemitted >= capacity.saturating_mul(RESULTS_PER_BLOCK))
        && !st.stop
        && st.cut.is_none()
    {
        st = cv.wait(st).expect("not poisoned");
    }
    st
}

/// One of several readers of a source that loads by position: each takes the next position
/// (reserving its place in the window), loads it, and hands the block to the workers. A failed
/// load cuts the source there: no reader takes a later position, the earliest failure is the
/// one returned, and blocks after it that are waiting to be replayed are dropped.
fn read_by_position(at: &dyn LoadAt, w: Shared<'_>) {
    let lock = || w.state.lock().expect("window state is not poisoned");
    let count = at.count();
    loop {
        let i = {
            let mut st = wait_for_room(w.cv, w.capacity, lock());
            if st.stop || (w.stopped)() || st.claimed >= st.cut.unwrap_or(count) {
                st.readers -= 1;
                st.done_reading |= st.readers == 0;
                w.cv.notify_all();
                return;
            }
            let i = st.claimed;
            st.claimed += 1;
            st.held += 1;
            st.unemitted += 1;
            i
        };
        let loaded = w
            .clock
            .time(|| guarded(i, w.describe, || at.load_at(i)).and_then(|r| r));
        let mut st = lock();
        let wanted = !st.stop && st.cut.is_none_or(|c| i < c);
        match loaded {
            Ok(b) if wanted => st.ready.push((i, b)),
            Ok(_) => {
                st.held -= 1;
                st.unemitted -= 1;
            }
            Err(e) => {
                st.held -= 1;
                st.unemitted -= 1;
                if wanted {
                    st.cut = Some(i);
                    st.read_error = Some(e);
                    let before = st.ready.len();
                    st.ready.retain(|(seq, _)| *seq < i);
                    let dropped = before - st.ready.len();
                    st.held -= dropped;
                    st.unemitted -= dropped;
                }
            }
        }
        w.cv.notify_all();
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

    /// Block `i` using `gas`.
    fn block(i: u64, gas: u64) -> SourceBlock {
        let header = alloy_consensus::Header {
            number: i,
            gas_used: gas,
            ..Default::default()
        };
        let b = BlockRecord::new(header.hash_slow(), header, vec![]);
        SourceBlock::new(b, &ChainConfig::mainnet(), Default::default())
    }

    /// Blocks `0..n`, block `n` using `gas(n)`.
    fn source(n: u64, gas: impl Fn(u64) -> u64) -> MemorySource {
        let blocks = (0..n).map(|i| block(i, gas(i))).collect();
        MemorySource::new("test", ChainConfig::mainnet(), blocks)
    }

    /// A window of `capacity` read by `readers` (a leaked clock: a test's few bytes).
    fn reading(capacity: usize, readers: usize) -> Reading<'static> {
        Reading {
            capacity,
            readers,
            clock: Box::leak(Box::default()),
        }
    }

    /// Blocks `0..n` loaded by position, each load running `hook(i)` first (`Err`: that
    /// load fails with it); gas varies so the workers do not take them in order.
    struct ByPosition<F> {
        n: usize,
        hook: F,
        chain: ChainConfig,
        in_order: AtomicUsize,
    }

    impl<F: Fn(usize) -> Result<(), String> + Sync + Send> ByPosition<F> {
        fn new(n: usize, hook: F) -> Self {
            Self {
                n,
                hook,
                chain: ChainConfig::mainnet(),
                in_order: AtomicUsize::new(0),
            }
        }
    }

    impl<F: Fn(usize) -> Result<(), String> + Sync + Send> LoadAt for ByPosition<F> {
        fn count(&self) -> usize {
            self.n
        }
        fn load_at(&self, i: usize) -> Result<SourceBlock, RunError> {
            (self.hook)(i).map_err(RunError::Input)?;
            Ok(block(i as u64, (i as u64 * 7919) % 101))
        }
    }

    impl<F: Fn(usize) -> Result<(), String> + Sync + Send> BlockSource for ByPosition<F> {
        fn chain(&self) -> &ChainConfig {
            &self.chain
        }
        fn plan(&self) -> crate::SourcePlan {
            crate::SourcePlan::default()
        }
        fn describe(&self) -> String {
            "by position".into()
        }
        fn next_block(&mut self) -> Option<Result<SourceBlock, RunError>> {
            let i = self.in_order.fetch_add(1, Ordering::SeqCst);
            (i < self.n).then(|| LoadAt::load_at(&*self, i))
        }
        fn by_position(&self) -> Option<&dyn LoadAt> {
            Some(self)
        }
    }

    /// Waits (10 s at most, then fails the test) until `ready()` holds, rechecking whenever
    /// `cv` is notified.
    fn wait_until(m: &Mutex<()>, cv: &Condvar, what: &str, ready: impl Fn() -> bool) {
        let mut g = m.lock().unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while !ready() {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "waited 10 s for {what}");
            g = cv
                .wait_timeout(g, left.min(Duration::from_millis(50)))
                .unwrap()
                .0;
        }
    }

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    }

    /// The block numbers a window of two workers emits from `src` (stopping after block
    /// `stop_after`, if given), and how it ended.
    fn numbers(
        src: &mut dyn BlockSource,
        reading: Reading<'_>,
        stop_after: Option<u64>,
    ) -> (Vec<u64>, Result<(), RunError>) {
        let mut emitted = vec![];
        let end = map_ordered(
            &pool(2),
            reading,
            src,
            None,
            |b| b.block.number(),
            |n| {
                emitted.push(n);
                if Some(n) == stop_after {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            },
        );
        (emitted, end)
    }

    #[test]
    fn several_readers_load_at_once_and_results_come_in_source_order() {
        // the first load waits until a second one has started beside it: with one reader it
        // would wait in vain
        let (m, cv) = (Mutex::new(()), Condvar::new());
        let (in_flight, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let mut src = ByPosition::new(40, |i| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            cv.notify_all();
            if i == 0 {
                wait_until(&m, &cv, "a second load beside the first", || {
                    most.load(Ordering::SeqCst) >= 2
                });
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
        let clock = LoadClock::default();
        let reading = Reading {
            capacity: 8,
            readers: 3,
            clock: &clock,
        };
        let (emitted, end) = numbers(&mut src, reading, None);
        end.unwrap();
        assert_eq!(emitted, (0..40).collect::<Vec<_>>(), "in source order");
        assert!(most.load(Ordering::SeqCst) >= 2);
        // loaded by position: the in-order reading was not used
        assert_eq!(src.in_order.load(Ordering::SeqCst), 0);
        // every load was timed (the waiting first one at least)
        assert!(clock.totals().0 > 0.0);
    }

    #[test]
    fn one_reader_reads_in_order_even_where_the_source_loads_by_position() {
        let mut src = ByPosition::new(5, |_| Ok(()));
        let (emitted, end) = numbers(&mut src, reading(4, 1), None);
        end.unwrap();
        assert_eq!(emitted, (0..5).collect::<Vec<_>>());
        // 5 blocks and the end
        assert_eq!(src.in_order.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn with_several_readers_the_earliest_failed_load_ends_the_run_after_every_block_before_it() {
        // block 12 fails first, then block 7 (its load waits for 12's failure), while block 5
        // is still loading (it waits for 7's): 0..=6 are emitted, 5 included, nothing after,
        // and the error returned is block 7's
        let (m, cv) = (Mutex::new(()), Condvar::new());
        let (failed_12, failed_7) = (AtomicBool::new(false), AtomicBool::new(false));
        let mut src = ByPosition::new(30, |i| {
            let r = match i {
                5 => {
                    wait_until(&m, &cv, "block 7's failure", || {
                        failed_7.load(Ordering::SeqCst)
                    });
                    Ok(())
                }
                7 => {
                    wait_until(&m, &cv, "block 12's failure", || {
                        failed_12.load(Ordering::SeqCst)
                    });
                    failed_7.store(true, Ordering::SeqCst);
                    Err("block 7 is damaged".to_string())
                }
                12 => {
                    failed_12.store(true, Ordering::SeqCst);
                    Err("block 12 is damaged".to_string())
                }
                _ => Ok(()),
            };
            cv.notify_all();
            r
        });
        let (emitted, end) = numbers(&mut src, reading(16, 3), None);
        let err = end.unwrap_err();
        assert_eq!(emitted, (0..7).collect::<Vec<_>>());
        assert!(err.to_string().contains("block 7 is damaged"), "{err}");
    }

    #[test]
    fn a_reader_that_panics_ends_the_run_after_the_blocks_before_it() {
        // in order (one reader) and by position (three): the 6th block's load panics; the
        // run ends with an error naming it instead of its workers waiting for the reader
        for readers in [1, 3] {
            let mut src = ByPosition::new(20, |i| {
                assert!(i != 5, "a loader bug");
                Ok(())
            });
            let (emitted, end) = numbers(&mut src, reading(4, readers), None);
            let err = end.unwrap_err().to_string();
            assert!(
                err.contains("reading block 6 of by position (in source order) panicked"),
                "{readers} readers: {err}"
            );
            assert_eq!(emitted, (0..5).collect::<Vec<_>>(), "{readers} readers");
        }
    }

    #[test]
    fn a_panic_while_emitting_is_raised_once_the_window_is_done() {
        // the emitter panics at the 3rd result of a long source: the panic comes back to the
        // caller (instead of the readers and workers waiting for room forever), for either way
        // of reading
        for readers in [1, 3] {
            let mut src = ByPosition::new(1000, |_| Ok(()));
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                map_ordered(
                    &pool(2),
                    reading(4, readers),
                    &mut src,
                    None,
                    |b| b.block.number(),
                    |n| {
                        assert!(n != 2, "a report writer bug");
                        Flow::Continue
                    },
                )
            }));
            let panic = caught.unwrap_err();
            let text = panic.downcast_ref::<&str>().copied();
            assert_eq!(text, Some("a report writer bug"), "{readers} readers");
        }
    }

    #[test]
    fn with_several_readers_a_stop_ends_the_reading() {
        let loads = AtomicUsize::new(0);
        let mut src = ByPosition::new(1000, |_| {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let (emitted, end) = numbers(&mut src, reading(4, 3), Some(2));
        end.unwrap();
        // results in flight at the stop are still emitted, in order, and no more are read:
        // at most the window's results beyond the 3 emitted before it
        let n = loads.load(Ordering::SeqCst);
        assert!(n <= 3 + 4 * RESULTS_PER_BLOCK, "{n} blocks loaded");
        assert!(emitted.len() >= 3 && emitted.len() <= n, "{emitted:?}");
        assert_eq!(emitted, (0..emitted.len() as u64).collect::<Vec<_>>());
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
            reading(2, 1),
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
            reading(4, 1),
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
