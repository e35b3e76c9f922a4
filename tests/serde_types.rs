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
    use ipc_runtime::{events, expose, service};

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

    /// A field always skipped when encoding, which serde does not tell
    /// the encoder about: the receiver reads the next field's bytes in
    /// its place.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Secret {
        #[serde(skip_serializing)]
        pub secret: u32,
        pub items: Vec<u32>,
    }

    /// A variant skipped by serde before others: `Low` is encoded as the
    /// second variant and decoded as the second one decoding knows, `High`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Level {
        #[serde(skip)]
        Internal,
        Low,
        High,
    }

    /// Lowercased as it is decoded: a value built in capitals does not
    /// arrive as sent.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(from = "String", into = "String")]
    pub struct Tag(pub String);

    impl From<String> for Tag {
        fn from(s: String) -> Tag {
            Tag(s.to_lowercase())
        }
    }

    impl From<Tag> for String {
        fn from(t: Tag) -> String {
            t.0
        }
    }

    /// Odd numbers are refused as they are decoded.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(try_from = "u32")]
    pub struct Even(pub u32);

    impl TryFrom<u32> for Even {
        type Error = String;
        fn try_from(n: u32) -> Result<Even, String> {
            if n % 2 == 0 {
                Ok(Even(n))
            } else {
                Err(format!("{n} is odd"))
            }
        }
    }

    /// Encoded under a fresh nonce each time: other bytes for one value.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Sealed(pub u32);

    static NONCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

    impl Serialize for Sealed {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let nonce = NONCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (nonce, self.0 ^ nonce).serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for Sealed {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let (nonce, sealed) = <(u32, u32)>::deserialize(d)?;
            Ok(Sealed(sealed ^ nonce))
        }
    }

    /// Panics as it is decoded.
    #[derive(Debug, Clone, Serialize)]
    pub struct Fragile(pub u8);

    impl<'de> Deserialize<'de> for Fragile {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            panic!("Fragile is decoded only where it is expected")
        }
    }

    #[events(namespace = "shape-events")]
    pub trait ShapeEvents {
        /// A level.
        fn level(&self, level: Level);
        /// Some numbers.
        fn nums(&self, nums: Vec<u32>);
        /// A value that panics as it is decoded.
        fn fragile(&self, fragile: Fragile);
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
        /// Takes a struct with a field always skipped when encoding.
        async fn secret(&self, secret: Secret) -> u32;
        /// Returns `Level::Low`.
        async fn level(&self) -> Level;
        /// Returns the tag's text as main received it.
        async fn tag(&self, tag: Tag) -> String;
        /// Returns `Tag("LOUD")`, built in capitals.
        async fn loud_tag(&self) -> Tag;
        /// Returns the number.
        async fn even(&self, even: Even) -> u32;
        /// Returns the number.
        async fn sealed(&self, sealed: Sealed) -> u32;
        /// Returns `counts` without the keys in `drop`.
        async fn tally(
            &self,
            counts: HashMap<String, u32>,
            drop: std::collections::HashSet<String>,
        ) -> HashMap<String, u32>;
    }

    expose! {
        pub struct ShapesApi {
            shapes: Shapes {
                area, unit, draw, flat, sparse, ping, mark, secret, level, tally, tag, loud_tag,
                even, sealed,
            },
            events: ShapeEvents { level, nums, fragile },
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
        async fn secret(&self, secret: Secret) -> u32 {
            secret.secret
        }
        async fn level(&self) -> Level {
            Level::Low
        }
        async fn even(&self, even: Even) -> u32 {
            even.0
        }
        async fn sealed(&self, sealed: Sealed) -> u32 {
            sealed.0
        }
        async fn tag(&self, tag: Tag) -> String {
            tag.0
        }
        async fn loud_tag(&self) -> Tag {
            Tag("LOUD".into())
        }
        async fn tally(
            &self,
            mut counts: HashMap<String, u32>,
            drop: std::collections::HashSet<String>,
        ) -> HashMap<String, u32> {
            counts.retain(|k, _| !drop.contains(k));
            counts
        }
    }
}

use shapes::{
    Even, Flat, Fragile, Level, Plain, Sealed, Secret, Shape, ShapeEventsContract,
    ShapeEventsEmitter, ShapesApi, ShapesServer, Sparse, Tag,
};

async fn connected() -> (Main, ShapesApi, Arc<AtomicU32>) {
    let (main, api, marked, _) = connected_raw().await;
    (main, api, marked)
}

/// Also a `ClientCore` on the same connection: it encodes what it is
/// given without the check the generated clients make in debug builds
/// (as a release build, or another client, would send it).
async fn connected_raw() -> (Main, ShapesApi, Arc<AtomicU32>, ipc_runtime::ClientCore) {
    connected_checking(cfg!(debug_assertions)).await
}

/// [`connected_raw`], with the round-trip check on or off on both sides.
async fn connected_checking(
    check: bool,
) -> (Main, ShapesApi, Arc<AtomicU32>, ipc_runtime::ClientCore) {
    let plain = Plain::default();
    let marked = plain.marked.clone();
    // Main tells the renderer why a reply could not be encoded: these tests
    // read it there.
    let main = Main::builder()
        .service(ShapesServer::new(plain))
        .events::<ShapeEventsContract>()
        .check_round_trips(check)
        .forward_failure_details(true)
        .build()
        .unwrap();
    let (main_end, renderer_end) = ipc_runtime::transport::memory_pair(256 * 1024);
    let (accepted, conn) = tokio::join!(
        main.accept::<ShapesApi>(main_end, "shapes"),
        ipc_runtime::Connection::builder()
            .api::<ShapesApi>()
            .check_round_trips(check)
            .connect(renderer_end)
    );
    accepted.unwrap();
    let conn = conn.unwrap();
    let api = <ShapesApi as ipc_runtime::Api>::__from_connection(conn.clone());
    (main, api, marked, ipc_runtime::ClientCore::new(&conn))
}

/// What a generated client or emitter reports, in debug builds, for a
/// value that does not survive the wire format: it is refused on the
/// sender, naming its type and why.
fn refused_on_the_sender(e: IpcError, type_name: &str, why: &str) {
    match e {
        IpcError::Encode { reason, .. } => assert!(
            reason.contains(&format!(
                "{type_name}` does not survive the IPC wire format: "
            )) && reason.contains(why)
                && reason.contains("(checked in debug builds only;"),
            "{reason}"
        ),
        other => panic!("expected Encode, got {other:?}"),
    }
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
    let (main, api, marked, unchecked) = connected_raw().await;
    let circle = (Shape::Circle { r: 2 },);
    for _ in 0..20 {
        let e = unchecked
            .invoke::<_, u32>("shapes:area", &circle)
            .await
            .unwrap_err();
        let why = reason(e);
        assert!(
            why.contains("Shape,)` cannot be decoded from the IPC wire format")
                && why.contains("internally tagged enum Shape")
                && why.contains("`#[serde(tag = \"…\")]`"),
            "{why}"
        );
    }
    for _ in 0..20 {
        unchecked.send("shapes:draw", &circle).await.unwrap();
    }
    // Sends are handled in order: once this one is, so were the others.
    api.shapes.mark(1).await.unwrap();
    let marked = || marked.load(Ordering::SeqCst) == 1;
    assert!(ipc_suite::eventually(Duration::from_secs(10), marked).await);
    assert_eq!(api.shapes.ping(7).await.unwrap(), 7);
    let stats = main.renderer_stats(api.id()).expect("still connected");
    assert_eq!(stats.violations, 0);
}

/// The generated client refuses such arguments on the sender, in debug
/// builds, before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_client_refuses_arguments_no_bytes_can_decode() {
    let (main, api, _) = connected().await;
    let e = api.shapes.area(Shape::Circle { r: 2 }).await.unwrap_err();
    if cfg!(debug_assertions) {
        refused_on_the_sender(e, "Shape,)", "cannot be decoded from the IPC wire format");
    } else {
        assert!(reason(e).contains("cannot be decoded from the IPC wire format"));
    }
    let e = api.shapes.draw(Shape::Circle { r: 2 }).await;
    if cfg!(debug_assertions) {
        refused_on_the_sender(e.unwrap_err(), "Shape,)", "internally tagged enum Shape");
    }
    assert_eq!(main.renderer_stats(api.id()).unwrap().violations, 0);
}

/// A reply no bytes can decode fails the call, naming the type: refused
/// by main's encoder in debug builds, by the renderer's decoder in
/// release builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_no_bytes_can_decode_names_its_type() {
    let (_main, api, _) = connected().await;
    let e = api.shapes.unit().await.unwrap_err();
    if cfg!(debug_assertions) {
        refused_on_the_sender(e, "Shape", "cannot be decoded from the IPC wire format");
    } else {
        let why = reason(e);
        assert!(
            why.starts_with("the reply could not be decoded: `")
                && why.contains("Shape` cannot be decoded from the IPC wire format"),
            "{why}"
        );
    }
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

/// Fields and variants skipped on one side only in ways serde does not
/// tell the encoder about garble what follows them; in debug builds the
/// generated clients, handlers and emitters decode what they encoded and
/// refuse a value that does not come back the same, on the sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_skipped_on_one_side_only_are_refused_on_the_sender_in_debug_builds() {
    if !cfg!(debug_assertions) {
        return;
    }
    let (main, api, _, unchecked) = connected_raw().await;
    let secret = Secret {
        secret: 5,
        items: vec![0],
    };
    // Unchecked, main's handler reads a different value: no error at all.
    let args = (secret.clone(),);
    let read: u32 = unchecked.invoke("shapes:secret", &args).await.unwrap();
    assert_eq!(read, 1, "the length of `items`, read as `secret`");
    // Checked, the client refuses it.
    let e = api.shapes.secret(secret).await.unwrap_err();
    refused_on_the_sender(e, "Secret,)", "decodes as a different value");
    // A reply: main's encoder refuses `Level::Low` (it would decode as
    // `High`), and the caller is told.
    refused_on_the_sender(
        api.shapes.level().await.unwrap_err(),
        "Level",
        "decodes as a different value",
    );
    // An event: not sent, where an unchecked emit queues it. (`High`
    // does not decode at all: serde's own words, "expected variant index
    // 0 <= i < 2", which the check leaves to the receiver, as it does a
    // type's validation.)
    let _listening = api.events.on_level(|_| {}).await.unwrap();
    assert!(main.subscribed(api.id(), "shape-events:level").await);
    let levels = ShapeEventsEmitter::new(&main, ipc_runtime::Target::All);
    assert_eq!(levels.level(Level::Low), 0);
    assert_eq!(levels.level(Level::High), 1);
    let unchecked_emitter = ipc_runtime::EmitterCore::new(&main, ipc_runtime::Target::All);
    assert_eq!(
        unchecked_emitter.emit("shape-events:level", &(Level::Low,)),
        1
    );
    assert_eq!(main.renderer_stats(api.id()).unwrap().violations, 0);
}

/// Maps and sets list their entries in another order in each copy: the
/// debug-build check does not take that for a value that does not
/// survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_maps_and_sets_cross_both_ways() {
    let (_main, api, _) = connected().await;
    let counts: HashMap<String, u32> = (0..100).map(|i| (format!("k{i}"), i)).collect();
    let drop: std::collections::HashSet<String> = (0..50).map(|i| format!("k{}", i * 2)).collect();
    let kept = api.shapes.tally(counts.clone(), drop).await.unwrap();
    let expected: HashMap<String, u32> = counts.into_iter().filter(|(_, v)| v % 2 == 1).collect();
    assert_eq!(kept, expected);
}

/// A type that normalizes as it is decoded does not arrive as sent: the
/// check refuses it, and an app that means it turns the check off, on the
/// renderer (`ConnectionBuilder::check_round_trips`) and on main
/// (`MainBuilder::check_round_trips`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_check_can_be_turned_off_for_types_that_normalize() {
    if cfg!(debug_assertions) {
        let (_main, api, _) = connected().await;
        let e = api.shapes.tag(Tag("ABC".into())).await.unwrap_err();
        refused_on_the_sender(e, "Tag,)", "decodes as a different value");
        let e = api.shapes.loud_tag().await.unwrap_err();
        refused_on_the_sender(e, "Tag", "decodes as a different value");
    }
    let (_main, api, _, _) = connected_checking(false).await;
    assert_eq!(api.shapes.tag(Tag("ABC".into())).await.unwrap(), "abc");
    assert_eq!(api.shapes.loud_tag().await.unwrap(), Tag("loud".into()));
}

/// What the round-trip check does not judge, so lets through: a value its
/// type's own `Deserialize` refuses (a validation may need what only the
/// receiver has; the receiver applies it), a `Serialize` that writes other
/// bytes each time (a nonce), a panic in the type's code on the sender,
/// and a sender thread whose stack is too small for the decoder's guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_check_leaves_what_it_cannot_judge_to_the_receiver() {
    let (main, api, _) = connected().await;
    match api.shapes.even(Even(3)).await.unwrap_err() {
        IpcError::BadPayload { reason, .. } => assert!(reason.contains("3 is odd"), "{reason}"),
        other => panic!("expected main's BadPayload, got {other:?}"),
    }
    assert_eq!(api.shapes.even(Even(4)).await.unwrap(), 4);
    assert_eq!(api.shapes.sealed(Sealed(42)).await.unwrap(), 42);
    let emitter = ShapeEventsEmitter::new(&main, ipc_runtime::Target::All);
    let fragile =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| emitter.fragile(Fragile(1))));
    assert_eq!(
        fragile.ok(),
        Some(0),
        "no listener, and no panic out of emit"
    );
    let _listening = api.events.on_nums(|_| {}).await.unwrap();
    assert!(main.subscribed(api.id(), "shape-events:nums").await);
    let small_stack = std::thread::Builder::new()
        .stack_size(144 * 1024)
        .spawn(move || emitter.nums(vec![1, 2, 3]))
        .unwrap();
    assert_eq!(small_stack.join().unwrap(), 1);
}
