//! Contracts whose names could trip the generated code, used end to end: a
//! user's types called `W` and `H` (the generated types' own parameters),
//! raw identifiers written with and without `r#`, methods named like
//! methods of `Arc` (`clone`, `into`, `drop`), and an argument written as a
//! pattern beside one called `arg0`, a `send` returning `(())`, and a doc
//! comment on an `expose!` entry; two APIs whose names and fields join
//! alike (`Pair_api.x`, `Pair.api_x`); a user's `SHAPES` const in an
//! argument type and a `shapes` method on every type, beside the
//! generated code's own. The trait also declares the bounds
//! the macro adds (`Send + Sync + 'static`): repeated, they must not make
//! clippy's `trait_duplication_in_bounds` fire (denied in CI).
#![warn(clippy::trait_duplication_in_bounds)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use ipc_runtime::{events, expose, service, Main, Service as _, Target};
use ipc_suite::connect_memory_as;
use serde::{Deserialize, Serialize};

/// Named like the whitelist parameter of the generated client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct W(pub u32);

/// Named like the handler parameter of the generated server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct H(pub String);

/// Named like a static the generated descriptor once declared.
const SHAPES: usize = 2;

/// A method every type has, named like one the generated code once called.
trait Everything {
    fn shapes(&self) -> u8 {
        0
    }
}

impl<T: ?Sized> Everything for T {}

/// Awkward names, on purpose.
#[service(namespace = "names")]
pub trait Names: Send + Sync + 'static {
    /// Takes an `H`, returns a `W`.
    async fn measure(&self, h: H) -> W;
    /// A keyword as a method name.
    async fn r#type(&self) -> u64;
    /// Raw where declared, plain in the API below.
    async fn r#put(&self, n: u64) -> u64;
    /// Named like `Arc::clone`.
    async fn clone(&self) -> u64;
    /// Named like `Into::into`.
    async fn into(&self) -> u64;
    /// Named like `Drop::drop`.
    async fn drop(&self) -> u64;
    /// A pattern argument, beside one called `arg0`.
    async fn pair(&self, _: [u8; SHAPES], arg0: u64) -> u64;
    /// A `send` returning `()` in parentheses, which is still nothing.
    #[ipc(send)]
    #[allow(unused_parens)]
    async fn note(&self, n: u64) -> (());
}

/// An event carrying a `W`.
#[events(namespace = "names")]
pub trait NamesEvents {
    /// A `W` changed.
    fn changed(&self, w: W);
}

expose! {
    /// Every method, `put` written without its `r#`, `type` with it.
    pub struct NamesApi {
        /// The awkward methods (a doc comment on an entry).
        names: Names { measure, r#type, put, clone, into, drop, pair, note },
        events: NamesEvents { changed },
    }
}

expose! {
    /// Its field's internal alias must not be `Pair`'s `api_x`'s.
    #[allow(non_camel_case_types)]
    pub struct Pair_api {
        x: Names { measure },
    }

    /// See `Pair_api`.
    pub struct Pair {
        api_x: Names { measure },
    }
}

#[derive(Default)]
struct Handler {
    noted: Mutex<Vec<u64>>,
}

impl Names for Handler {
    async fn measure(&self, h: H) -> W {
        W(h.0.len() as u32)
    }
    async fn r#type(&self) -> u64 {
        1
    }
    async fn r#put(&self, n: u64) -> u64 {
        n + 1
    }
    async fn clone(&self) -> u64 {
        2
    }
    async fn into(&self) -> u64 {
        3
    }
    async fn drop(&self) -> u64 {
        4
    }
    async fn pair(&self, [a, b]: [u8; SHAPES], arg0: u64) -> u64 {
        u64::from(a) * 100 + u64::from(b) * 10 + arg0
    }
    async fn note(&self, n: u64) {
        self.noted.lock().unwrap().push(n);
    }
}

#[tokio::test]
async fn awkward_names_are_served_and_granted() {
    let handler = Arc::new(Handler::default());
    let main = Main::builder()
        .service(NamesServer::from_arc(Arc::clone(&handler)))
        .events::<NamesEventsContract>()
        .build()
        .unwrap();
    let api = connect_memory_as::<NamesApi>(&main, "names").await.unwrap();
    let names = &api.names;
    assert_eq!(names.measure(H("four".into())).await.unwrap(), W(4));
    assert_eq!(names.r#type().await.unwrap(), 1);
    assert_eq!(names.put(41).await.unwrap(), 42);
    assert_eq!(names.clone().await.unwrap(), 2);
    assert_eq!(names.into().await.unwrap(), 3);
    assert_eq!(names.drop().await.unwrap(), 4);
    assert_eq!(names.pair([1, 2], 3).await.unwrap(), 123);
    assert_eq!(names.shapes(), 0);
    names.note(5).await.unwrap();
    api.flush().await.unwrap();
    assert!(
        ipc_suite::eventually(Duration::from_secs(5), || !handler
            .noted
            .lock()
            .unwrap()
            .is_empty())
        .await
    );
    assert_eq!(*handler.noted.lock().unwrap(), vec![5]);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let _subscription = api
        .events
        .on_changed(move |w| sink.lock().unwrap().push(w))
        .await
        .unwrap();
    NamesEventsEmitter::new(&main, Target::Renderer(api.id())).changed(W(7));
    assert!(
        ipc_suite::eventually(Duration::from_secs(5), || !seen.lock().unwrap().is_empty()).await
    );
    assert_eq!(*seen.lock().unwrap(), vec![W(7)]);
}

#[test]
fn descriptors_name_methods_and_arguments_without_r_sharp() {
    let d = NamesContract::DESCRIPTOR;
    let names: Vec<&str> = d.methods.iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        ["measure", "type", "put", "clone", "into", "drop", "pair", "note"]
    );
    let pair = d.methods.iter().find(|m| m.name == "pair").unwrap();
    let args: Vec<&str> = pair.args.iter().map(|a| a.name).collect();
    assert_eq!(args, ["arg0_", "arg0"]);
}

#[tokio::test]
async fn apis_whose_names_and_fields_join_alike_both_work() {
    let main = Main::builder()
        .service(NamesServer::new(Handler::default()))
        .build()
        .unwrap();
    let a = connect_memory_as::<Pair_api>(&main, "a").await.unwrap();
    let b = connect_memory_as::<Pair>(&main, "b").await.unwrap();
    assert_eq!(a.x.measure(H("ab".into())).await.unwrap(), W(2));
    assert_eq!(b.api_x.measure(H("abc".into())).await.unwrap(), W(3));
}
