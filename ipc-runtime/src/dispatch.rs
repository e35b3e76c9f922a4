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

/// Every channel main serves.
#[derive(Default, Clone)]
pub(crate) struct Router {
    routes: HashMap<&'static str, Route>,
    services: Vec<Arc<dyn Dispatch>>,
}

impl Router {
    /// Adds a service; a channel that another service already serves is a
    /// configuration error naming both.
    pub(crate) fn add(&mut self, service: Arc<dyn Dispatch>) -> Result<(), IpcError> {
        let d = service.descriptor();
        if let Some(existing) = self.services.iter().find(|s| s.descriptor().name == d.name) {
            return Err(IpcError::Config {
                reason: format!(
                    "service `{}` is registered twice (namespace `{}`); register each service once",
                    d.name,
                    existing.descriptor().namespace
                ),
            });
        }
        for (index, m) in d.methods.iter().enumerate() {
            if let Some(other) = self.routes.get(m.channel) {
                return Err(IpcError::Config {
                    reason: format!(
                        "channel `{}` is defined by both `{}` and `{}`; give one of the services another namespace",
                        m.channel,
                        other.service.descriptor().name,
                        d.name
                    ),
                });
            }
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

    pub(crate) fn get(&self, channel: &str) -> Option<&Route> {
        self.routes.get(channel)
    }

    pub(crate) fn descriptors(&self) -> impl Iterator<Item = &'static ServiceDescriptor> + '_ {
        self.services.iter().map(|s| s.descriptor())
    }
}
