//! A panic in main's task for a renderer ends that renderer's connection
//! like any other failure. The panic here comes from user code that runs
//! inside that task: a `tracing` layer that panics on one of main's
//! records. Alone in its test binary, as `tracing_layer.rs` is: the layer is
//! installed for the test's thread only.

use std::time::Duration;

use ipc_runtime::{DisconnectReason, IpcError};
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
