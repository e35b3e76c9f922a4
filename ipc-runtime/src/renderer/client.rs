//! What every generated client is made of.

use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use super::{Connection, Reply};
use crate::{codec, CallError, IpcError};

/// The part shared by every generated `…Client`: a connection and an
/// optional timeout override. Generated code calls its methods; you use the
/// generated client instead.
#[derive(Clone, Debug)]
pub struct ClientCore {
    conn: Connection,
    timeout: Option<Duration>,
}

fn bad_reply(channel: &str, e: codec::CodecError) -> IpcError {
    IpcError::BadPayload {
        channel: channel.to_string(),
        reason: format!("the reply could not be decoded: {e}"),
    }
}

impl ClientCore {
    /// A core calling over `conn` with its default timeout.
    pub fn new(conn: &Connection) -> Self {
        ClientCore {
            conn: conn.clone(),
            timeout: None,
        }
    }

    /// The same core with another timeout.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        ClientCore {
            conn: self.conn.clone(),
            timeout: Some(timeout),
        }
    }

    /// The same core for a method declared with `#[ipc(timeout_secs = N)]`
    /// (what its generated method uses): its calls wait `declared`, or the
    /// connection's `call_timeout` if that is longer (a declaration says
    /// how long the method's work may take, and does not cut short a
    /// connection made to wait longer). A timeout set with
    /// [`ClientCore::with_timeout`] is kept: it overrides both.
    pub fn with_declared_timeout(&self, declared: Duration) -> Self {
        ClientCore {
            conn: self.conn.clone(),
            timeout: Some(
                self.timeout
                    .unwrap_or_else(|| declared.max(self.conn.call_timeout())),
            ),
        }
    }

    fn timeout(&self) -> Duration {
        self.timeout.unwrap_or_else(|| self.conn.call_timeout())
    }

    /// Calls a method without a typed error.
    pub async fn invoke<A: Serialize, T: DeserializeOwned>(
        &self,
        channel: &'static str,
        args: &A,
    ) -> Result<T, IpcError> {
        self.invoke_checked(channel, args, None).await
    }

    /// [`ClientCore::invoke`], running `check` on the encoded arguments
    /// (what the generated clients do: [`codec::check_for`]).
    pub(crate) async fn invoke_checked<A: Serialize, T: DeserializeOwned>(
        &self,
        channel: &'static str,
        args: &A,
        check: Option<codec::Check>,
    ) -> Result<T, IpcError> {
        match self.conn.call(channel, args, check, self.timeout()).await? {
            Reply::Ok(bytes) => codec::decode_shared(&bytes).map_err(|e| bad_reply(channel, e)),
            Reply::Err(_) => Err(IpcError::protocol(format!(
                "main sent a typed error for `{channel}`, which declares none; main and renderer disagree on the contract"
            ))),
            Reply::Failed(e) => Err(e),
        }
    }

    /// Calls a method returning `Result<T, E>`.
    pub async fn invoke_fallible<A: Serialize, T: DeserializeOwned, E: DeserializeOwned>(
        &self,
        channel: &'static str,
        args: &A,
    ) -> Result<T, CallError<E>> {
        self.invoke_fallible_checked(channel, args, None).await
    }

    /// [`ClientCore::invoke_fallible`], running `check` on the encoded
    /// arguments.
    pub(crate) async fn invoke_fallible_checked<
        A: Serialize,
        T: DeserializeOwned,
        E: DeserializeOwned,
    >(
        &self,
        channel: &'static str,
        args: &A,
        check: Option<codec::Check>,
    ) -> Result<T, CallError<E>> {
        match self.conn.call(channel, args, check, self.timeout()).await? {
            Reply::Ok(bytes) => {
                codec::decode_shared(&bytes).map_err(|e| bad_reply(channel, e).into())
            }
            Reply::Err(bytes) => match codec::decode_shared(&bytes) {
                Ok(e) => Err(CallError::Handler(e)),
                Err(e) => Err(bad_reply(channel, e).into()),
            },
            Reply::Failed(e) => Err(e.into()),
        }
    }

    /// Sends a fire-and-forget message: returns once it is queued, waiting
    /// at most the client's timeout for room ([`IpcError::SendTimeout`]).
    /// Queued messages are written when the connection is dropped, but not
    /// if the process ends with `std::process::exit`: await
    /// [`Connection::flush`](crate::Connection::flush) first.
    pub async fn send<A: Serialize>(
        &self,
        channel: &'static str,
        args: &A,
    ) -> Result<(), IpcError> {
        self.send_checked(channel, args, None).await
    }

    /// [`ClientCore::send`], running `check` on the encoded arguments.
    pub(crate) async fn send_checked<A: Serialize>(
        &self,
        channel: &'static str,
        args: &A,
        check: Option<codec::Check>,
    ) -> Result<(), IpcError> {
        self.conn.send(channel, args, check, self.timeout()).await
    }
}
