//! Whether this process may run on more than one CPU, for deciding how
//! main writes the replies to a burst of requests (see
//! [`MainBuilder::flush_replies_every`](crate::MainBuilder::flush_replies_every))
//! and whether the low-latency option spins (`spin.rs`).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};

/// How long an answer is kept before it is checked again: the CPUs a
/// process may use can change while it runs (`taskset`, cgroups), and
/// checking costs tens of microseconds (a few system calls and files).
const RECHECK: Duration = Duration::from_millis(100);

/// The last answer: when it was found (milliseconds since [`epoch`], plus
/// one, so that zero means "never"), shifted left by one, with the answer
/// in the lowest bit.
static LAST: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Whether this process may run on more than one CPU (its affinity mask
/// and CPU quota allow it), checked at most every [`RECHECK`].
pub(crate) fn more_than_one() -> bool {
    let now = epoch().elapsed().as_millis() as u64;
    remembered(&LAST, now, || {
        std::thread::available_parallelism().is_ok_and(|cpus| cpus.get() > 1)
    })
}

/// The answer kept in `last` if it was found less than [`RECHECK`] before
/// `now` (in milliseconds); otherwise `check`'s, kept in `last`.
fn remembered(last: &AtomicU64, now: u64, check: impl FnOnce() -> bool) -> bool {
    let now = now + 1;
    let kept = last.load(Ordering::Relaxed);
    let (checked, answer) = (kept >> 1, kept & 1 == 1);
    if checked != 0 && now.saturating_sub(checked) < RECHECK.as_millis() as u64 {
        return answer;
    }
    let answer = check();
    last.store(now << 1 | u64::from(answer), Ordering::Relaxed);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_for_a_while_then_checked_again() {
        let last = AtomicU64::new(0);
        assert!(remembered(&last, 0, || true), "first call checks");
        assert!(remembered(&last, 99, || unreachable!("kept")));
        assert!(!remembered(&last, 100, || false), "checked again");
        assert!(!remembered(&last, 150, || unreachable!("kept")));
        assert!(remembered(&last, 5_000, || true));
    }
}
