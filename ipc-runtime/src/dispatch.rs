//! Main-side dispatch: from a channel to a handler method, and back to
//! bytes.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    codec::{self, splice::FrameBuf, CodecError},
    contract::{MethodKind, ServiceDescriptor},
    IpcError,
};

/// A boxed, sendable future, as the generated client methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Serves one service's channels: implemented by the `…Server` types that
/// `#[service]` generates. Register one with
/// [`MainBuilder::service`](crate::MainBuilder::service); there is no need to
/// implement this trait by hand.
pub trait Dispatch: Send + Sync + 'static {
    /// The service's contract.
    fn descriptor(&self) -> &'static ServiceDescriptor;

    /// Starts method number `method` (its index in the descriptor) on the
    /// encoded arguments `payload`.
    fn call(&self, method: usize, payload: Bytes) -> Handler;
}

/// Names the contract a `…Server` serves, so that
/// [`MainBuilder`](crate::MainBuilder) can check at compile time that no
/// two registered contracts share a channel. `#[service]` implements it
/// next to [`Dispatch`].
pub trait Served {
    /// The `…Contract` type of the served trait.
    type Contract: crate::Service;
}

/// A handler call in progress, as [`Dispatch::call`] returns it.
///
/// One allocation holds the handler's future and, once it has finished,
/// its value; main encodes the value straight into the connection's write
/// buffer, so that a large reply is never copied through a buffer of its
/// own. The generated `…Server`s build it.
pub struct Handler(Pin<Box<dyn Run>>);

/// How a handler call ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// It returned a value, which [`Handler::encode_value`] encodes.
    Ok,
    /// It returned its typed error, which [`Handler::encode_value`] encodes.
    Err,
    /// The arguments could not be decoded (why).
    BadPayload(CodecError),
    /// The call failed in the runtime.
    Failed(IpcError),
}

/// What a handler's future resolves to: its value or typed error, or the
/// outcome of a call that could not run.
type Ret<T, E> = Result<Result<T, E>, Outcome>;

/// A [`Handler`]'s type-erased inside.
trait Run: Send {
    fn poll_run(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome>;
    fn encode_value(
        self: Pin<&mut Self>,
        dst: &mut FrameBuf<'_>,
        check: bool,
    ) -> Result<(), CodecError>;
}

pin_project_lite::pin_project! {
    /// A handler's future, then its value.
    struct Running<F, T, E> {
        #[pin]
        future: F,
        value: Option<Result<T, E>>,
        finished: bool,
    }
}

impl<F, T, E> Run for Running<F, T, E>
where
    F: Future<Output = Ret<T, E>> + Send,
    T: Serialize + DeserializeOwned + Send,
    E: Serialize + DeserializeOwned + Send,
{
    fn poll_run(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.project();
        if *this.finished {
            return Poll::Ready(Outcome::Failed(IpcError::protocol(
                "internal error: a handler was polled after it finished",
            )));
        }
        let ret = std::task::ready!(this.future.poll(cx));
        *this.finished = true;
        Poll::Ready(match ret {
            Ok(Ok(value)) => {
                *this.value = Some(Ok(value));
                Outcome::Ok
            }
            Ok(Err(error)) => {
                *this.value = Some(Err(error));
                Outcome::Err
            }
            Err(outcome) => outcome,
        })
    }

    fn encode_value(
        self: Pin<&mut Self>,
        dst: &mut FrameBuf<'_>,
        check: bool,
    ) -> Result<(), CodecError> {
        match self.project().value.take() {
            Some(Ok(value)) => {
                dst.encode_checked(&value, codec::check_for::<T>().filter(|_| check))
            }
            Some(Err(error)) => {
                dst.encode_checked(&error, codec::check_for::<E>().filter(|_| check))
            }
            None => Err(CodecError::Encode(
                "internal error: the handler has no value to encode".into(),
            )),
        }
    }
}

impl Handler {
    /// A handler running `future`.
    pub(crate) fn new<F, T, E>(future: F) -> Handler
    where
        F: Future<Output = Ret<T, E>> + Send + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Serialize + DeserializeOwned + Send + 'static,
    {
        Handler(Box::pin(Running {
            future,
            value: None,
            finished: false,
        }))
    }

    /// A call that fails with `error` without running anything.
    pub(crate) fn failed(error: IpcError) -> Handler {
        Handler::new(async move { Ret::<(), ()>::Err(Outcome::Failed(error)) })
    }

    /// The handler for a method index the service does not have (only a
    /// bug in the router could cause it).
    pub fn no_such_method(method: usize) -> Handler {
        Handler::failed(IpcError::protocol(format!("no method with index {method}")))
    }

    /// Polls the handler; once it is ready, it must not be polled again.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        self.0.as_mut().poll_run(cx)
    }

    /// Appends the encoding of the value (or typed error) the handler
    /// returned to `dst`; with `check`, in debug builds, checks that it
    /// survives the wire format ([`codec::check_for`]).
    pub(crate) fn encode_value(
        &mut self,
        dst: &mut FrameBuf<'_>,
        check: bool,
    ) -> Result<(), CodecError> {
        self.0.as_mut().encode_value(dst, check)
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler")
    }
}

/// Decodes a method's argument tuple; on failure, the outcome to reply with.
pub(crate) fn decode_args<T: DeserializeOwned>(payload: &Bytes) -> Result<T, Outcome> {
    codec::decode_shared(payload).map_err(Outcome::BadPayload)
}

/// Runs `handler` on the arguments decoded from `payload`.
pub(crate) fn serve<A, T, E, F, Fut>(payload: Bytes, handler: F) -> Handler
where
    A: DeserializeOwned + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
    E: Serialize + DeserializeOwned + Send + 'static,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    Handler::new(async move {
        let args = decode_args::<A>(&payload)?;
        // The frame's buffer can be reused while the handler runs.
        drop(payload);
        Ok(handler(args).await)
    })
}

/// Where one channel leads.
#[derive(Clone)]
pub(crate) struct Route {
    pub service: Arc<dyn Dispatch>,
    pub method: usize,
    pub kind: MethodKind,
    pub channel: &'static str,
    /// The route's position among main's routes (see `Router::len`).
    pub index: usize,
}

/// Every channel main serves, and every event channel it may push on.
#[derive(Default, Clone)]
pub(crate) struct Router {
    /// By the channel's bytes, as they arrive in a frame. The keys are
    /// main's own, so a fast unkeyed hash is safe: a renderer can only
    /// look up, never add colliding entries.
    routes: HashMap<&'static [u8], Route, rustc_hash::FxBuildHasher>,
    services: Vec<Arc<dyn Dispatch>>,
    /// Event channel → the events trait that declares it.
    events: HashMap<&'static str, &'static ServiceDescriptor>,
    event_contracts: Vec<&'static ServiceDescriptor>,
}

impl Router {
    /// Adds a service; a channel that another service already serves is a
    /// configuration error naming both.
    pub(crate) fn add(&mut self, service: Arc<dyn Dispatch>) -> Result<(), IpcError> {
        let d = service.descriptor();
        self.check_new(d)?;
        for (method, m) in d.methods.iter().enumerate() {
            let index = self.routes.len();
            self.routes.insert(
                m.channel.as_bytes(),
                Route {
                    service: Arc::clone(&service),
                    method,
                    kind: m.kind,
                    channel: m.channel,
                    index,
                },
            );
        }
        self.services.push(service);
        Ok(())
    }

    /// Adds an events trait: main may push on its channels, and renderers
    /// may subscribe to them.
    pub(crate) fn add_events(&mut self, d: &'static ServiceDescriptor) -> Result<(), IpcError> {
        self.check_new(d)?;
        for m in d.methods {
            self.events.insert(m.channel, d);
        }
        self.event_contracts.push(d);
        Ok(())
    }

    /// A contract may be added once, and none of its channels may already
    /// be defined by another contract.
    fn check_new(&self, d: &'static ServiceDescriptor) -> Result<(), IpcError> {
        if self.descriptors().any(|e| e.name == d.name) {
            return Err(IpcError::Config {
                reason: format!(
                    "`{}` is registered twice (namespace `{}`); register each contract once",
                    d.name, d.namespace
                ),
            });
        }
        for m in d.methods {
            let other = self
                .routes
                .get(m.channel.as_bytes())
                .map(|r| r.service.descriptor().name)
                .or_else(|| self.events.get(m.channel).map(|e| e.name));
            if let Some(other) = other {
                return Err(IpcError::Config {
                    reason: format!(
                        "channel `{}` is defined by both `{other}` and `{}`; give one of them another namespace",
                        m.channel, d.name
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether main may push events on `channel`.
    pub(crate) fn is_event(&self, channel: &str) -> bool {
        self.events.contains_key(channel)
    }

    /// The route for a channel name as it arrived in a frame.
    pub(crate) fn get(&self, channel: &[u8]) -> Option<&Route> {
        self.routes.get(channel)
    }

    /// For each route (by [`Route::index`]), whether `grant` allows it.
    pub(crate) fn allowed_by(&self, grant: &crate::contract::Grant) -> Box<[bool]> {
        let mut allowed = vec![false; self.routes.len()];
        for route in self.routes.values() {
            allowed[route.index] = grant.allows(route.channel);
        }
        allowed.into_boxed_slice()
    }

    /// Every contract main knows: services, then events traits.
    pub(crate) fn descriptors(&self) -> impl Iterator<Item = &'static ServiceDescriptor> + '_ {
        self.services
            .iter()
            .map(|s| s.descriptor())
            .chain(self.event_contracts.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use bytes::BytesMut;

    use super::*;

    fn poll(handler: &mut Handler) -> Poll<Outcome> {
        handler.poll(&mut Context::from_waker(Waker::noop()))
    }

    /// The bytes `encode_value` appends.
    fn value_of(handler: &mut Handler) -> Result<Vec<u8>, CodecError> {
        let (mut buf, mut splices) = (BytesMut::new(), Vec::new());
        handler.encode_value(&mut FrameBuf::new(&mut buf, &mut splices), true)?;
        Ok(buf.to_vec())
    }

    fn args<T: Serialize>(value: &T) -> Bytes {
        codec::encode_to_vec(value).unwrap().into()
    }

    #[test]
    fn a_value_is_kept_until_encoded_and_encoded_once() {
        let mut handler = serve(args(&(20u64, 22u64)), |(a, b): (u64, u64)| async move {
            Ok::<u64, ()>(a + b)
        });
        assert!(matches!(poll(&mut handler), Poll::Ready(Outcome::Ok)));
        assert_eq!(
            value_of(&mut handler).unwrap(),
            codec::encode_to_vec(&42u64).unwrap()
        );
        assert!(
            matches!(value_of(&mut handler), Err(CodecError::Encode(_))),
            "a value is encoded once"
        );
        assert!(
            matches!(poll(&mut handler), Poll::Ready(Outcome::Failed(_))),
            "a finished handler is not polled again"
        );
    }

    #[test]
    fn a_typed_error_is_encoded_as_the_error() {
        let mut handler = serve(args(&("x",)), |(s,): (String,)| async move {
            Err::<u64, String>(format!("no {s}"))
        });
        assert!(matches!(poll(&mut handler), Poll::Ready(Outcome::Err)));
        assert_eq!(
            value_of(&mut handler).unwrap(),
            codec::encode_to_vec(&"no x").unwrap()
        );
    }

    #[test]
    fn arguments_that_do_not_decode_never_reach_the_handler() {
        let mut handler = serve(args(&("not a number",)), |(_,): (u64,)| async move {
            unreachable!("the handler runs only on decoded arguments");
            #[allow(unreachable_code)]
            Ok::<(), ()>(())
        });
        assert!(matches!(
            poll(&mut handler),
            Poll::Ready(Outcome::BadPayload(_))
        ));
        assert!(matches!(
            poll(&mut Handler::no_such_method(9)),
            Poll::Ready(Outcome::Failed(e)) if e.to_string().contains("no method with index 9")
        ));
    }

    #[test]
    fn a_waiting_handler_is_pending_until_its_future_is_ready() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let mut handler = serve(args(&()), move |(): ()| async move {
            Ok::<u8, ()>(rx.await.unwrap_or(0))
        });
        assert!(poll(&mut handler).is_pending());
        tx.send(5).unwrap();
        assert!(matches!(poll(&mut handler), Poll::Ready(Outcome::Ok)));
        assert_eq!(
            value_of(&mut handler).unwrap(),
            codec::encode_to_vec(&5u8).unwrap()
        );
    }
}
