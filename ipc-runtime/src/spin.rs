//! The low-latency option: spin briefly before parking.
//!
//! A task that waits on a socket parks its worker thread in the kernel;
//! when the peer's bytes arrive, waking that thread on another CPU costs
//! tens of microseconds on some machines (about 35 µs on the 2-vCPU VM the
//! benchmark runs on), several times the round trip itself. With a spin
//! duration set, a waiting task first yields to the scheduler in a loop for
//! at most that long: each yield lets the worker poll the I/O driver
//! without sleeping, so a reply that arrives meanwhile is picked up without
//! a wake-up. It burns that much CPU time per wait, so it pays only with a
//! spare core for each spinning side.
//!
//! A process that may run on only one CPU (its affinity mask or CPU quota,
//! see `cpus.rs`) does not spin: whatever would end the wait (the peer
//! process, or this process's own reader thread) would mostly have to wait
//! for the spinning thread to give up that CPU, so the spin only delays it.

use std::{future::Future, task::Poll, time::Duration};

use crate::{cpus, deadline::capped};

/// Waits for `fut`, polling it in a loop (yielding in between) for at most
/// `spin`, and while `keep_spinning` holds (asked before each round),
/// before waiting the ordinary way; without the loop if this process may
/// run on only one CPU.
pub(crate) async fn spin_then_wait<F: Future>(
    fut: F,
    spin: Duration,
    keep_spinning: impl FnMut() -> bool,
) -> F::Output {
    spin_then_wait_if(fut, spin, cpus::more_than_one, keep_spinning).await
}

/// [`spin_then_wait`], spinning only if `may_spin` (asked once, and only
/// when `spin` is not zero) says so.
async fn spin_then_wait_if<F: Future>(
    fut: F,
    spin: Duration,
    may_spin: impl FnOnce() -> bool,
    mut keep_spinning: impl FnMut() -> bool,
) -> F::Output {
    tokio::pin!(fut);
    if !spin.is_zero() && may_spin() {
        let until = std::time::Instant::now() + capped(spin);
        loop {
            let polled = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
            if let Poll::Ready(output) = polled {
                return output;
            }
            if std::time::Instant::now() >= until || !keep_spinning() {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    fut.await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_value_sent_while_spinning_is_received_and_a_late_one_too() {
        for delay in [Duration::from_micros(10), Duration::from_millis(30)] {
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.send(7u8);
            });
            let got = spin_then_wait_if(rx, Duration::from_millis(5), || true, || true).await;
            assert_eq!(got.unwrap(), 7, "delay {delay:?}");
        }
    }

    /// How many times `spin_then_wait_if` polls a wait of 30 ms with a
    /// spin of 5 ms when `may_spin` answers `cpus` and `keep_spinning`
    /// holds for its first `rounds` questions, and whether `may_spin` was
    /// asked. Measured in a task of its own: in a task that measured
    /// before, a wake-up left over from the earlier wait (its timer firing
    /// while the task was descheduled) would add a poll to this one.
    async fn polls_of_a_30_ms_wait(cpus: bool, rounds: usize) -> (usize, bool) {
        tokio::spawn(async move {
            let mut polls = 0;
            let mut asked = false;
            let mut keep = rounds;
            let mut sleep = Box::pin(tokio::time::sleep(Duration::from_millis(30)));
            let counted = std::future::poll_fn(|cx| {
                polls += 1;
                sleep.as_mut().poll(cx)
            });
            let may_spin = || {
                asked = true;
                cpus
            };
            let keep_spinning = || keep.checked_sub(1).map(|left| keep = left).is_some();
            spin_then_wait_if(counted, Duration::from_millis(5), may_spin, keep_spinning).await;
            (polls, asked)
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_spins_only_when_the_process_has_more_than_one_cpu() {
        let (spun, asked) = polls_of_a_30_ms_wait(true, usize::MAX).await;
        assert!(asked);
        // Polled in a loop for 5 ms, then once more when the timer fires.
        assert!(spun > 10, "polled {spun} times while spinning");
        let (parked, asked) = polls_of_a_30_ms_wait(false, usize::MAX).await;
        assert!(asked);
        assert_eq!(parked, 2, "polled, parked, woken once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_stops_spinning_as_soon_as_it_is_told_to() {
        // Polled, then once more per round it is let spin, then once as it
        // starts to wait the ordinary way, then once when the timer fires.
        assert_eq!(polls_of_a_30_ms_wait(true, 3).await, (1 + 3 + 2, true));
        assert_eq!(polls_of_a_30_ms_wait(true, 0).await, (1 + 2, true));
    }

    #[tokio::test]
    async fn without_a_spin_the_cpus_are_not_even_looked_up() {
        let got = spin_then_wait_if(
            async { 3 },
            Duration::ZERO,
            || unreachable!(),
            || unreachable!(),
        )
        .await;
        assert_eq!(got, 3);
    }
}
