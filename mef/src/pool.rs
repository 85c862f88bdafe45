//! The connection thread pool: threads are reused across connections instead of one being
//! spawned (and torn down) per connection, which was about a quarter of the MEF's kernel time
//! per enrolment.
//!
//! Shape: `resident` threads are started up front and live until shutdown; when every thread is
//! busy, extra threads are started up to `limit` (the connection bound) and retire after
//! [`IDLE_RETIRE`] without work. A worker serves one connection until it closes or idles out,
//! so the pool must be able to hold as many connections as the server admits: with only the
//! resident threads, that many idle keep-alive clients (or slow ones, each allowed the full I/O
//! timeout per read) would starve everybody else. Sizing the ceiling to the connection bound
//! keeps the old guarantee (every admitted connection is served at once) while the steady state
//! under load spawns nothing.

use crate::MefError;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a thread beyond the resident ones waits for work before it ends.
pub(crate) const IDLE_RETIRE: Duration = Duration::from_secs(10);

/// A unit of work: serving one connection.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// A bounded pool of reusable threads.
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    wake: Condvar,
    name: String,
    resident: usize,
    limit: usize,
    retire_after: Duration,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads waiting for work (counted until they hold the lock again).
    idle: usize,
    /// Threads alive.
    threads: usize,
    /// Threads running a job (serving a connection).
    busy: usize,
    stopping: bool,
    handles: Vec<JoinHandle<()>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock, so a poisoned lock only means a panic in this module's
        // bookkeeping, which leaves the state consistent (every update is a single step).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Pool {
    /// Starts `resident` threads (at least 1) named `name`; up to `limit` threads in all
    /// (at least `resident`) run when every thread is busy.
    pub(crate) fn new(
        name: &str,
        resident: usize,
        limit: usize,
        retire_after: Duration,
    ) -> Result<Pool, MefError> {
        let resident = resident.max(1);
        let pool = Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                name: name.to_owned(),
                resident,
                limit: limit.max(resident),
                retire_after,
            }),
        };
        for _ in 0..resident {
            let mut st = pool.inner.lock();
            spawn(&pool.inner, &mut st).map_err(|e| MefError::Io {
                context: format!("starting the {name} threads"),
                source: e,
            })?;
        }
        Ok(pool)
    }

    /// Runs `job` on an idle thread, or on a new one while fewer than `limit` run. At the limit
    /// (or when the system refuses a thread) the job waits for the next free thread.
    pub(crate) fn execute(&self, job: Job) {
        let mut st = self.inner.lock();
        st.queue.push_back(job);
        if st.idle >= st.queue.len() || st.threads >= self.inner.limit {
            self.inner.wake.notify_one();
        } else if let Err(e) = spawn(&self.inner, &mut st) {
            log::error!("cannot start a {} thread: {e}", self.inner.name);
            self.inner.wake.notify_one();
        }
    }

    /// Lets queued and running jobs finish, then joins every thread.
    pub(crate) fn shutdown(&self) {
        let handles = {
            let mut st = self.inner.lock();
            st.stopping = true;
            std::mem::take(&mut st.handles)
        };
        self.inner.wake.notify_all();
        for h in handles {
            let _ = h.join();
        }
    }

    /// A read-only view for the metrics (crate::metrics).
    pub(crate) fn gauge(&self) -> PoolGauge {
        PoolGauge(self.inner.clone())
    }

    /// Threads alive (tests).
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.inner.lock().threads
    }
}

/// The saturation of a pool, as `/metrics` reports it: busy threads against the limit.
pub(crate) struct PoolGauge(Arc<Inner>);

impl PoolGauge {
    /// Threads serving a connection now.
    pub(crate) fn busy(&self) -> usize {
        self.0.lock().busy
    }

    /// Most threads the pool runs.
    pub(crate) fn limit(&self) -> usize {
        self.0.limit
    }

    /// Jobs (accepted connections) waiting for a thread.
    pub(crate) fn queued(&self) -> usize {
        self.0.lock().queue.len()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts one thread; the caller holds the lock.
fn spawn(inner: &Arc<Inner>, st: &mut State) -> std::io::Result<()> {
    st.handles.retain(|h| !h.is_finished());
    let worker_inner = inner.clone();
    let h = std::thread::Builder::new()
        .name(inner.name.clone())
        .spawn(move || worker(&worker_inner))?;
    st.threads += 1;
    st.handles.push(h);
    Ok(())
}

fn worker(inner: &Inner) {
    let mut st = inner.lock();
    loop {
        if let Some(job) = st.queue.pop_front() {
            st.busy += 1;
            drop(st);
            // The per-connection panic guard: a panic outside the request handlers (which have
            // their own, answering 500) ends that connection only; the job's captures, including
            // its connection-count guard, are dropped while unwinding. The thread stays.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                log::error!("a {} job panicked; connection dropped", inner.name);
            }
            st = inner.lock();
            st.busy -= 1;
            continue;
        }
        if st.stopping {
            break;
        }
        st.idle += 1;
        let (guard, timeout) = inner
            .wake
            .wait_timeout(st, inner.retire_after)
            .unwrap_or_else(|p| p.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() && !st.stopping && st.threads > inner.resident
        {
            break;
        }
    }
    st.threads -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    #[test]
    fn grows_to_the_limit_reuses_and_retires() {
        let pool = Pool::new("t", 1, 4, Duration::from_millis(50)).unwrap();
        assert_eq!(pool.threads(), 1);
        // Four jobs blocked at once need four threads (a pool of one would deadlock here).
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (started_tx, started_rx) = mpsc::channel();
        for _ in 0..4 {
            let (rx, tx) = (release_rx.clone(), started_tx.clone());
            pool.execute(Box::new(move || {
                tx.send(()).unwrap();
                rx.lock().unwrap().recv().unwrap();
            }));
        }
        for _ in 0..4 {
            started_rx.recv().unwrap();
        }
        assert_eq!(pool.threads(), 4);
        let gauge = pool.gauge();
        assert_eq!((gauge.busy(), gauge.limit(), gauge.queued()), (4, 4, 0));
        for _ in 0..4 {
            release_tx.send(()).unwrap();
        }
        // Extra threads retire; the resident one stays.
        while pool.threads() > 1 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let d = done.clone();
            pool.execute(Box::new(move || {
                d.fetch_add(1, Ordering::SeqCst);
            }));
        }
        pool.shutdown();
        assert_eq!(done.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn a_panicking_job_keeps_the_thread() {
        let pool = Pool::new("t", 1, 1, Duration::from_secs(10)).unwrap();
        pool.execute(Box::new(|| panic!("boom")));
        let (tx, rx) = mpsc::channel();
        pool.execute(Box::new(move || tx.send(7).unwrap()));
        assert_eq!(rx.recv().unwrap(), 7);
        assert_eq!(pool.threads(), 1);
    }
}
