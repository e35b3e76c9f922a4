//! The tasks that handle `send` messages, one per connection, tracked
//! main-wide. Each outlives its connection until the messages already
//! received are handled; [`Main::close`](crate::Main::close) waits for all
//! of them, those of renderers gone before it included, for a while, then
//! stops the rest.
//!
//! A handler may close main itself (a "quit" message): `close` must not
//! wait for the task running it, nor for one that closes main too. So a
//! `close` call marks the send task polling it, if any, as *closing*, and
//! tasks marked so count as done. The mark is taken at every poll, since a
//! handler may be polled first by its connection's task and then by its
//! send task.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{
    sync::Notify,
    task::{AbortHandle, Id},
    time::Instant,
};

/// Every connection's `send` task still running.
#[derive(Default)]
pub(crate) struct SendTasks {
    state: Mutex<State>,
    /// Notified whenever a task ends, or enters or leaves a `close`.
    changed: Notify,
}

#[derive(Default)]
struct State {
    next: u64,
    running: HashMap<u64, Running>,
}

struct Running {
    /// The task's id, once it has started.
    task: Option<Id>,
    /// Stops the task (what it runs is dropped at its next poll), once
    /// `spawn` has it.
    abort: Option<AbortHandle>,
    /// Asked to stop before `spawn` had the handle: it aborts the task.
    stop: bool,
    /// How many `close` calls it is waiting in.
    closing: usize,
}

impl SendTasks {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section is one map operation: never inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `work` (a connection's `send` loop) in a task of its own,
    /// tracked until it ends or is dropped.
    pub(crate) fn spawn(self: &Arc<Self>, work: impl Future<Output = ()> + Send + 'static) {
        let n = {
            let mut state = self.lock();
            let n = state.next;
            state.next += 1;
            let running = Running {
                task: None,
                abort: None,
                stop: false,
                closing: 0,
            };
            state.running.insert(n, running);
            n
        };
        // Made before the task, so that a task dropped unstarted (the
        // runtime shutting down) still leaves the table.
        let gone = Gone {
            tasks: Arc::clone(self),
            n,
        };
        // Not spawned under the table's lock: a runtime shutting down
        // drops the task, and `gone` with it, at once.
        let task = tokio::spawn(async move {
            let gone = gone;
            // Its own id, before it can call `close` (`spawn` may not have
            // the handle yet).
            if let Some(running) = gone.tasks.lock().running.get_mut(&n) {
                running.task = tokio::task::try_id();
            }
            work.await;
            drop(gone);
        })
        .abort_handle();
        let mut state = self.lock();
        if let Some(running) = state.running.get_mut(&n) {
            if running.stop {
                task.abort();
            }
            running.abort = Some(task);
        }
    }

    /// Whether every task has ended or waits in a `close`.
    fn settled(&self) -> bool {
        self.lock().running.values().all(|r| r.closing > 0)
    }

    /// Waits until [`settled`](Self::settled), or `deadline`; whether it
    /// came.
    async fn settled_by(&self, deadline: Instant) -> bool {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the table is read: a change in between
            // still wakes this wait.
            changed.as_mut().enable();
            if self.settled() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.settled();
            }
        }
    }

    /// Waits until every task has handled the messages it has (or waits
    /// in a `close`), until `deadline`; then stops the others, and waits
    /// up to `linger` for them to be dropped. Returns how many it stopped.
    pub(crate) async fn finish(&self, deadline: Instant, linger: Duration) -> usize {
        if self.settled_by(deadline).await {
            return 0;
        }
        let mut stopped = 0;
        for late in self.lock().running.values_mut().filter(|r| r.closing == 0) {
            match &late.abort {
                Some(task) => task.abort(),
                None => late.stop = true,
            }
            stopped += 1;
        }
        self.settled_by(Instant::now() + linger).await;
        stopped
    }

    /// Runs `wait` (a `close` call's), marking the `send` task that polls
    /// it, if any, as closing meanwhile (for as long as the future lives).
    pub(crate) async fn closing<F: Future>(&self, wait: F) -> F::Output {
        let mut mark = Mark {
            tasks: self,
            marked: None,
        };
        let mut wait = std::pin::pin!(wait);
        std::future::poll_fn(|cx| {
            mark.update();
            wait.as_mut().poll(cx)
        })
        .await
    }
}

/// Removes a task from the table as it ends.
struct Gone {
    tasks: Arc<SendTasks>,
    n: u64,
}

impl Drop for Gone {
    fn drop(&mut self) {
        self.tasks.lock().running.remove(&self.n);
        self.tasks.changed.notify_waiters();
    }
}

/// The `send` task a `close` call is polled by, marked as closing.
struct Mark<'a> {
    tasks: &'a SendTasks,
    marked: Option<u64>,
}

impl Mark<'_> {
    /// Marks the task polling now instead of the one marked before.
    fn update(&mut self) {
        let now = tokio::task::try_id().and_then(|id| {
            let state = self.tasks.lock();
            let mut running = state.running.iter();
            running.find(|(_, r)| r.task == Some(id)).map(|(n, _)| *n)
        });
        if now != self.marked {
            self.set(now);
        }
    }

    fn set(&mut self, now: Option<u64>) {
        {
            let mut state = self.tasks.lock();
            if let Some(r) = self.marked.and_then(|n| state.running.get_mut(&n)) {
                r.closing -= 1;
            }
            if let Some(r) = now.and_then(|n| state.running.get_mut(&n)) {
                r.closing += 1;
            }
        }
        self.marked = now;
        self.tasks.changed.notify_waiters();
    }
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        if self.marked.is_some() {
            self.set(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts each task's stop and end: what `finish` saw.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finish_waits_for_the_quick_and_stops_the_stuck() {
        let tasks = Arc::new(SendTasks::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = rx.await;
        });
        tasks.spawn(std::future::pending());
        let quick = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(());
        });
        let stopped = tasks
            .finish(
                Instant::now() + Duration::from_millis(300),
                Duration::from_secs(1),
            )
            .await;
        quick.await.unwrap();
        assert_eq!(stopped, 1);
        assert!(tasks.lock().running.is_empty());
    }

    /// Tasks stopped together are waited for together: `linger` once, not
    /// once each, when each takes long to drop (a handler whose drop
    /// blocks its thread).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn stopped_tasks_share_one_linger() {
        struct SlowDrop;
        impl Drop for SlowDrop {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(1500));
            }
        }
        let tasks = Arc::new(SendTasks::default());
        for _ in 0..3 {
            tasks.spawn(async {
                let _slow = SlowDrop;
                std::future::pending::<()>().await
            });
        }
        let started = std::time::Instant::now();
        let linger = Duration::from_millis(500);
        let stopped = tasks
            .finish(Instant::now() + Duration::from_millis(100), linger)
            .await;
        let took = started.elapsed();
        assert_eq!(stopped, 3);
        assert!(took < Duration::from_millis(1400), "{took:?}");
    }

    /// A task waiting in `closing` counts as done; once it leaves, it
    /// does not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_that_closes_counts_as_done() {
        let tasks = Arc::new(SendTasks::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (inside_tx, inside) = tokio::sync::oneshot::channel::<()>();
        let (left_tx, left) = tokio::sync::oneshot::channel::<()>();
        let t = Arc::clone(&tasks);
        tasks.spawn(async move {
            let _ = inside_tx.send(());
            t.closing(async move {
                let _ = rx.await;
            })
            .await;
            let _ = left_tx.send(());
            std::future::pending::<()>().await;
        });
        inside.await.unwrap();
        let far = Instant::now() + Duration::from_secs(30);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), tasks.settled_by(far))
                .await
                .is_ok_and(|settled| settled)
        );
        tx.send(()).unwrap();
        left.await.unwrap();
        let soon = Instant::now() + Duration::from_millis(100);
        assert!(!tasks.settled_by(soon).await, "it left `close`");
    }
}
