//! CPU time, as the run's throughput and the bench count it.

/// CPU seconds this process has used so far, on all its threads.
pub fn process_cpu_seconds() -> f64 {
    #[cfg(unix)]
    return clock_seconds(libc::CLOCK_PROCESS_CPUTIME_ID);
    #[cfg(not(unix))]
    0.0
}

/// CPU seconds the calling thread has used so far.
pub(crate) fn thread_cpu_seconds() -> f64 {
    #[cfg(unix)]
    return clock_seconds(libc::CLOCK_THREAD_CPUTIME_ID);
    #[cfg(not(unix))]
    0.0
}

#[cfg(unix)]
fn clock_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec we own; the clock ids passed are constants every unix has
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc == 0 {
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    } else {
        0.0
    }
}
