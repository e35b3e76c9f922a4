//! Main-side dispatch: from a channel to a handler method, and back to
//! bytes.

use std::{collections::HashMap, fmt, future::Future, pin::Pin, sync::Arc};

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    codec::{self, splice::FrameBuf, CodecError},
    contract::{MethodKind, ServiceDescriptor},
    IpcError,
};

/// A boxed, sendable future, as returned by [`Dispatch::call`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Serves one service's channels: implemented by the `…Server` types that
/// `#[service]` generates. Register one with
/// [`MainBuilder::service`](crate::MainBuilder::service); there is no need to
/// implement this trait by hand.
pub trait Dispatch: Send + Sync + 'static {
    /// The service's contract.
    fn descriptor(&self) -> &'static ServiceDescriptor;

    /// Runs method number `method` (its index in the descriptor) on the
    /// encoded arguments `payload`.
    fn call(&self, method: usize, payload: Bytes) -> BoxFuture<'static, Outcome>;
}

/// Names the contract a `…Server` serves, so that
/// [`MainBuilder`](crate::MainBuilder) can check at compile time that no
/// two registered contracts share a channel. `#[service]` implements it
/// next to [`Dispatch`].
pub trait Served {
    /// The `…Contract` type of the served trait.
    type Contract: crate::Service;
}

/// What a handler call produced, ready for the wire.
pub enum Outcome {
    /// The return value.
    Ok(Encoded),
    /// The typed error of a `Result`-returning method.
    Err(Encoded),
    /// The arguments could not be decoded (the reason).
    BadPayload(String),
    /// The call failed in the runtime.
    Failed(IpcError),
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(_) => f.write_str("Ok(..)"),
            Outcome::Err(_) => f.write_str("Err(..)"),
            Outcome::BadPayload(r) => write!(f, "BadPayload({r})"),
            Outcome::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

/// A handler's value, encoded only when its reply frame is written:
/// straight into the connection's write buffer, so that a large reply is
/// never copied through a buffer of its own.
pub struct Encoded(Box<EncodeFn>);

type EncodeFn = dyn FnOnce(&mut FrameBuf<'_>) -> Result<(), CodecError> + Send;

impl Encoded {
    /// Wraps `value` for encoding with the wire codec.
    pub fn new<T: Serialize + Send + 'static>(value: T) -> Self {
        Encoded(Box::new(move |dst| dst.encode(&value)))
    }

    /// Appends the value's encoding to `dst`.
    pub(crate) fn encode_into(self, dst: &mut FrameBuf<'_>) -> Result<(), CodecError> {
        (self.0)(dst)
    }
}

impl Outcome {
    /// The outcome of a method returning nothing.
    pub fn unit() -> Outcome {
        Outcome::Ok(Encoded::new(()))
    }

    /// The outcome of a method returning a plain value.
    pub fn from_value<T: Serialize + Send + 'static>(value: T) -> Outcome {
        Outcome::Ok(Encoded::new(value))
    }

    /// The outcome of a method returning `Result<T, E>`.
    pub fn from_result<T, E>(result: Result<T, E>) -> Outcome
    where
        T: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
    {
        match result {
            Ok(v) => Outcome::Ok(Encoded::new(v)),
            Err(e) => Outcome::Err(Encoded::new(e)),
        }
    }

    /// The outcome for a method index the service does not have (only a bug
    /// in the router could cause it).
    pub fn no_such_method(method: usize) -> Outcome {
        Outcome::Failed(IpcError::protocol(format!("no method with index {method}")))
    }
}

/// Decodes a method's argument tuple; on failure, the outcome to reply with.
pub fn decode_args<T: DeserializeOwned>(payload: &Bytes) -> Result<T, Outcome> {
    codec::decode_shared(payload).map_err(|e| Outcome::BadPayload(e.to_string()))
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
