//! What one renderer may cost main, and how a connection ends.

use std::time::Duration;

/// Limits that bound what renderers may cost main. Every limit applies per
/// renderer except [`Limits::max_renderers`]; exceeding one leaves a
/// `tracing` record on main. Where the renderer can be told, it gets a
/// typed error naming the limit and its value (the errors below); a
/// renderer disconnected for a timeout, repeated violations or falling
/// behind sees its connection close, told why in the
/// [`IpcError::Disconnected`](crate::IpcError::Disconnected) it gets (main's
/// last frame, written after everything queued before it: a renderer that
/// stopped reading may never get to it), and
/// main reports why through
/// [`Main::disconnections`](crate::Main::disconnections).
///
/// | limit | default | when exceeded |
/// | --- | --- | --- |
/// | `max_frame_size` | 16 MiB | [`IpcError::FrameTooLarge`](crate::IpcError::FrameTooLarge) from the length prefix, before allocation; main then disconnects (it cannot skip the frame) |
/// | `max_in_flight` | 64 calls (at least 1: [`MainBuilder::build`](crate::MainBuilder::build) refuses 0) | the generated client waits for a slot (calls wait in line, in the order they came); a raw peer gets [`IpcError::TooManyInFlight`](crate::IpcError::TooManyInFlight) for the excess call (a violation). It bounds the handlers alive too: a cancelled call's handler lives until the runtime gets to its task, and a finished one's until its reply is queued, so while such handlers bring the count to the limit main waits for them before starting another call |
/// | `max_subscriptions` | 256 event channels | [`IpcError::TooManySubscriptions`](crate::IpcError::TooManySubscriptions) for the listener that asked (not a violation: the renderer cannot know the limit) |
/// | `max_queued_frames` | 1024 frames | outgoing replies and events wait in this queue; when it is full (counting the frames the writer took but could not write yet), events to that renderer are dropped and counted, or it is disconnected ([`SlowConsumer`]); replies, and new calls from that renderer, wait once the queue itself holds this many frames or 256 KiB, so for a renderer that stops reading main holds at most twice this many frames (a full queue beside the batch the writer is stuck on) |
/// | `max_queued_bytes` | 16 MiB | the same for the bytes of the events and replies held for a renderer (queued, or being written to a renderer that does not read them): past it, events are dropped or the renderer disconnected ([`SlowConsumer`]). An event larger than this still goes when nothing else is held. Replies do not wait for this limit but for 256 KiB in the queue itself: for a renderer that stops reading, main holds at most the larger of this and 256 KiB, plus 256 KiB and two frames. Besides the queue, the reply of each handler that finishes while it is full waits for room holding its value: at most `max_in_flight` of them (calls already read when the renderer stopped reading), so budget `max_in_flight` × your largest reply for such a renderer, as for the handlers themselves |
/// | `max_queued_send_bytes` | 4 MiB | `send` messages wait for their handler in order (one whose handler has not finished holds back those after it); once the waiting ones hold this many bytes (or number 256), main stops reading from that renderer until its handler catches up. A single larger message takes the whole budget. Not reading, main does not see the renderer leave either: a `send` handler that never finishes keeps its renderer registered (and its place among `max_renderers`) until [`Main::disconnect`](crate::Main::disconnect) or [`Main::close`](crate::Main::close) |
/// | `handshake_timeout` | 10 s | the connection is refused; it also bounds how long main waits for a refused renderer to take its rejection (a hello, the first frame, may be at most 1 MiB, or `max_frame_size` if smaller) |
/// | `frame_timeout` | 10 s | a frame that started arriving but is not complete this long after main first saw part of it (a peer sending one byte a second) ends the connection |
/// | `max_violations` | 8 | after this many protocol violations (malformed frames, unknown or not-allowed channels, undecodable payloads, calls beyond `max_in_flight`) the renderer is disconnected; `None` never disconnects |
/// | `max_renderers` | 64 | main-wide: connections (live or in handshake) beyond this are refused with [`IpcError::TooManyRenderers`](crate::IpcError::TooManyRenderers). Connections to a listening endpoint (Unix or TCP) wait for their token in a waiting room of that endpoint with as many places, so that processes connecting without one never take the places of renderers main spawns, accepts or has admitted, nor those of another endpoint; when it is full, the connection that has waited longest is refused (`Unauthorized`) to make room, so that connections that never show a token cannot keep out a renderer that shows its own at once |
///
/// A timeout of `Duration::MAX` means none: the deadline is then about a
/// century away.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest frame accepted from a renderer, in bytes.
    pub max_frame_size: usize,
    /// Calls one renderer may have in flight at once.
    pub max_in_flight: usize,
    /// Event channels one renderer may listen to.
    pub max_subscriptions: usize,
    /// Outgoing frames (replies and events) queued for one renderer: events
    /// count the writer's stuck batch too, replies only the queue (see the
    /// table above).
    pub max_queued_frames: usize,
    /// Bytes of outgoing frames held for one renderer past which events
    /// to it are dropped (or it is disconnected); replies wait at 256 KiB
    /// queued instead.
    pub max_queued_bytes: usize,
    /// Bytes of `send` messages one renderer may have waiting for their
    /// handler.
    pub max_queued_send_bytes: usize,
    /// Time for a renderer's hello to arrive once it has connected, and
    /// separately for main's answer to be written.
    pub handshake_timeout: Duration,
    /// Time for a frame that has started arriving to finish.
    pub frame_timeout: Duration,
    /// Protocol violations before a renderer is disconnected.
    pub max_violations: Option<u32>,
    /// What happens to a renderer whose outgoing queue is full.
    pub slow_consumer: SlowConsumer,
    /// Connections main accepts at once, live or in handshake.
    pub max_renderers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: super::DEFAULT_MAX_FRAME_SIZE,
            max_in_flight: 64,
            max_subscriptions: 256,
            max_queued_frames: 1024,
            max_queued_bytes: 16 * 1024 * 1024,
            max_queued_send_bytes: 4 * 1024 * 1024,
            handshake_timeout: super::DEFAULT_HANDSHAKE_TIMEOUT,
            frame_timeout: Duration::from_secs(10),
            max_violations: Some(8),
            slow_consumer: SlowConsumer::DropEvents,
            max_renderers: 64,
        }
    }
}

/// The policy for a renderer that does not read fast enough, once its
/// outgoing queue ([`Limits::max_queued_frames`]) is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Drop further events for it (counted in
    /// [`RendererStats::events_dropped`](crate::RendererStats::events_dropped));
    /// replies wait for room.
    DropEvents,
    /// Disconnect it. Main tells it why after the frames already queued
    /// for it, and gives up writing to it a second later: a renderer that
    /// has stopped reading for longer (its event listeners far behind)
    /// may never read that reason, and then its
    /// [`IpcError::Disconnected`](crate::IpcError::Disconnected) says it
    /// fell behind.
    Disconnect,
}

/// Why a renderer connection ended, as main saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The renderer closed the connection (or exited, or was killed).
    Closed,
    /// Main ended it ([`Main::disconnect`](crate::Main::disconnect),
    /// [`Main::close`](crate::Main::close), or a
    /// [`RendererProcess`](crate::RendererProcess) killed or dropped whose
    /// connection was still open a second later: a process it started
    /// holds the socket). A renderer process that ends when killed closes
    /// its socket itself, and that reads [`Closed`](Self::Closed).
    ClosedByMain,
    /// It reached [`Limits::max_violations`].
    Misbehaved {
        /// How many violations it made.
        violations: u32,
        /// The last one, in words.
        last: String,
    },
    /// It sent a frame over [`Limits::max_frame_size`].
    FrameTooLarge {
        /// The frame's announced size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// A frame started arriving but did not finish within
    /// [`Limits::frame_timeout`].
    FrameTimeout(Duration),
    /// Its outgoing queue was full under [`SlowConsumer::Disconnect`].
    SlowConsumer {
        /// The queue's capacity.
        queued: usize,
    },
    /// The connection failed (an I/O error, or the peer closed it in the
    /// middle of a frame), or main's own work for it did (its task
    /// panicked, [`Main::accept`](crate::Main::accept) was cancelled, or
    /// the renderer did not take main's welcome). The text says which.
    Failed(String),
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisconnectReason::Closed => write!(f, "the renderer closed the connection"),
            DisconnectReason::ClosedByMain => write!(
                f,
                "main ended the connection (`Main::disconnect`, `Main::close`, or its `RendererProcess` killed or dropped)"
            ),
            DisconnectReason::Misbehaved { violations, last } => write!(
                f,
                "disconnected after {}; the last: {last}",
                violations_count(*violations)
            ),
            DisconnectReason::FrameTooLarge { size, limit } => write!(
                f,
                "it sent a frame of {size} bytes, over the limit of {limit}"
            ),
            DisconnectReason::FrameTimeout(t) => {
                write!(
                    f,
                    "a frame started arriving but did not finish within {t:?}"
                )
            }
            DisconnectReason::SlowConsumer { queued } => write!(
                f,
                "it did not read its messages: its outgoing queue reached its limit ({queued} frames, or `max_queued_bytes`)"
            ),
            DisconnectReason::Failed(why) => write!(f, "{why}"),
        }
    }
}

/// "1 protocol violation", "3 protocol violations".
pub(crate) fn violations_count(n: u32) -> String {
    match n {
        1 => "1 protocol violation".into(),
        n => format!("{n} protocol violations"),
    }
}

/// A renderer's disconnection, as broadcast by
/// [`Main::disconnections`](crate::Main::disconnections).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Disconnection {
    /// The renderer.
    pub renderer: crate::RendererInfo,
    /// Why it ended.
    pub reason: DisconnectReason,
}
