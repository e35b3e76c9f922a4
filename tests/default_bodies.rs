//! Default method bodies in a service trait are served when the handler
//! does not override them, whatever their shape: an early `return`, `?` on
//! a `Result`, a value converted to the declared type, `self` used; and an
//! override wins.

use ipc_runtime::{expose, service, CallError, Main};
use ipc_suite::connect_memory_as;
use serde::{Deserialize, Serialize};

/// The typed error of `parse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("not a number: {0}")]
pub struct NotANumber(String);

#[service(namespace = "defaults")]
pub trait Defaults {
    /// Early return.
    async fn sign(&self, n: i64) -> String {
        if n < 0 {
            return "negative".to_string();
        }
        "not negative".into()
    }
    /// `?` in the body.
    async fn parse(&self, text: String) -> Result<u64, NotANumber> {
        let n: u64 = text.parse().map_err(|_| NotANumber(text.clone()))?;
        Ok(n * 2)
    }
    /// Uses another method through `self`.
    async fn twice(&self, text: String) -> u64 {
        self.base().await * 2 + text.len() as u64
    }
    /// Overridden by the handler.
    async fn base(&self) -> u64 {
        0
    }
}

expose! {
    /// All of it.
    pub struct DefaultsApi {
        defaults: Defaults { sign, parse, twice, base },
    }
}

struct Handler;

impl Defaults for Handler {
    async fn base(&self) -> u64 {
        10
    }
}

#[tokio::test]
async fn default_bodies_are_served_and_overrides_win() {
    let main = Main::builder()
        .service(DefaultsServer::new(Handler))
        .build()
        .unwrap();
    let api = connect_memory_as::<DefaultsApi>(&main, "defaults")
        .await
        .unwrap();
    let d = &api.defaults;
    assert_eq!(d.sign(-1).await.unwrap(), "negative");
    assert_eq!(d.sign(1).await.unwrap(), "not negative");
    assert_eq!(d.parse("21".into()).await.unwrap(), 42);
    let bad = d.parse("x".into()).await;
    assert!(
        matches!(&bad, Err(CallError::Handler(NotANumber(t))) if t == "x"),
        "{bad:?}"
    );
    assert_eq!(d.base().await.unwrap(), 10);
    assert_eq!(d.twice("abc".into()).await.unwrap(), 23);
}
