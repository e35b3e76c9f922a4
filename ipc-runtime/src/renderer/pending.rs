//! The calls waiting for their replies: one table, completed in place.
//!
//! Each call has an entry, keyed by its id, that holds either the waker of
//! the task waiting for it or, once it has come, its reply. The reader
//! fills an entry and wakes its task; the task takes the reply out. No
//! channel is allocated per call, and the in-flight count that main
//! grants is kept in the same table, under the same lock.

use std::{
    collections::{hash_map::Entry, BTreeMap, HashMap},
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::time::Instant;

use super::Reply;
use crate::IpcError;

/// Every call in flight on a connection. The ids are this connection's own
/// (a counter), so a fast unkeyed hash is safe.
pub(super) struct Calls {
    calls: HashMap<u64, Call, rustc_hash::FxBuildHasher>,
    /// Calls counted against main's in-flight limit.
    counted: usize,
    /// Main's in-flight limit.
    limit: usize,
    /// The calls waiting for one of the `limit` slots, by ticket, with the
    /// waker of each. Free slots go to them in order, one each, as with a
    /// fair semaphore: with `n` slots free, the first `n` in line may take
    /// one (and have been woken), and no one else.
    waiting: BTreeMap<u64, Option<Waker>>,
    /// The first ticket in line that no free slot is for (the
    /// [`free`](Self::free)-th, counting from 0), or `None` if a slot is
    /// free for every call in line: the calls before it may take one.
    /// Kept as the line and the free slots change, so that no operation
    /// counts places in line.
    cut: Option<u64>,
    next_ticket: u64,
}

/// One call in flight.
pub(super) struct Call {
    progress: Progress,
    /// When the call times out.
    pub(super) deadline: Instant,
    /// For the timeout error.
    channel: &'static str,
    timeout: Duration,
    /// Whether the call holds one of main's in-flight slots.
    counted: bool,
    /// Whether its invoke frame is queued (or may be: a call is taken to
    /// be from its admission, its frame following at once, until it finds
    /// the write queue full). A call given up before its invoke was queued
    /// has nothing on main to cancel.
    pub(super) sent: bool,
}

/// Where a call is: waiting for its reply, or holding it.
enum Progress {
    /// No reply yet: the task to wake when it comes.
    Waiting(Option<Waker>),
    /// The reply, for the task to take.
    Done(Reply),
}

/// A call [`Calls::expire`] failed.
pub(super) struct Expired {
    pub(super) id: u64,
    /// The task to wake, if one waits.
    pub(super) waker: Option<Waker>,
    /// Whether its invoke was queued: only then is there a call on main
    /// to cancel.
    pub(super) sent: bool,
}

/// What [`Calls::remove`] took out.
pub(super) struct Removed {
    /// The call's reply; `None` if it was still waiting for it, so that
    /// main may still be running it.
    pub(super) reply: Option<Reply>,
    /// The call in line the freed slot is now for, if any: to wake once
    /// the lock is released.
    pub(super) next: Option<Waker>,
    /// Whether its invoke had been queued ([`Call::sent`]).
    pub(super) sent: bool,
}

impl Call {
    /// A call that will wait for its reply until `deadline`.
    pub(super) fn new(
        deadline: Instant,
        channel: &'static str,
        timeout: Duration,
        counted: bool,
    ) -> Self {
        Call {
            progress: Progress::Waiting(None),
            deadline,
            channel,
            timeout,
            counted,
            sent: true,
        }
    }

    /// The error of this call timing out.
    pub(super) fn timed_out(&self) -> IpcError {
        IpcError::Timeout {
            channel: self.channel.to_string(),
            timeout: self.timeout,
        }
    }
}

impl Calls {
    /// An empty table for a connection on which main allows `limit` calls
    /// in flight.
    pub(super) fn new(limit: usize) -> Self {
        Calls {
            calls: HashMap::default(),
            counted: 0,
            limit: limit.max(1),
            waiting: BTreeMap::new(),
            cut: None,
            next_ticket: 0,
        }
    }

    /// Adds call `id`, unless it is counted and the free slots are all
    /// for calls waiting ahead of it (every call in line, for a call
    /// without a `ticket`; those with earlier tickets otherwise): then the
    /// call is handed back. A call admitted with its ticket leaves the
    /// line.
    pub(super) fn admit(&mut self, id: u64, call: Call, ticket: Option<u64>) -> Result<(), Call> {
        if call.counted {
            let let_in = match ticket {
                Some(ticket) => self.cut.is_none_or(|cut| ticket < cut),
                None => self.waiting.len() < self.free(),
            };
            if !let_in {
                return Err(call);
            }
            // The calls let in stay those before `cut`: one fewer slot,
            // and one fewer call before it.
            self.counted += 1;
            if let Some(ticket) = ticket {
                self.waiting.remove(&ticket);
            }
        }
        self.calls.insert(id, call);
        Ok(())
    }

    /// How many of main's slots are free.
    fn free(&self) -> usize {
        self.limit.saturating_sub(self.counted)
    }

    /// Takes call `id`'s reply if it has come (the call is then gone), or
    /// registers `cx`'s waker for it. `None` if the call is not there any
    /// more: the connection closed.
    pub(super) fn poll_reply(&mut self, id: u64, cx: &mut Context<'_>) -> Poll<Option<Removed>> {
        // One lookup, whether the call waits or is taken out.
        let Entry::Occupied(mut entry) = self.calls.entry(id) else {
            return Poll::Ready(None);
        };
        if let Progress::Waiting(waker) = &mut entry.get_mut().progress {
            set_waker(waker, cx.waker());
            return Poll::Pending;
        }
        let call = entry.remove();
        Poll::Ready(Some(self.removed(call)))
    }

    /// Hands `reply` to call `id`; the waker to wake once the lock is
    /// released. Nothing happens if the call is gone (its caller stopped
    /// waiting) or already has a reply (it timed out meanwhile):
    /// `None` if nobody waits for the call any more.
    pub(super) fn complete(&mut self, id: u64, reply: Reply) -> Option<Option<Waker>> {
        let call = self.calls.get_mut(&id)?;
        match &mut call.progress {
            Progress::Waiting(waker) => {
                let waker = waker.take();
                call.progress = Progress::Done(reply);
                Some(waker)
            }
            Progress::Done(_) => Some(None),
        }
    }

    /// Fails the calls whose deadline has passed with a timeout error.
    /// Returns their ids, wakers and whether their invoke was queued
    /// ([`Call::sent`]), and the earliest deadline left.
    pub(super) fn expire(&mut self, now: Instant, expired: &mut Vec<Expired>) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for (id, call) in &mut self.calls {
            let Progress::Waiting(waker) = &mut call.progress else {
                continue;
            };
            if call.deadline <= now {
                let waker = waker.take();
                call.progress = Progress::Done(Reply::Failed(call.timed_out()));
                expired.push(Expired {
                    id: *id,
                    waker,
                    sent: call.sent,
                });
            } else if next.is_none_or(|at| call.deadline < at) {
                next = Some(call.deadline);
            }
        }
        next
    }

    /// Call `id`, if it is still waiting for its reply (not timed out, and
    /// the connection not closed).
    pub(super) fn waiting(&mut self, id: u64) -> Option<&mut Call> {
        self.calls
            .get_mut(&id)
            .filter(|call| matches!(call.progress, Progress::Waiting(_)))
    }

    /// Removes call `id`, freeing its slot.
    pub(super) fn remove(&mut self, id: u64) -> Option<Removed> {
        let call = self.calls.remove(&id)?;
        Some(self.removed(call))
    }

    /// Frees the slot of `call`, just removed.
    fn removed(&mut self, call: Call) -> Removed {
        let next = if call.counted {
            self.counted -= 1;
            self.let_in_one_more()
        } else {
            None
        };
        Removed {
            sent: call.sent,
            reply: match call.progress {
                Progress::Done(reply) => Some(reply),
                Progress::Waiting(_) => None,
            },
            next,
        }
    }

    /// A ticket in the queue for a slot, for [`Calls::admit`].
    pub(super) fn wait(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        // Last in line: let in if a slot is free for every call before it.
        if self.cut.is_none() && self.waiting.len() >= self.free() {
            self.cut = Some(ticket);
        }
        self.waiting.insert(ticket, None);
        ticket
    }

    /// Registers the waker of the call holding `ticket`, which was refused
    /// a slot.
    pub(super) fn register(&mut self, ticket: u64, waker: &Waker) {
        if let Some(slot) = self.waiting.get_mut(&ticket) {
            set_waker(slot, waker);
        }
    }

    /// Leaves the queue for a slot without one (the call gave up, or was
    /// dropped; a call admitted with its ticket has left already): if a
    /// free slot was for it, the call in line it now goes to, to wake once
    /// the lock is released.
    pub(super) fn stop_waiting(&mut self, ticket: u64) -> Option<Waker> {
        self.waiting.remove(&ticket)?;
        match self.cut {
            // It was let in: its slot goes to the call at the cut.
            Some(cut) if ticket < cut => self.let_in_one_more(),
            // It was the first not let in: the next one is now.
            Some(cut) if ticket == cut => {
                self.cut = self.after(cut);
                None
            }
            _ => None,
        }
    }

    /// How many calls are in the table (waiting for their replies, or
    /// holding them until their tasks take them).
    pub(super) fn len(&self) -> usize {
        self.calls.len()
    }

    /// A slot is free for one more call in line (one was freed, or a call
    /// let in left the line): lets in the call at the cut, and returns its
    /// waker, taken, to wake once the lock is released. The calls before it
    /// were let in before, and woken then; one that is never polled again
    /// keeps only its own slot, not the line.
    fn let_in_one_more(&mut self) -> Option<Waker> {
        let cut = self.cut?;
        self.cut = self.after(cut);
        self.waiting.get_mut(&cut).and_then(Option::take)
    }

    /// The ticket in line after `ticket`.
    fn after(&self, ticket: u64) -> Option<u64> {
        self.waiting
            .range((
                std::ops::Bound::Excluded(ticket),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .map(|(&t, _)| t)
    }

    /// Removes every call still waiting for its reply (the connection
    /// closed); their wakers and those of the calls waiting for a slot, to
    /// wake once the lock is released. Calls whose reply (or timeout) has
    /// come keep it, for their task to take: a reply read just before the
    /// connection ended is not lost.
    pub(super) fn drain(&mut self) -> Vec<Waker> {
        let mut wakers: Vec<Waker> = self.waiting.values_mut().filter_map(Option::take).collect();
        self.calls.retain(|_, call| match &mut call.progress {
            Progress::Waiting(waker) => {
                wakers.extend(waker.take());
                false
            }
            Progress::Done(_) => true,
        });
        self.counted = self.calls.values().filter(|c| c.counted).count();
        wakers
    }
}

/// Keeps `slot`'s waker if it would wake the same task as `waker`, or
/// replaces it.
fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        task::Wake,
    };

    use bytes::Bytes;

    use super::*;

    /// A waker that counts its wakes.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        (Arc::clone(&c), Waker::from(c))
    }

    fn call(counted: bool) -> Call {
        Call::new(
            Instant::now() + Duration::from_secs(60),
            "t:m",
            Duration::from_secs(60),
            counted,
        )
    }

    fn ok(reply: Option<Reply>) -> Bytes {
        match reply {
            Some(Reply::Ok(b)) => b,
            _ => panic!("expected an ok reply"),
        }
    }

    #[test]
    fn a_reply_wakes_the_waiting_task_which_then_takes_it() {
        let mut calls = Calls::new(4);
        calls.admit(1, call(true), None).ok().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        assert!(calls.poll_reply(1, &mut cx).is_pending());
        let woken = calls.complete(1, Reply::Ok(Bytes::from_static(b"r")));
        woken.expect("still there").expect("a waker").wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        let Poll::Ready(Some(removed)) = calls.poll_reply(1, &mut cx) else {
            panic!("the reply is ready")
        };
        assert_eq!(ok(removed.reply), "r");
        assert!(calls.calls.is_empty());
        assert_eq!(calls.counted, 0);
    }

    #[test]
    fn a_reply_before_the_first_poll_is_kept_for_it() {
        let mut calls = Calls::new(4);
        calls.admit(7, call(false), None).ok().unwrap();
        assert!(matches!(
            calls.complete(7, Reply::Ok(Bytes::new())),
            Some(None)
        ));
        let (_, waker) = counter();
        let polled = calls.poll_reply(7, &mut Context::from_waker(&waker));
        assert!(matches!(polled, Poll::Ready(Some(_))));
    }

    #[test]
    fn replies_for_unknown_or_finished_calls_are_ignored() {
        let mut calls = Calls::new(4);
        assert!(calls.complete(3, Reply::Ok(Bytes::new())).is_none());
        calls.admit(3, call(true), None).ok().unwrap();
        calls.complete(3, Reply::Ok(Bytes::from_static(b"first")));
        // A second reply with the same id does not replace the first.
        assert!(matches!(
            calls.complete(3, Reply::Ok(Bytes::from_static(b"second"))),
            Some(None)
        ));
        assert_eq!(ok(calls.remove(3).unwrap().reply), "first");
        assert!(calls.complete(3, Reply::Ok(Bytes::new())).is_none());
    }

    #[test]
    fn counted_calls_stop_at_the_limit_and_free_their_slot() {
        let mut calls = Calls::new(2);
        calls.admit(1, call(true), None).ok().unwrap();
        calls.admit(2, call(true), None).ok().unwrap();
        assert!(calls.admit(3, call(true), None).is_err(), "the limit is 2");
        // Uncounted requests (subscriptions) do not take a slot.
        calls.admit(4, call(false), None).ok().unwrap();
        let (first, second) = (calls.wait(), calls.wait());
        let (woken_first, waker_first) = counter();
        let (woken_second, waker_second) = counter();
        calls.register(first, &waker_first);
        calls.register(second, &waker_second);
        let removed = calls.remove(1).unwrap();
        assert!(removed.reply.is_none(), "it was still waiting");
        removed.next.expect("the first in line is woken").wake();
        assert!(calls.remove(4).unwrap().next.is_none(), "no slot was freed");
        // The freed slot goes to the first call in line: not to a newcomer,
        // nor to a later ticket.
        assert!(calls.admit(5, call(true), None).is_err(), "waiters first");
        assert!(
            calls.admit(5, call(true), Some(second)).is_err(),
            "in order"
        );
        calls.admit(3, call(true), Some(first)).ok().unwrap();
        assert!(
            calls.stop_waiting(first).is_none(),
            "it already left the line"
        );
        assert!(
            calls.admit(5, call(true), Some(second)).is_err(),
            "full again"
        );
        // The first in line gives up while a slot is free: the next one is
        // woken, and only it.
        calls
            .remove(3)
            .unwrap()
            .next
            .expect("second is next")
            .wake();
        let third = calls.wait();
        calls.register(second, &waker_second);
        assert!(
            calls.stop_waiting(second).is_none(),
            "third has no waker yet"
        );
        calls.admit(6, call(true), Some(third)).ok().unwrap();
        assert!(calls.waiting.is_empty());
        assert_eq!(woken_first.0.load(Ordering::SeqCst), 1);
        assert_eq!(woken_second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn two_slots_freed_at_once_reach_two_calls_in_line() {
        let mut calls = Calls::new(2);
        calls.admit(1, call(true), None).ok().unwrap();
        calls.admit(2, call(true), None).ok().unwrap();
        let (first, second) = (calls.wait(), calls.wait());
        let (woken_second, waker_second) = counter();
        calls.register(second, &waker_second);
        let (_, waker_first) = counter();
        calls.register(first, &waker_first);
        calls.remove(1).unwrap().next.expect("first").wake();
        // The second slot goes to the second in line, whether or not the
        // first has taken its own yet.
        calls.remove(2).unwrap().next.expect("second").wake();
        assert_eq!(woken_second.0.load(Ordering::SeqCst), 1);
        calls.admit(4, call(true), Some(second)).ok().unwrap();
        calls.admit(3, call(true), Some(first)).ok().unwrap();
    }

    #[test]
    fn a_call_let_in_but_never_polled_keeps_its_slot_and_not_the_line() {
        let mut calls = Calls::new(2);
        calls.admit(1, call(true), None).ok().unwrap();
        calls.admit(2, call(true), None).ok().unwrap();
        let kept = calls.wait();
        let (_, waker) = counter();
        calls.register(kept, &waker);
        // Both slots free; the first is for `kept`, which never comes back
        // for it.
        calls
            .remove(1)
            .unwrap()
            .next
            .expect("kept is let in")
            .wake();
        assert!(calls.remove(2).unwrap().next.is_none(), "no one else waits");
        // A newcomer takes the other slot, and no more.
        calls.admit(3, call(true), None).ok().unwrap();
        assert!(calls.admit(4, call(true), None).is_err(), "kept's slot");
        // Another in line behind `kept` gets the slot the newcomer frees.
        let behind = calls.wait();
        let (woken, waker) = counter();
        calls.register(behind, &waker);
        calls.remove(3).unwrap().next.expect("behind").wake();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        calls.admit(4, call(true), Some(behind)).ok().unwrap();
        // `kept` gives up at last: its slot goes to whoever comes next.
        assert!(calls.stop_waiting(kept).is_none(), "no one waits");
        calls.admit(5, call(true), None).ok().unwrap();
        assert_eq!(calls.counted, 2);
    }

    #[test]
    fn only_the_first_in_line_is_woken() {
        let mut calls = Calls::new(1);
        calls.admit(1, call(true), None).ok().unwrap();
        let counters: Vec<_> = (0..3)
            .map(|_| {
                let (count, waker) = counter();
                let ticket = calls.wait();
                calls.register(ticket, &waker);
                count
            })
            .collect();
        calls.remove(1).unwrap().next.unwrap().wake();
        let woken: Vec<usize> = counters
            .iter()
            .map(|c| c.0.load(Ordering::SeqCst))
            .collect();
        assert_eq!(woken, [1, 0, 0]);
    }

    /// Random schedules of calls joining, leaving and waiting in line,
    /// against the definition: with `n` slots free, exactly the first `n`
    /// in line may take one, each of them has been woken (its waker taken,
    /// as a call that registered and was then let in), every other call in
    /// line still has its waker registered, and no more than the limit
    /// are ever admitted.
    #[test]
    fn the_line_follows_its_definition_through_random_schedules() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        for round in 0..300 {
            let limit = 1 + round % 5;
            let mut calls = Calls::new(limit);
            let (_, waker) = counter();
            let (mut next_id, mut admitted, mut in_line) = (0u64, Vec::new(), Vec::new());
            for _ in 0..200 {
                next_id += 1;
                match random(5) {
                    // A new call: admitted, or it takes a ticket, tries with
                    // it at once and registers if refused.
                    0 | 1 => {
                        if calls.admit(next_id, call(true), None).is_ok() {
                            admitted.push(next_id);
                        } else {
                            let ticket = calls.wait();
                            if calls.admit(next_id, call(true), Some(ticket)).is_ok() {
                                admitted.push(next_id);
                            } else {
                                calls.register(ticket, &waker);
                                in_line.push((ticket, next_id));
                            }
                        }
                    }
                    // A call finishes.
                    2 if !admitted.is_empty() => {
                        let id = admitted.swap_remove(random(admitted.len()));
                        calls.remove(id).unwrap();
                    }
                    // A call in line is polled: it tries its ticket.
                    3 if !in_line.is_empty() => {
                        let at = random(in_line.len());
                        let (ticket, id) = in_line[at];
                        if calls.admit(id, call(true), Some(ticket)).is_ok() {
                            admitted.push(id);
                            in_line.swap_remove(at);
                        } else {
                            calls.register(ticket, &waker);
                        }
                    }
                    // A call in line gives up.
                    4 if !in_line.is_empty() => {
                        let (ticket, _) = in_line.swap_remove(random(in_line.len()));
                        calls.stop_waiting(ticket);
                    }
                    _ => {}
                }
                assert!(calls.counted <= limit);
                assert_eq!(calls.counted, admitted.len());
                let free = limit - calls.counted;
                let line: Vec<u64> = calls.waiting.keys().copied().collect();
                assert_eq!(
                    calls.cut,
                    line.get(free).copied(),
                    "the cut is the {free}th in line"
                );
                for (rank, waker) in calls.waiting.values().enumerate() {
                    assert_eq!(waker.is_none(), rank < free, "rank {rank}, {free} free");
                }
            }
        }
    }

    #[test]
    fn expired_calls_fail_with_their_timeout_and_the_next_deadline_is_kept() {
        let mut calls = Calls::new(4);
        let now = Instant::now();
        let soon = now + Duration::from_millis(5);
        let late = now + Duration::from_secs(5);
        calls
            .admit(
                1,
                Call::new(soon, "t:soon", Duration::from_millis(5), true),
                None,
            )
            .ok()
            .unwrap();
        calls
            .admit(
                2,
                Call::new(late, "t:late", Duration::from_secs(5), true),
                None,
            )
            .ok()
            .unwrap();
        let (count, waker) = counter();
        assert!(calls
            .poll_reply(1, &mut Context::from_waker(&waker))
            .is_pending());
        let mut expired = Vec::new();
        assert_eq!(calls.expire(soon, &mut expired), Some(late));
        assert_eq!(expired.len(), 1);
        let Expired { id, waker, sent } = expired.pop().unwrap();
        assert_eq!(id, 1);
        assert!(sent, "a call is taken as sent from its admission");
        waker.unwrap().wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        match calls.remove(1).unwrap().reply {
            Some(Reply::Failed(IpcError::Timeout { channel, timeout })) => {
                assert_eq!(channel, "t:soon");
                assert_eq!(timeout, Duration::from_millis(5));
            }
            _ => panic!("expected a timeout"),
        }
    }

    #[test]
    fn draining_wakes_every_waiting_call_and_keeps_replies_that_came() {
        let mut calls = Calls::new(2);
        calls.admit(1, call(true), None).ok().unwrap();
        calls.admit(2, call(false), None).ok().unwrap();
        calls.admit(3, call(true), None).ok().unwrap();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        for id in [1, 2, 3] {
            assert!(calls.poll_reply(id, &mut cx).is_pending());
        }
        // Call 3's reply arrived just before the connection ended.
        calls
            .complete(3, Reply::Ok(Bytes::from_static(b"last")))
            .unwrap()
            .unwrap()
            .wake();
        for waker in calls.drain() {
            waker.wake();
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
        assert!(matches!(calls.poll_reply(1, &mut cx), Poll::Ready(None)));
        assert!(matches!(calls.poll_reply(2, &mut cx), Poll::Ready(None)));
        assert_eq!(calls.counted, 1, "call 3 holds its slot until taken");
        let Poll::Ready(Some(removed)) = calls.poll_reply(3, &mut cx) else {
            panic!("the reply that came is kept")
        };
        assert_eq!(ok(removed.reply), "last");
        assert!(calls.calls.is_empty());
        assert_eq!(calls.counted, 0);
    }
}
