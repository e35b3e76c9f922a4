//! Types serde can describe but the wire format (bincode) cannot carry:
//! internally tagged and untagged enums, `#[serde(flatten)]`, fields
//! skipped when encoding. They compile (the contract cannot see serde's
//! attributes), so each fails at run time with an error that names the
//! cause, on the sender where it can; and a type no bytes can decode is
//! the contract's mistake, not the renderer's: main does not count it as
//! a violation, so an honest renderer is never disconnected for it.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use ipc_runtime::{IpcError, Main};
use serde::{Deserialize, Serialize};

pub mod shapes {
    use super::*;
    use ipc_runtime::{expose, service};

    /// Internally tagged: serialises, but decoding needs `deserialize_any`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum Shape {
        Circle { r: u32 },
    }

    /// Flattened: bincode cannot even encode it (a map of unknown length).
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Flat {
        pub id: u32,
        #[serde(flatten)]
        pub rest: HashMap<String, u32>,
    }

    /// A field skipped when encoding: the decoder reads the next field's
    /// bytes in its place.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Sparse {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub note: Option<String>,
        pub count: u8,
    }

    #[service(namespace = "shapes")]
    pub trait Shapes {
        /// Takes a tagged enum.
        async fn area(&self, shape: Shape) -> u32;
        /// Returns a tagged enum.
        async fn unit(&self) -> Shape;
        /// Takes a tagged enum, one way.
        #[ipc(send)]
        async fn draw(&self, shape: Shape);
        /// Takes a flattened struct.
        async fn flat(&self, flat: Flat) -> u32;
        /// Takes a struct with a field skipped when encoding.
        async fn sparse(&self, sparse: Sparse) -> u8;
        /// Plain types: works throughout.
        async fn ping(&self, n: u32) -> u32;
        /// Records `n`, one way (sends are handled in order).
        #[ipc(send)]
        async fn mark(&self, n: u32);
    }

    expose! {
        pub struct ShapesApi {
            shapes: Shapes { area, unit, draw, flat, sparse, ping, mark },
        }
    }

    #[derive(Default)]
    pub struct Plain {
        pub marked: std::sync::Arc<std::sync::atomic::AtomicU32>,
    }

    impl Shapes for Plain {
        async fn area(&self, _: Shape) -> u32 {
            unreachable!("arguments that do not decode never reach the handler")
        }
        async fn unit(&self) -> Shape {
            Shape::Circle { r: 1 }
        }
        async fn draw(&self, _: Shape) {
            unreachable!("arguments that do not decode never reach the handler")
        }
        async fn flat(&self, flat: Flat) -> u32 {
            flat.id
        }
        async fn sparse(&self, sparse: Sparse) -> u8 {
            sparse.count
        }
        async fn ping(&self, n: u32) -> u32 {
            n
        }
        async fn mark(&self, n: u32) {
            self.marked.store(n, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

use shapes::{Flat, Plain, Shape, ShapesApi, ShapesServer, Sparse};

async fn connected() -> (Main, ShapesApi, Arc<AtomicU32>) {
    let plain = Plain::default();
    let marked = plain.marked.clone();
    let main = Main::builder()
        .service(ShapesServer::new(plain))
        .build()
        .unwrap();
    let api = ipc_suite::connect_memory_as::<ShapesApi>(&main, "shapes")
        .await
        .unwrap();
    (main, api, marked)
}

fn reason(e: IpcError) -> String {
    match e {
        IpcError::BadPayload { reason, .. } => reason,
        other => panic!("expected BadPayload, got {other:?}"),
    }
}

/// More calls than `max_violations` (8) allows: every one fails naming
/// the type and what to use instead, the renderer stays connected with no
/// violation counted, and its other calls work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_no_bytes_can_decode_fail_each_call_without_a_violation() {
    let (main, api, marked) = connected().await;
    for _ in 0..20 {
        let e = api.shapes.area(Shape::Circle { r: 2 }).await.unwrap_err();
        let why = reason(e);
        assert!(
            why.contains("Shape,)` cannot be decoded from the IPC wire format")
                && why.contains("internally tagged enum Shape")
                && why.contains("`#[serde(tag = \"…\")]`"),
            "{why}"
        );
    }
    for _ in 0..20 {
        api.shapes.draw(Shape::Circle { r: 2 }).await.unwrap();
    }
    // Sends are handled in order: once this one is, so were the others.
    api.shapes.mark(1).await.unwrap();
    let marked = || marked.load(Ordering::SeqCst) == 1;
    assert!(ipc_suite::eventually(Duration::from_secs(10), marked).await);
    assert_eq!(api.shapes.ping(7).await.unwrap(), 7);
    let stats = main.renderer_stats(api.id()).expect("still connected");
    assert_eq!(stats.violations, 0);
}

/// A reply no bytes can decode fails the call on the renderer, naming
/// the type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_no_bytes_can_decode_names_its_type() {
    let (_main, api, _) = connected().await;
    let why = reason(api.shapes.unit().await.unwrap_err());
    assert!(
        why.starts_with("the reply could not be decoded: `")
            && why.contains("Shape` cannot be decoded from the IPC wire format"),
        "{why}"
    );
}

/// A flattened struct fails on the renderer, before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flattened_argument_fails_to_encode_naming_flatten() {
    let (main, api, _) = connected().await;
    let flat = Flat {
        id: 1,
        rest: HashMap::new(),
    };
    match api.shapes.flat(flat).await.unwrap_err() {
        IpcError::Encode { reason, .. } => assert!(
            reason.contains("`#[serde(flatten)]`") && reason.contains("writes the length first"),
            "{reason}"
        ),
        other => panic!("expected Encode, got {other:?}"),
    }
    assert_eq!(main.renderer_stats(api.id()).unwrap().violations, 0);
}

/// A field skipped when encoding would garble what follows it (bincode
/// writes no field names): the sender refuses it, naming the field, and
/// nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_skipped_when_encoding_is_refused_by_the_sender() {
    let (main, api, _) = connected().await;
    let sparse = Sparse {
        note: None,
        count: 3,
    };
    match api.shapes.sparse(sparse).await.unwrap_err() {
        IpcError::Encode { reason, .. } => assert!(
            reason.starts_with("field `note` of `Sparse` was skipped when encoding ("),
            "{reason}"
        ),
        other => panic!("expected Encode, got {other:?}"),
    }
    let sparse = Sparse {
        note: Some("kept".into()),
        count: 3,
    };
    assert_eq!(api.shapes.sparse(sparse).await.unwrap(), 3);
    assert_eq!(main.renderer_stats(api.id()).unwrap().violations, 0);
}
