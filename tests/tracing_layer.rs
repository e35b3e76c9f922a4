//! A `tracing` layer is user code: one that forwards main's records to a
//! log window by emitting an event must not freeze main, nor one that
//! drops a call on a renderer's record freeze that renderer; both
//! therefore log with none of their locks held. Alone in its test binary: the layer
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

/// Drops a stored call future on every `ipc_runtime` record at debug
/// level or above: as a layer that cancels work when something is logged
/// would. Dropping a call takes the renderer's call table.
struct DropCallOnRecord {
    call: Arc<std::sync::Mutex<Option<ipc_runtime::BoxFuture<'static, ()>>>>,
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for DropCallOnRecord {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !event
            .metadata()
            .target()
            .starts_with("ipc_runtime::renderer")
        {
            return;
        }
        // Taken out first: the call is dropped with this lock released.
        let call = self.call.lock().unwrap().take();
        if call.is_some() {
            drop(call);
            self.dropped
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// The renderer logged a reply that found its caller gone while holding
/// its call table's lock: a layer dropping a call on that record froze the
/// reply reader (the table is not re-entrant). It logs with the lock
/// released now.
#[test]
fn a_layer_that_drops_a_call_on_a_renderer_record_does_not_freeze_it() {
    use futures_util::FutureExt;
    let call = Arc::new(std::sync::Mutex::new(None));
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let layer = DropCallOnRecord {
        call: Arc::clone(&call),
        dropped: Arc::clone(&dropped),
    };
    let answered = with_layer_on_own_thread(layer, Duration::from_secs(10), move || async move {
        let (main, _) = probe_main();
        let api = connect_memory(&main, "canceller").await.unwrap();
        // A call in flight for the layer to drop.
        let mut long: ipc_runtime::BoxFuture<'static, ()> = {
            let api = api.clone();
            Box::pin(async move {
                let _ = api.probe.sleep(60_000).await;
            })
        };
        assert!(
            (&mut long).now_or_never().is_none(),
            "the call is in flight"
        );
        *call.lock().unwrap() = Some(long);
        // A call sent and then abandoned at once: main answers it (its
        // handler answers in its first poll) before it reads the cancel,
        // so the reply finds nobody waiting, which the renderer logs.
        let mut abandoned = Box::pin(api.probe.echo("gone".into()));
        assert!((&mut abandoned).now_or_never().is_none());
        drop(abandoned);
        // The reader is still alive: the next call is answered.
        tokio::time::timeout(Duration::from_secs(5), api.probe.echo("still here".into()))
            .await
            .ok()
            .and_then(Result::ok)
    });
    let answered = answered.expect("the renderer froze: nothing within 10 s");
    assert_eq!(answered.as_deref(), Some("still here"));
    assert!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        "the layer saw a renderer record and dropped the call"
    );
}
