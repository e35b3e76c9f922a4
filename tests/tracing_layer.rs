//! A `tracing` layer is user code: one that forwards main's records to a
//! log window by emitting an event must not freeze main, which therefore
//! logs with none of its locks held. Alone in its test binary: the layer
//! is installed for the test's thread, and no other test's thread may
//! decide first that main's log statements are never enabled.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use ipc_runtime::{Main, Target};
use ipc_suite::{connect_memory, probe_main, with_layer_on_own_thread, ProbeEventsEmitter};

/// Emits a `note` to every renderer for each of `ipc_runtime`'s records
/// (not for those its own emitting causes).
struct ForwardToRenderers {
    main: Arc<OnceLock<Main>>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ForwardToRenderers {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        thread_local! {
            static FORWARDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if FORWARDING.get() || !event.metadata().target().starts_with("ipc_runtime") {
            return;
        }
        FORWARDING.set(true);
        if let Some(main) = self.main.get() {
            let line = format!("{} {}", event.metadata().level(), event.metadata().target());
            ProbeEventsEmitter::new(main, Target::All).note(line);
        }
        FORWARDING.set(false);
    }
}

#[test]
fn a_layer_that_emits_events_does_not_freeze_main() {
    let main_cell = Arc::new(OnceLock::new());
    let layer = ForwardToRenderers {
        main: Arc::clone(&main_cell),
    };
    let note = with_layer_on_own_thread(layer, Duration::from_secs(10), || async move {
        let (main, _) = probe_main();
        main_cell.set(main.clone()).unwrap();
        let api = connect_memory(&main, "log-window").await.unwrap();
        // Main logs the subscription (at debug level).
        let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
        let _guard = api
            .events
            .on_note(move |line| {
                let _ = tx.send(line);
            })
            .await
            .unwrap();
        // And the disconnection of another renderer (a warning),
        // forwarded to this one.
        let other = connect_memory(&main, "other").await.unwrap();
        assert!(main.disconnect(other.id()));
        let note = tokio::time::timeout(Duration::from_secs(5), notes.recv()).await;
        note.ok().flatten()
    })
    .expect("main froze: subscribing with a log-forwarding layer never finished");
    assert!(note.is_some_and(|line| line.contains("ipc_runtime")));
}
