//! Error types: [`IpcError`] for everything the runtime can report, and
//! [`CallError`] for methods that also return a typed error of their own.

use std::{io, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

/// A failure of the IPC machinery (as opposed to an error returned by a
/// handler, which arrives as [`CallError::Handler`]).
///
/// Every message says what happened and, where there is one, what to do.
/// `Debug` shows that message too (as `Display` does), since it is what
/// `unwrap`, `expect` and a `main` returning `Result` print; match on the
/// variant to reach its fields.
///
/// ```
/// use ipc_runtime::IpcError;
///
/// let e = IpcError::TooManyInFlight { limit: 256 };
/// assert_eq!(format!("{e:?}"), e.to_string());
/// assert!(e.to_string().starts_with("too many calls in flight"));
/// ```
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// No reply arrived in time: the handler was slow or stuck (main was
    /// told to cancel the call), or the call spent its time waiting to be
    /// sent, for one of main's in-flight slots behind earlier calls or for
    /// room in this connection's outgoing queue while main did not read
    /// it (then it was never sent).
    #[error("call to `{channel}` timed out after {timeout:?} without a reply. Its handler may be slow or stuck (main has been told to cancel it), or the call never reached main: it waits for one of main's `Limits::max_in_flight` slots, and for main to read this connection. If the work legitimately takes this long, raise the timeout: `#[ipc(timeout_secs = N)]` on the method in the trait, `with_timeout` on the client, or `call_timeout` on the connection")]
    Timeout {
        /// The channel that was called.
        channel: String,
        /// How long the caller waited.
        timeout: Duration,
    },
    /// A `send` waited its whole timeout for room in this connection's
    /// outgoing queue: main did not read from the connection all that
    /// time. Nothing was sent.
    #[error("`send` on `{channel}` was not sent: main did not read from this connection for {timeout:?} (it stops reading from a renderer whose `send` messages wait for a handler that does not finish: `Limits::max_queued_send_bytes`); if main may legitimately be that slow, raise the timeout (for this method, `#[ipc(timeout_secs = N)]` on it in the trait; for this client, `with_timeout`; for the connection, `call_timeout`)")]
    SendTimeout {
        /// The channel of the message.
        channel: String,
        /// How long the sender waited for room.
        timeout: Duration,
    },
    /// The connection is gone, or never came to be: the peer exited,
    /// crashed or closed it; main shut down or dropped this renderer (and
    /// said why); main did not answer a renderer's handshake in time; or,
    /// from `Main`'s `listen_*`, `issue_token` and `spawn_renderer`, main
    /// has been closed. Match on `cause` to act on it (say, reconnect or
    /// report a bug); `reason` says it in words.
    #[error("disconnected: {reason}; nothing more can go through this connection")]
    Disconnected {
        /// What ended the connection, as far as this side knows.
        reason: String,
        /// The same, as a value to match on.
        cause: DisconnectCause,
    },
    /// Main has no handler for this channel, although the renderer's API
    /// lists it (a channel outside the API is [`IpcError::NotAllowed`],
    /// whether main serves it or not).
    #[error("unknown channel `{channel}`: main serves no method on it; register the service on main with `MainBuilder::service`, and build main and renderer from the same contract")]
    UnknownChannel {
        /// The channel named in the frame.
        channel: String,
    },
    /// The API this renderer was accepted as does not expose the channel.
    /// Said whether or not main serves it, so that a renderer learns
    /// nothing about channels beyond its API.
    #[error("channel `{channel}` is not allowed for this renderer: the API it was accepted as does not expose it; add it to the `expose!` declaration if this renderer should reach it")]
    NotAllowed {
        /// The channel named in the frame.
        channel: String,
    },
    /// The renderer had as many calls in flight as main allows.
    #[error("too many calls in flight: main allows {limit} per renderer (`Limits::max_in_flight`); wait for replies before sending more (the generated clients do)")]
    TooManyInFlight {
        /// The limit (`Limits::max_in_flight`).
        limit: usize,
    },
    /// The renderer listens to as many event channels as main allows.
    #[error("too many subscriptions: main allows {limit} event channels per renderer (`Limits::max_subscriptions`); drop listeners you no longer need, or raise the limit on main")]
    TooManySubscriptions {
        /// The limit (`Limits::max_subscriptions`).
        limit: usize,
    },
    /// Main has as many renderers connected as it allows.
    #[error("main is at its limit of {limit} connected renderers (`Limits::max_renderers`); try again when one has closed, or raise the limit on main")]
    TooManyRenderers {
        /// The limit (`Limits::max_renderers`).
        limit: usize,
    },
    /// The payload could not be decoded as the channel's types.
    #[error("the payload on `{channel}` could not be decoded: {reason}")]
    BadPayload {
        /// The channel the payload was for.
        channel: String,
        /// What the decoder said.
        reason: String,
    },
    /// A value could not be encoded before sending: a call's arguments
    /// (on the renderer), an event's (on main), or a reply (on main; the
    /// caller gets this error for that call, with the reason withheld
    /// unless main forwards failure details:
    /// [`MainBuilder::forward_failure_details`](crate::MainBuilder::forward_failure_details)).
    #[error("the value for `{channel}` could not be encoded: {reason}")]
    Encode {
        /// The channel the value was for.
        channel: String,
        /// What the encoder said.
        reason: String,
    },
    /// A frame was larger than the receiver accepts.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes; send less data per call (split it, or pass a file path instead) or raise the receiver's `max_frame_size` (`MainBuilder::max_frame_size` for what renderers send, `ConnectionBuilder::max_frame_size` for what main sends: `Connection::builder().max_frame_size(n).connect_inherited_as::<YourApi>()` in place of `YourApi::connect_inherited()`)")]
    FrameTooLarge {
        /// The size of the frame, from its length prefix.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// The renderer's contracts do not match main's on the channels it may
    /// reach: a contract main does not serve, or another version of one.
    #[error("handshake mismatch: {}; main must serve the channels this renderer may reach, from the same version of their contracts (contract fingerprints: renderer {renderer:#018x}, main {main:#018x})", differences.join("; "))]
    HandshakeMismatch {
        /// The fingerprint of the renderer's contracts, over the channels
        /// main compared: those its grant lets the renderer reach.
        renderer: u64,
        /// The fingerprint of main's contracts over the same channels.
        main: u64,
        /// Each service or channel that differs, in words. On the
        /// renderer, a type that changed under the same name is followed,
        /// where that can be told, by where it differs: "…; at
        /// `transfer.cents`, main's is `u64` and this renderer's `i64`".
        /// It cannot for types that cannot be traced (see
        /// [`WireShapes`](crate::WireShapes)), arguments added or removed
        /// (main's list is quoted), a difference past the first 512 nodes
        /// of a type or 24 levels deep, or lines past the first few that
        /// differ in large types. Main's own record names the types only:
        /// it has not seen the renderer's.
        differences: Vec<String>,
    },
    /// The renderer was built with an API that reaches channels main's
    /// grant for it does not allow: both sides know the contracts, but
    /// disagree on which API type the renderer is. (Boxed: it is rare, and
    /// every `Result` carrying an `IpcError` stays small.)
    #[error(transparent)]
    ApiNotGranted(Box<ApiNotGranted>),
    /// The peer speaks another version of the wire protocol.
    #[error("protocol version mismatch: the renderer speaks version {renderer} and main speaks version {main}; build both with the same ipc-runtime version")]
    ProtocolMismatch {
        /// The renderer's protocol version.
        renderer: u16,
        /// Main's protocol version.
        main: u16,
    },
    /// The handler panicked. Main caught the panic and keeps serving; it
    /// logs the panic's message (a `tracing` error), and the process's
    /// panic hook ran first, so the usual "thread panicked" message (and a
    /// backtrace, with `RUST_BACKTRACE`) is on main's stderr;
    /// `std::panic::set_hook` changes that. The renderer learns the
    /// message only if main forwards them
    /// ([`MainBuilder::forward_failure_details`](crate::MainBuilder::forward_failure_details)).
    /// A `send` handler's panic reaches the renderer as a notice, which it
    /// logs as a `tracing` warning, since nobody waits for its result.
    #[error("the handler for `{channel}` panicked: {message}; main is still running, but this call failed (this is a bug in the handler)")]
    HandlerPanicked {
        /// The channel whose handler panicked.
        channel: String,
        /// The panic message (a `&str` or `String` payload), cut to 1024
        /// characters and an ellipsis; for any other payload, the words
        /// "a non-string panic payload". On the renderer, unless main
        /// forwards panic messages, words saying it was withheld instead.
        message: String,
    },
    /// The connection's credentials were refused: by main, or by the
    /// renderer itself, which does not send its token to a socket served
    /// by another user.
    #[error("not authorised: {reason}")]
    Unauthorized {
        /// Why the credentials were refused.
        reason: String,
    },
    /// The peer broke the protocol (an unexpected or malformed frame), or,
    /// on main's side, a renderer did not do its part of the handshake in
    /// time (a renderer that main does not answer in time gets
    /// [`IpcError::Disconnected`]).
    #[error("protocol error: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// Invalid configuration or use, on either side: main built with
    /// clashing services, an endpoint opened outside a tokio runtime,
    /// `connect_inherited` in a process main did not start, `connect_tcp`
    /// to an address that is not loopback.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is inconsistent.
        reason: String,
    },
    /// An operating-system operation failed. The message includes the
    /// operating system's, so this error has no [`source`]; reach the
    /// `io::Error` itself (say, for its [`kind`](io::Error::kind)) with
    /// [`IpcError::io_error`].
    ///
    /// [`source`]: std::error::Error::source
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        error: Arc<io::Error>,
    },
}

/// What a renderer is told in place of the details of a failure on main's
/// side (a panic's message, why a reply could not be encoded), unless main
/// forwards them.
pub(crate) const WITHHELD: &str = "withheld by main (its log has it; main tells renderers only with `MainBuilder::forward_failure_details(true)`)";

/// Panic messages are cut to this many characters (and an ellipsis) in
/// error reports, so that the report of a panic always fits a small frame.
pub(crate) const PANIC_MESSAGE_CHARS: usize = 1024;

/// The message a panic was raised with (`panic!("…")`), for error reports
/// and logs, cut to [`PANIC_MESSAGE_CHARS`] characters and escaped (it may
/// quote a renderer's input).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string panic payload");
    crate::contract::Cut(message, PANIC_MESSAGE_CHARS).to_string()
}

impl IpcError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, error: io::Error) -> Self {
        IpcError::Io {
            context: context.into(),
            error: Arc::new(error),
        }
    }

    /// The operating system's error, for an [`IpcError::Io`].
    ///
    /// ```
    /// use ipc_runtime::{expose, service};
    /// # #[service(namespace = "notes")]
    /// # pub trait Notes { async fn get(&self, id: u64) -> String; }
    /// # expose! { pub struct NotesApi { notes: Notes { get } } }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = NotesApi::connect_unix("/nonexistent/main.sock", "token")
    ///     .await
    ///     .err()
    ///     .unwrap();
    /// let kind = err.io_error().map(std::io::Error::kind);
    /// assert_eq!(kind, Some(std::io::ErrorKind::NotFound));
    /// # }
    /// ```
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            IpcError::Io { error, .. } => Some(error),
            _ => None,
        }
    }

    pub(crate) fn disconnected(cause: DisconnectCause, reason: impl Into<String>) -> Self {
        IpcError::Disconnected {
            reason: reason.into(),
            cause,
        }
    }

    /// Why the connection ended, if this error says it has
    /// ([`IpcError::Disconnected`]).
    ///
    /// ```
    /// use ipc_runtime::{DisconnectCause, IpcError};
    ///
    /// // What a renderer does when its connection ends, by cause.
    /// fn on_end(e: &IpcError) -> &'static str {
    ///     match e.disconnect_cause() {
    ///         Some(DisconnectCause::MainClosed) => "main shut down: exit quietly",
    ///         Some(DisconnectCause::Misbehaved) => "main dropped us for a bug: report it",
    ///         Some(_) => "the connection ended: exit",
    ///         None => "not a disconnection",
    ///     }
    /// }
    /// assert_eq!(on_end(&IpcError::TooManyInFlight { limit: 1 }), "not a disconnection");
    /// ```
    pub fn disconnect_cause(&self) -> Option<DisconnectCause> {
        match self {
            IpcError::Disconnected { cause, .. } => Some(*cause),
            _ => None,
        }
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        IpcError::Protocol {
            reason: reason.into(),
        }
    }
}

/// Why a connection ended, as [`IpcError::Disconnected`] reports it.
///
/// A renderer learns the first four from main, which says why as its last
/// frame when it ends a connection on purpose; a main that crashes or is
/// killed says nothing, and its renderers read [`Lost`](Self::Lost). On
/// main, [`DisconnectReason`](crate::DisconnectReason) says in more detail
/// why each renderer went.
///
/// Sent on the wire by its variant's index: new causes are appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DisconnectCause {
    /// Main shut down ([`Main::close`](crate::Main::close)): for a
    /// renderer connected then, or refused for connecting after; on main,
    /// the error of `listen_*`, `issue_token`, `spawn_renderer` and
    /// `accept` once it has.
    MainClosed,
    /// Main ended this renderer's connection on purpose:
    /// [`Main::disconnect`](crate::Main::disconnect), or the renderer's
    /// [`RendererProcess`](crate::RendererProcess) killed or dropped.
    DisconnectedByMain,
    /// Main ended this renderer's connection because it broke main's
    /// [`Limits`](crate::Limits): too many protocol violations, a frame
    /// over the size limit or slower than the frame timeout, or an
    /// outgoing queue it let fill up (under `SlowConsumer::Disconnect`).
    /// A bug in the renderer, or a hostile one.
    Misbehaved,
    /// Main ended this renderer's connection after a failure of its own
    /// while serving it, such as a panic in its task for the renderer (its
    /// log says what failed).
    MainFailed,
    /// The peer went without a word, or the connection failed: the other
    /// process exited, crashed or was killed, closed its end, broke off
    /// in the middle of a frame, or never answered the handshake; or
    /// reading or writing the socket failed (main says so when its reading
    /// from the renderer failed).
    Lost,
    /// This side ended it: the connection was closed or dropped here, or
    /// the runtime driving it shut down.
    ClosedHere,
}

/// The error of a method declared as returning `Result<T, E>`.
///
/// The handler's own error arrives typed, as [`CallError::Handler`]; a
/// failure to carry the call arrives as [`CallError::Ipc`].
///
/// `?` turns it into `Box<dyn Error>` or `anyhow::Error` (when `E` is an
/// error type), or into a `CallError<E>` of the same `E`; not into an
/// [`IpcError`], which has no room for `E`: match the two cases, or use
/// [`CallError::handler`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError<E> {
    /// The handler ran and returned this error.
    #[error("{0}")]
    Handler(E),
    /// The call could not be carried out.
    #[error(transparent)]
    Ipc(#[from] IpcError),
}

impl<E> CallError<E> {
    /// The handler's error, if that is what this is.
    pub fn handler(&self) -> Option<&E> {
        match self {
            CallError::Handler(e) => Some(e),
            CallError::Ipc(_) => None,
        }
    }

    /// The runtime error, if that is what this is.
    pub fn ipc(&self) -> Option<&IpcError> {
        match self {
            CallError::Handler(_) => None,
            CallError::Ipc(e) => Some(e),
        }
    }
}

/// What [`IpcError::ApiNotGranted`] reports: the renderer's API, main's
/// grant for it, and the channels the one reaches and the other does not
/// allow.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("the renderer connected as `{api}`, which reaches {}, but main accepts it as `{grant}`, which does not allow them; connect the renderer as `{grant}`, or have main accept it as `{api}`", channels.join(", "))]
#[non_exhaustive]
pub struct ApiNotGranted {
    /// The renderer's API type.
    pub api: String,
    /// The API type main accepts it as.
    pub grant: String,
    /// The channels the renderer's API reaches and the grant does not
    /// allow, quoted (at most 16, then "and N more").
    pub channels: Vec<String>,
}

/// `Debug` shows the message, for the reason [`IpcError`]'s does.
impl std::fmt::Debug for IpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// `Debug` shows the message, for the reason [`IpcError`]'s does.
impl std::fmt::Debug for ApiNotGranted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The errors that main sends to a renderer, in their wire form.
///
/// Kept apart from [`IpcError`] so that the public enum can hold local-only
/// data (I/O sources) and grow without changing the wire format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WireError {
    UnknownChannel {
        channel: String,
    },
    NotAllowed {
        channel: String,
    },
    TooManyInFlight {
        limit: u64,
    },
    TooManySubscriptions {
        limit: u64,
    },
    TooManyRenderers {
        limit: u64,
    },
    BadPayload {
        channel: String,
        reason: String,
    },
    FrameTooLarge {
        size: u64,
        limit: u64,
    },
    HandshakeMismatch {
        renderer: u64,
        main: u64,
        differences: Vec<String>,
        /// Main's shapes of the types that differ (since protocol 6), for
        /// the renderer to say what inside them does
        /// ([`crate::contract::refine`]): a `Vec<ShapeNote>`, encoded
        /// apart, so that a renderer that cannot read it still reads the
        /// rest of the refusal.
        shapes: crate::Blob,
    },
    ProtocolMismatch {
        renderer: u16,
        main: u16,
    },
    HandlerPanicked {
        channel: String,
        message: String,
    },
    Unauthorized {
        reason: String,
    },
    Protocol {
        reason: String,
    },
    Internal {
        reason: String,
    },
    /// Appended last: the variants before keep their wire indices.
    Disconnected {
        reason: String,
        /// Since protocol 6.
        cause: DisconnectCause,
    },
    /// Appended after `Disconnected`, for the same reason: a reply main
    /// could not encode.
    Encode {
        channel: String,
        reason: String,
    },
    /// Appended after `Encode`, for the same reason.
    ApiNotGranted {
        api: String,
        grant: String,
        channels: Vec<String>,
    },
}

impl WireError {
    /// The error as the receiving side reports it. A method, not a `From`
    /// impl: rustc lists `IpcError`'s `From` impls when a user's `?` does
    /// not convert, and this crate-private type would appear there.
    pub(crate) fn into_ipc(self) -> IpcError {
        match self {
            WireError::UnknownChannel { channel } => IpcError::UnknownChannel { channel },
            WireError::NotAllowed { channel } => IpcError::NotAllowed { channel },
            WireError::TooManyInFlight { limit } => IpcError::TooManyInFlight {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            WireError::TooManySubscriptions { limit } => IpcError::TooManySubscriptions {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            WireError::TooManyRenderers { limit } => IpcError::TooManyRenderers {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            WireError::BadPayload { channel, reason } => IpcError::BadPayload { channel, reason },
            WireError::FrameTooLarge { size, limit } => IpcError::FrameTooLarge {
                size,
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            WireError::HandshakeMismatch {
                renderer,
                main,
                differences,
                shapes: _,
            } => IpcError::HandshakeMismatch {
                renderer,
                main,
                differences,
            },
            WireError::ProtocolMismatch { renderer, main } => {
                IpcError::ProtocolMismatch { renderer, main }
            }
            WireError::HandlerPanicked { channel, message } => {
                IpcError::HandlerPanicked { channel, message }
            }
            WireError::Unauthorized { reason } => IpcError::Unauthorized { reason },
            WireError::Protocol { reason } => IpcError::Protocol {
                reason: format!("main reported: {reason}"),
            },
            WireError::Internal { reason } => IpcError::Protocol {
                reason: format!("main failed internally: {reason}"),
            },
            WireError::Disconnected { reason, cause } => IpcError::Disconnected { reason, cause },
            WireError::Encode { channel, reason } => IpcError::Encode { channel, reason },
            WireError::ApiNotGranted {
                api,
                grant,
                channels,
            } => IpcError::ApiNotGranted(Box::new(ApiNotGranted {
                api,
                grant,
                channels,
            })),
        }
    }
}

impl From<&IpcError> for WireError {
    fn from(e: &IpcError) -> Self {
        match e.clone() {
            IpcError::UnknownChannel { channel } => WireError::UnknownChannel { channel },
            IpcError::NotAllowed { channel } => WireError::NotAllowed { channel },
            IpcError::TooManyInFlight { limit } => WireError::TooManyInFlight {
                limit: limit as u64,
            },
            IpcError::TooManySubscriptions { limit } => WireError::TooManySubscriptions {
                limit: limit as u64,
            },
            IpcError::TooManyRenderers { limit } => WireError::TooManyRenderers {
                limit: limit as u64,
            },
            IpcError::BadPayload { channel, reason } => WireError::BadPayload { channel, reason },
            IpcError::FrameTooLarge { size, limit } => WireError::FrameTooLarge {
                size,
                limit: limit as u64,
            },
            IpcError::HandshakeMismatch {
                renderer,
                main,
                differences,
            } => WireError::HandshakeMismatch {
                renderer,
                main,
                differences,
                shapes: crate::Blob::new(),
            },
            IpcError::ProtocolMismatch { renderer, main } => {
                WireError::ProtocolMismatch { renderer, main }
            }
            IpcError::HandlerPanicked { channel, message } => {
                WireError::HandlerPanicked { channel, message }
            }
            IpcError::Unauthorized { reason } => WireError::Unauthorized { reason },
            IpcError::Protocol { reason } => WireError::Protocol { reason },
            IpcError::Disconnected { reason, cause } => WireError::Disconnected { reason, cause },
            IpcError::Encode { channel, reason } => WireError::Encode { channel, reason },
            IpcError::ApiNotGranted(e) => {
                let ApiNotGranted {
                    api,
                    grant,
                    channels,
                } = *e;
                WireError::ApiNotGranted {
                    api,
                    grant,
                    channels,
                }
            }
            other => WireError::Internal {
                reason: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_main_sends_arrive_as_the_same_error() {
        let errors = [
            IpcError::UnknownChannel {
                channel: "notes:gte".into(),
            },
            IpcError::NotAllowed {
                channel: "notes:delete".into(),
            },
            IpcError::TooManyInFlight { limit: 3 },
            IpcError::TooManySubscriptions { limit: 4 },
            IpcError::TooManyRenderers { limit: 5 },
            IpcError::BadPayload {
                channel: "notes:get".into(),
                reason: "not a number".into(),
            },
            IpcError::FrameTooLarge { size: 9, limit: 8 },
            IpcError::HandshakeMismatch {
                renderer: 1,
                main: 2,
                differences: vec!["trait `Notes` differs".into()],
            },
            IpcError::ProtocolMismatch {
                renderer: 2,
                main: 1,
            },
            IpcError::ApiNotGranted(Box::new(ApiNotGranted {
                api: "WindowApi".into(),
                grant: "ListOnly".into(),
                channels: vec!["`todos:add`".into()],
            })),
            IpcError::HandlerPanicked {
                channel: "notes:get".into(),
                message: "oops".into(),
            },
            IpcError::Unauthorized {
                reason: "no token".into(),
            },
            IpcError::disconnected(DisconnectCause::MainClosed, "main is closed"),
            IpcError::Encode {
                channel: "notes:get".into(),
                reason: "refused".into(),
            },
        ];
        for e in errors {
            let wire = crate::codec::encode_to_vec(&WireError::from(&e)).unwrap();
            let back: WireError = crate::codec::decode(&wire).unwrap();
            assert_eq!(back.into_ipc().to_string(), e.to_string());
        }
    }
}
