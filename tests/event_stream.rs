//! Events read as a stream (`stream_<event>`): the values they yield for
//! events of zero, one and several arguments, their end when the
//! connection closes, unsubscribing by dropping, and a stream left unread
//! holding up nothing.

use std::time::Duration;

use futures_util::StreamExt;
use ipc_runtime::{events, expose, service, IpcError, Main, Target};

#[service(namespace = "board")]
pub trait Board {
    /// Emits `count` `moved` events to the caller, then answers.
    async fn shuffle(&self, count: u64) -> u64;
}

#[events(namespace = "board")]
pub trait BoardEvents {
    /// A card moved to a column.
    fn moved(&self, card: u64, column: String);
    /// A card was picked.
    fn picked(&self, card: u64);
    /// The board was cleared.
    fn cleared(&self);
}

expose! {
    /// A renderer showing the board.
    pub struct BoardApi {
        board: Board { shuffle },
        events: BoardEvents { moved, picked, cleared },
    }
}

struct BoardHandler {
    main: std::sync::OnceLock<Main>,
}

impl Board for BoardHandler {
    async fn shuffle(&self, count: u64) -> u64 {
        let caller = ipc_runtime::Caller::current().expect("called by a renderer");
        let main = self.main.get().expect("main is set");
        let emitter = BoardEventsEmitter::new(main, Target::Renderer(caller.id()));
        for card in 0..count {
            emitter.moved(card, format!("column {}", card % 3));
        }
        count
    }
}

fn board_main() -> Main {
    let handler = std::sync::Arc::new(BoardHandler {
        main: std::sync::OnceLock::new(),
    });
    // Room in main's queue for every event of the burst below: a handler
    // emitting them all at once fills it before the renderer reads any.
    let mut limits = ipc_runtime::Limits::default();
    limits.max_queued_frames = 100_000;
    let main = Main::builder()
        .service(BoardServer::from_arc(std::sync::Arc::clone(&handler)))
        .events::<BoardEventsContract>()
        .limits(limits)
        .build()
        .expect("valid configuration");
    let _ = handler.main.set(main.clone());
    main
}

async fn connect(main: &Main) -> BoardApi {
    ipc_suite::connect_memory_as::<BoardApi>(main, "board")
        .await
        .expect("connected")
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what} within 10 s"))
}

#[tokio::test]
async fn a_stream_yields_each_event_in_order_as_its_arguments() {
    let main = board_main();
    let api = connect(&main).await;
    let mut moved = api.events.stream_moved().await.unwrap();
    let mut picked = api.events.stream_picked().await.unwrap();
    let mut cleared = api.events.stream_cleared().await.unwrap();
    assert_eq!(moved.channel(), "board:moved");
    assert!(moved.is_empty());

    let emit = BoardEventsEmitter::new(&main, Target::All);
    emit.moved(7, "done".into());
    emit.picked(7);
    emit.moved(8, "doing".into());
    emit.cleared();

    // Several arguments: a tuple; one: the value; none: `()`.
    assert_eq!(
        within("a moved event", moved.recv()).await,
        Some((7, "done".to_string()))
    );
    assert_eq!(within("a picked event", picked.recv()).await, Some(7));
    // It is a `Stream` too.
    assert_eq!(
        within("the second moved event", moved.next()).await,
        Some((8, "doing".to_string()))
    );
    assert_eq!(within("a cleared event", cleared.recv()).await, Some(()));
    assert_eq!(moved.try_recv(), None, "nothing more was emitted");
}

#[tokio::test]
async fn a_stream_ends_after_the_last_event_once_the_connection_closes() {
    let main = board_main();
    let api = connect(&main).await;
    let mut picked = api.events.stream_picked().await.unwrap();
    let emit = BoardEventsEmitter::new(&main, Target::Renderer(api.id()));
    for card in 0..50 {
        emit.picked(card);
    }
    assert!(main.disconnect(api.id()));
    let got: Vec<u64> = within("the stream's end", (&mut picked).collect()).await;
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    assert_eq!(picked.recv().await, None, "ended for good");
}

#[tokio::test]
async fn dropping_a_stream_unsubscribes_on_main() {
    let main = board_main();
    let api = connect(&main).await;
    let stream = api.events.stream_picked().await.unwrap();
    let id = api.id();
    let info = |main: &Main| main.renderer_stats(id).unwrap().subscriptions;
    assert_eq!(info(&main), ["board:picked"], "subscribed once it returns");
    drop(stream);
    within("main dropping the subscription", async {
        while !info(&main).is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// A callback that does not return holds up the connection's reader once
/// thousands of events wait behind it; a stream that is not read does
/// not: events wait in it, and replies still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_left_unread_holds_up_no_reply_and_loses_no_event() {
    const EVENTS: u64 = 20_000;
    let main = board_main();
    let api = connect(&main).await;
    let mut moved = api.events.stream_moved().await.unwrap();
    // The handler emits every event before it answers, so they all reach
    // the renderer before the reply does.
    let answer = within("the reply", api.board.shuffle(EVENTS)).await;
    assert_eq!(answer.unwrap(), EVENTS);
    within("every event in the stream", async {
        while (moved.len() as u64) < EVENTS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    for card in 0..EVENTS {
        let (got, column) = moved.try_recv().expect("queued in the stream");
        assert_eq!((got, column), (card, format!("column {}", card % 3)));
    }
    assert_eq!(main.renderer_stats(api.id()).unwrap().events_dropped, 0);
}

#[tokio::test]
async fn a_stream_on_a_closed_connection_fails_with_the_reason() {
    let main = board_main();
    let api = connect(&main).await;
    assert!(main.disconnect(api.id()));
    within("the renderer seeing the end", api.closed()).await;
    match api.events.stream_picked().await {
        Err(IpcError::Disconnected { .. }) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
}
