//! Main-side dispatch: from a channel to a handler method, and back to
//! bytes.

use std::{collections::HashMap, fmt, future::Future, pin::Pin, sync::Arc};

use bytes::{Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    codec,
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

/// What a handler call produced, ready for the wire.
pub enum Outcome {
    /// The encoded return value.
    Ok(Bytes),
    /// The encoded typed error of a `Result`-returning method.
    Err(Bytes),
    /// The arguments could not be decoded (the reason).
    BadPayload(String),
    /// The call failed in the runtime.
    Failed(IpcError),
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(b) => write!(f, "Ok({} bytes)", b.len()),
            Outcome::Err(b) => write!(f, "Err({} bytes)", b.len()),
            Outcome::BadPayload(r) => write!(f, "BadPayload({r})"),
            Outcome::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

fn encode(value: &(impl Serialize + ?Sized)) -> Result<Bytes, IpcError> {
    let mut buf = BytesMut::new();
    codec::encode_into(value, &mut buf).map_err(|e| IpcError::Encode {
        channel: String::new(),
        reason: e.to_string(),
    })?;
    Ok(buf.freeze())
}

impl Outcome {
    /// The outcome of a method returning nothing.
    pub fn unit() -> Outcome {
        Outcome::Ok(Bytes::new())
    }

    /// The outcome of a method returning a plain value.
    pub fn from_value<T: Serialize>(value: &T) -> Outcome {
        match encode(value) {
            Ok(b) => Outcome::Ok(b),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// The outcome of a method returning `Result<T, E>`.
    pub fn from_result<T: Serialize, E: Serialize>(result: Result<T, E>) -> Outcome {
        match result {
            Ok(v) => Outcome::from_value(&v),
            Err(e) => match encode(&e) {
                Ok(b) => Outcome::Err(b),
                Err(e) => Outcome::Failed(e),
            },
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
    codec::decode(payload).map_err(|e| Outcome::BadPayload(e.to_string()))
}

/// Where one channel leads.
#[derive(Clone)]
pub(crate) struct Route {
    pub service: Arc<dyn Dispatch>,
    pub method: usize,
    pub kind: MethodKind,
    pub channel: &'static str,
}

/// Every channel main serves, and every event channel it may push on.
#[derive(Default, Clone)]
pub(crate) struct Router {
    routes: HashMap<&'static str, Route>,
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
        for (index, m) in d.methods.iter().enumerate() {
            self.routes.insert(
                m.channel,
                Route {
                    service: Arc::clone(&service),
                    method: index,
                    kind: m.kind,
                    channel: m.channel,
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
                .get(m.channel)
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

    pub(crate) fn get(&self, channel: &str) -> Option<&Route> {
        self.routes.get(channel)
    }

    /// Every contract main knows: services, then events traits.
    pub(crate) fn descriptors(&self) -> impl Iterator<Item = &'static ServiceDescriptor> + '_ {
        self.services
            .iter()
            .map(|s| s.descriptor())
            .chain(self.event_contracts.iter().copied())
    }
}
