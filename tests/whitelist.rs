//! Exposed APIs as whitelists, enforced by main on every frame.

use ipc_runtime::{IpcError, Target};
use ipc_suite::{
    connect_memory, connect_memory_as, probe_main,
    raw::{accepted, invoke_body, kind, send_body, subscribe_body, WireError},
    NarrowApi, ProbeApi, ProbeContract, ProbeEventsEmitter,
};

#[tokio::test]
async fn renderers_with_different_apis_each_reach_their_own_methods() {
    let (main, _) = probe_main();
    let full = connect_memory(&main, "editor").await.unwrap();
    let narrow = connect_memory_as::<NarrowApi>(&main, "settings")
        .await
        .unwrap();
    assert_eq!(full.probe.add(1, 2).await.unwrap(), 3);
    assert_eq!(narrow.probe.echo("narrow".into()).await.unwrap(), "narrow");
    let infos = main.renderers();
    assert_eq!(infos[0].api, "ProbeApi");
    assert_eq!(infos[1].api, "NarrowApi");
    // The narrow API can listen to `tick` but has no way to reach `note`.
    let _tick = narrow.events.on_tick(|_| {}).await.unwrap();
}

#[tokio::test]
async fn a_hand_made_frame_outside_the_whitelist_is_not_allowed() {
    let (main, handler) = probe_main();
    let good = connect_memory(&main, "editor").await.unwrap();

    // A renderer accepted as `NarrowApi` that skips its client and writes
    // frames for channels that exist but are not exposed to it.
    let (mut raw, _) = accepted::<NarrowApi, ProbeContract>(&main, "settings").await;

    raw.frame(&invoke_body(1, "probe:add", &[1, 2])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 1));
    assert_eq!(
        reply.error(),
        WireError::NotAllowed {
            channel: "probe:add".into()
        }
    );
    // The channel is checked before its payload is decoded: a payload that
    // would not decode gets the same answer, not `BadPayload` (which would
    // tell the renderer what the method takes).
    raw.frame(&invoke_body(4, "probe:add", &[0xff])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 4));
    assert_eq!(
        reply.error(),
        WireError::NotAllowed {
            channel: "probe:add".into()
        }
    );

    raw.frame(&send_body("probe:record", &[9])).await;
    let notice = raw.read().await.unwrap();
    assert_eq!(notice.kind, kind::NOTICE);
    assert_eq!(
        notice.error(),
        WireError::NotAllowed {
            channel: "probe:record".into()
        }
    );

    // Subscribing to an event outside the whitelist is refused too.
    raw.frame(&subscribe_body(2, "probe:note")).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 2));
    assert!(main
        .renderer_stats(main.renderers()[1].id)
        .unwrap()
        .subscriptions
        .is_empty());

    // Its exposed method works; nothing it was refused ran.
    raw.frame(&invoke_body(3, "probe:echo", &[2, b'h', b'i']))
        .await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_OK, 3));
    assert!(handler.recorded_now().is_empty());

    // The other renderer keeps working, events included.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _g = good
        .events
        .on_note(move |t| {
            let _ = tx.send(t);
        })
        .await
        .unwrap();
    ProbeEventsEmitter::new(&main, Target::All).note("still here".into());
    assert_eq!(rx.recv().await.as_deref(), Some("still here"));
    assert_eq!(good.probe.add(2, 2).await.unwrap(), 4);
}

#[tokio::test]
async fn a_renderer_built_with_a_wider_api_than_granted_is_refused_at_connect() {
    let (main, _) = probe_main();
    let (main_end, renderer_end) = ipc_runtime::transport::memory_pair(64 * 1024);
    let (accepted, api) = tokio::join!(
        main.accept::<NarrowApi>(main_end, "settings"),
        ipc_runtime::Connection::builder().connect_as::<ProbeApi>(renderer_end)
    );
    let err = api.expect_err("refused");
    let IpcError::ApiNotGranted(e) = &err else {
        panic!("expected ApiNotGranted, got {err:?}");
    };
    let ipc_runtime::ApiNotGranted {
        api,
        grant,
        channels,
        ..
    } = &**e;
    assert_eq!((api.as_str(), grant.as_str()), ("ProbeApi", "NarrowApi"));
    assert!(
        channels.contains(&"`probe:add`".to_string()),
        "{channels:?}"
    );
    assert!(
        !channels.contains(&"`probe:echo`".to_string()),
        "{channels:?}"
    );
    // Both the renderer and main read what to change, once.
    let text = err.to_string();
    assert!(
        text.starts_with("the renderer connected as `ProbeApi`, which reaches `probe:")
            && text.ends_with(
                "but main accepts it as `NarrowApi`, which does not allow them; connect the renderer as `NarrowApi`, or have main accept it as `ProbeApi`"
            )
            && !text.contains("fingerprint"),
        "{text}"
    );
    assert!(
        matches!(&accepted, Err(e) if e.to_string() == text),
        "{accepted:?}"
    );
}
