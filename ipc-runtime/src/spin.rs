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

use std::{future::Future, task::Poll, time::Duration};

/// Waits for `fut`, polling it in a loop (yielding in between) for at most
/// `spin` before waiting the ordinary way.
pub(crate) async fn spin_then_wait<F: Future>(fut: F, spin: Duration) -> F::Output {
    tokio::pin!(fut);
    if !spin.is_zero() {
        let until = std::time::Instant::now() + spin;
        loop {
            let polled = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
            if let Poll::Ready(output) = polled {
                return output;
            }
            if std::time::Instant::now() >= until {
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
            let got = spin_then_wait(rx, Duration::from_millis(5)).await;
            assert_eq!(got.unwrap(), 7, "delay {delay:?}");
        }
    }
}
