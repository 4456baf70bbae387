//! The indexer thread: catches the index up with the change feed whenever it is
//! poked, off the archive's write path, then releases the writer.
//!
//! Writes to the archive only poke it (a flag and a condition variable), so an
//! import never waits for indexing; pokes that arrive while it works fold into one
//! more round. On Linux the thread runs at a lower CPU priority (nice 10), and so do
//! the indexing and merging threads tantivy starts from it, so on a busy machine the
//! import keeps the cores and the index catches up after.

use super::SearchError;
use super::build::{ChangeFeed, Progress};
use super::index::SearchIndex;
use crate::archive::Archive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    poked: bool,
    busy: bool,
    stop: bool,
    progress: Option<Progress>,
    last_error: Option<String>,
    rounds: u64,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    cancel: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A thread that keeps a [`SearchIndex`] current.
pub struct Indexer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Indexer {
    /// Starts the thread; it catches up once right away (a full build when the index
    /// has no mark), then whenever [`Self::poke`]d.
    pub fn start(
        index: Arc<SearchIndex>,
        archive: Archive,
        feed: Arc<dyn ChangeFeed + Send + Sync>,
    ) -> std::io::Result<Indexer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                poked: true,
                ..State::default()
            }),
            cv: Condvar::new(),
            cancel: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("search-indexer".into())
            .spawn(move || run(&s, &index, &archive, &*feed))?;
        Ok(Indexer {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Says the archive changed: the thread catches up (once more, if it is busy).
    pub fn poke(&self) {
        self.shared.lock().poked = true;
        self.shared.cv.notify_all();
    }

    /// Waits until there is nothing to do (no poke pending, no round running);
    /// false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while st.poked || st.busy {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            st = self
                .shared
                .cv
                .wait_timeout(st, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Whether a round is running or pending.
    pub fn is_busy(&self) -> bool {
        let st = self.shared.lock();
        st.busy || st.poked
    }

    /// Progress of the running round, if any.
    pub fn progress(&self) -> Option<Progress> {
        let st = self.shared.lock();
        st.busy.then_some(st.progress).flatten()
    }

    /// The error that ended the last round, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.shared.lock().last_error.clone()
    }

    /// Rounds completed (successfully or not).
    pub fn rounds(&self) -> u64 {
        self.shared.lock().rounds
    }

    /// Stops at the next safe point (a running build is abandoned without a commit;
    /// updates stop between batches) and waits for the thread.
    pub fn stop(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
        self.shared.lock().stop = true;
        self.shared.cv.notify_all();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread
            && t.join().is_err()
        {
            tracing::warn!("the search indexer thread panicked");
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared, index: &SearchIndex, archive: &Archive, feed: &dyn ChangeFeed) {
    lower_priority();
    loop {
        {
            let mut st = shared.lock();
            while !st.poked && !st.stop {
                st = shared
                    .cv
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if st.stop {
                break;
            }
            st.poked = false;
            st.busy = true;
            st.progress = None;
        }
        let mut report = |p: Progress| shared.lock().progress = Some(p);
        let result = index.catch_up(archive, feed, &mut report, &shared.cancel);
        index.release_writer();
        trim_heap();
        let error = match result {
            Ok(r) => {
                if r.indexed.conversations + r.indexed.missing > 0 {
                    tracing::debug!(
                        "search index caught up to {}: {} conversations, {} messages",
                        r.mark,
                        r.indexed.conversations,
                        r.indexed.messages
                    );
                }
                None
            }
            Err(SearchError::Cancelled) => None,
            Err(e) => {
                tracing::warn!("search index not updated: {e}");
                Some(e.to_string())
            }
        };
        let mut st = shared.lock();
        st.busy = false;
        st.last_error = error;
        st.rounds += 1;
        drop(st);
        shared.cv.notify_all();
    }
}

/// Lowers this thread's CPU priority (and that of the threads it starts).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread, no pointers involved.
        let r = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 10)
        };
        if r != 0 {
            tracing::debug!(
                "cannot lower the search indexer's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Returns the writer's freed arenas to the system (glibc keeps freed heap pages
/// otherwise, and an idle daemon should be small).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}
