//! A panic in main's task for a renderer ends that renderer's connection
//! like any other failure. The panic here comes from user code that runs
//! inside that task: a `tracing` layer that panics on one of main's
//! records. Alone in its test binary, as `tracing_layer.rs` is: the layer is
//! installed for the test's thread only.

use std::time::Duration;

use ipc_runtime::{DisconnectCause, DisconnectReason, IpcError};
use ipc_suite::{connect_memory, probe_main, with_layer_on_own_thread};

/// Panics on main's records with this message: "subscribed", which main's
/// task for the renderer logs as it handles a subscription, or "renderer
/// disconnected", which it logs as it cleans up.
struct PanicOn(&'static str);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PanicOn {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(&'static str, bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" && format!("{value:?}") == self.0 {
                    self.1 = true;
                }
            }
        }
        let mut message = Message(self.0, false);
        event.record(&mut message);
        if message.1 {
            panic!("this layer panics on `{}`", self.0);
        }
    }
}

/// The task's cleanup did not run: the renderer stayed registered for
/// ever, no disconnection was reported, and the renderer's call waited
/// for its call timeout (30 s).
#[test]
fn a_panic_while_serving_ends_the_connection_and_unregisters_it() {
    let ended =
        with_layer_on_own_thread(PanicOn("subscribed"), Duration::from_secs(10), || async {
            let (main, _) = probe_main();
            let mut gone = main.disconnections();
            let api = connect_memory(&main, "doomed").await.unwrap();
            let subscribed = api.events.on_note(|_| {}).await;
            let reason = gone.recv().await.ok().map(|gone| gone.reason);
            (subscribed.err(), reason, main.renderer_count())
        });
    let (subscribed, reason, count) =
        ended.expect("the renderer was left behind: no answer within 10 s");
    assert!(
        matches!(subscribed, Some(IpcError::Disconnected { .. })),
        "{subscribed:?}"
    );
    match reason {
        Some(DisconnectReason::Failed(why)) => {
            assert!(why.contains("this layer panics on `subscribed`"), "{why}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(count, 0);
}

/// The same for a panic in the cleanup after serving, on the "renderer
/// disconnected" record: the renderer stayed registered, even after
/// `Main::close`, and no disconnection was reported (a review of the
/// first fix, which caught panics while serving only).
#[test]
fn a_panic_while_cleaning_up_still_unregisters_the_renderer() {
    let ended = with_layer_on_own_thread(
        PanicOn("renderer disconnected"),
        Duration::from_secs(10),
        || async {
            let (main, _) = probe_main();
            let mut gone = main.disconnections();
            let api = connect_memory(&main, "doomed").await.unwrap();
            drop(api);
            let reported = tokio::time::timeout(Duration::from_secs(5), gone.recv()).await;
            let count = main.renderer_count();
            main.close().await;
            (reported.is_ok(), count, main.renderer_count())
        },
    );
    let (reported, count, after_close) = ended.expect("main froze: no answer within 10 s");
    assert!(reported, "no disconnection reported");
    assert_eq!(
        (count, after_close),
        (0, 0),
        "the renderer stayed registered"
    );
}

/// The same for a panic on "renderer connected", logged by `accept` once
/// it has registered the renderer: it stayed registered for ever.
#[test]
fn a_panic_while_accepting_does_not_leave_the_renderer_registered() {
    let ended = with_layer_on_own_thread(
        PanicOn("renderer connected"),
        Duration::from_secs(10),
        || async {
            let (main, _) = probe_main();
            let connecting = tokio::spawn({
                let main = main.clone();
                async move { connect_memory(&main, "doomed").await.map(drop) }
            });
            let panicked = connecting.await.is_err_and(|e| e.is_panic());
            let count = main.renderer_count();
            main.close().await;
            (panicked, count, main.renderer_count())
        },
    );
    let (panicked, count, after_close) = ended.expect("main froze: no answer within 10 s");
    assert!(panicked, "the layer did not panic in accept");
    assert_eq!(
        (count, after_close),
        (0, 0),
        "the renderer stayed registered"
    );
}

/// A panic on "handler panicked" in a call's own task (a handler that
/// panics after waiting, so that main finishes it in a task): the task
/// died before answering, the call waited for its timeout (30 s), and main
/// went on counting it in flight. Now the connection ends, as for a panic
/// in main's task for the renderer, and the call fails at once.
#[test]
fn a_panic_in_a_calls_task_ends_the_connection() {
    let ended = with_layer_on_own_thread(
        PanicOn("handler panicked"),
        Duration::from_secs(10),
        || async {
            let (main, _) = probe_main();
            let mut gone = main.disconnections();
            let api = connect_memory(&main, "doomed").await.unwrap();
            let call = api.probe.explode("later: boom".into()).await;
            let reason = gone.recv().await.ok().map(|gone| gone.reason);
            (call.err(), reason, main.renderer_count())
        },
    );
    let (call, reason, count) = ended.expect("the call was left unanswered: nothing within 10 s");
    // The renderer is told main failed, not the panic's message (main's).
    assert!(
        matches!(&call, Some(IpcError::Disconnected { reason, cause: DisconnectCause::MainFailed })
            if reason == "main disconnected this renderer after a failure while serving it (main's log says what failed)"),
        "{call:?}"
    );
    match reason {
        Some(DisconnectReason::Failed(why)) => assert!(
            why.contains(
                "a call's task for this renderer panicked: this layer panics on `handler panicked`"
            ),
            "{why}"
        ),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(count, 0);
}

mod sends {
    use ipc_runtime::{expose, service};

    /// One-way messages whose handler panics once it has waited.
    #[service(namespace = "fuse")]
    pub trait Fuse {
        /// Waits, then panics.
        #[ipc(send)]
        async fn light(&self);
    }

    expose! {
        /// All of it.
        pub struct FuseApi {
            fuse: Fuse { light },
        }
    }

    pub struct Lit;

    impl Fuse for Lit {
        async fn light(&self) {
            tokio::task::yield_now().await;
            panic!("bang");
        }
    }
}

/// The same in the task that handles `send` messages one after another:
/// it died, and every later message from that renderer was queued for
/// ever, unhandled.
#[test]
fn a_panic_in_the_task_handling_sends_ends_the_connection() {
    use sends::{FuseApi, FuseServer, Lit};
    let ended = with_layer_on_own_thread(
        PanicOn("handler panicked"),
        Duration::from_secs(10),
        || async {
            let main = ipc_runtime::Main::builder()
                .service(FuseServer::new(Lit))
                .build()
                .unwrap();
            let mut gone = main.disconnections();
            let api = ipc_suite::connect_memory_as::<FuseApi>(&main, "doomed")
                .await
                .unwrap();
            api.fuse.light().await.unwrap();
            let reason = gone.recv().await.ok().map(|gone| gone.reason);
            (reason, main.renderer_count())
        },
    );
    let (reason, count) = ended.expect("the connection was left behind: nothing within 10 s");
    match reason {
        Some(DisconnectReason::Failed(why)) => assert!(
            why.contains("the task handling `send` messages for this renderer panicked"),
            "{why}"
        ),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(count, 0);
}

/// A `close` that panics on its own record ("main closing: disconnecting
/// every renderer") has already disconnected the renderers and started
/// the rest of its work, so a later `close` returns once that is done.
/// The record came first: main was marked closed, nothing was shut, and
/// every later `close` waited for ever.
#[test]
fn a_close_after_one_that_panicked_returns() {
    let ended = with_layer_on_own_thread(
        PanicOn("main closing: disconnecting every renderer"),
        Duration::from_secs(20),
        || async {
            let (main, _) = probe_main();
            let api = connect_memory(&main, "window").await.unwrap();
            let first = tokio::spawn({
                let main = main.clone();
                async move { main.close().await }
            })
            .await;
            let second = tokio::time::timeout(Duration::from_secs(5), main.close()).await;
            let closed = tokio::time::timeout(Duration::from_secs(5), api.closed()).await;
            (
                first.is_err(),
                second.is_ok(),
                closed.is_ok(),
                main.renderer_count(),
            )
        },
    );
    let (first_panicked, second_returned, renderer_told, count) =
        ended.expect("the test froze: no answer within 20 s");
    assert!(first_panicked, "the layer did not panic");
    assert!(second_returned, "the second close hung");
    assert!(renderer_told, "the renderer was not disconnected");
    assert_eq!(count, 0);
}
