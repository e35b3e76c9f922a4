//! Hostile renderers that skip the client and write hand-made frames on a
//! raw socket. Each gets a clear error or a clean disconnect, and main keeps
//! serving a well-behaved renderer connected at the same time.

use std::time::Duration;

use ipc_runtime::{DisconnectReason, Main};
use ipc_suite::{
    connect_memory, eventually, next_disconnection, probe_main_with,
    raw::{accepted, invoke_body, kind, send_body, subscribe_body, RawFrame, RawPeer, WireError},
    NarrowApi, ProbeApi, ProbeClient, ProbeContract,
};
use tokio::io::AsyncWriteExt;

const LIMIT: usize = 64 * 1024;

/// Main with a well-behaved renderer, and a raw socket that has completed
/// the handshake by hand.
async fn setup() -> (Main, ProbeClient<ProbeApi>, RawPeer) {
    let (main, _) = probe_main_with(|b| b.max_frame_size(LIMIT));
    let good = connect_memory(&main, "good").await.unwrap().probe;
    let (raw, _) = accepted::<ProbeApi, ProbeContract>(&main, "hostile").await;
    assert_eq!(main.renderer_count(), 2);
    (main, good, raw)
}

/// Checks that `frame` carries a protocol error whose reason says `words`.
#[track_caller]
fn assert_protocol_error(frame: &RawFrame, words: &str) {
    let error = frame.error();
    assert!(
        matches!(&error, WireError::Protocol { reason } if reason.contains(words)),
        "{error:?}"
    );
}

async fn good_still_served(good: &ProbeClient<ProbeApi>) {
    assert_eq!(good.add(2, 3).await.unwrap(), 5);
}

/// The name of an unknown channel (not allowed, as it is outside every
/// grant) is the renderer's to write (up to 255
/// bytes, the wire's limit): what main logs and answers quotes it cut
/// short, control characters escaped, so that a line break in it cannot
/// forge a line of main's log, nor an escape sequence reach a terminal.
#[tokio::test]
async fn an_unknown_channel_is_named_cut_and_escaped() {
    let (main, good, mut raw) = setup().await;
    let hostile = format!("x\n2026-11-25 ERROR forged\u{1b}[2J{}", "y".repeat(200));
    assert!(hostile.len() < 256);
    raw.frame(&invoke_body(7, &hostile, &[])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 7));
    let WireError::NotAllowed { channel } = reply.error() else {
        panic!("{:?}", reply.error());
    };
    // The first 80 characters (29 before the `y`s), escaped, then `…`.
    assert_eq!(
        channel,
        format!(
            "x\\n2026-11-25 ERROR forged\\u{{1b}}[2J{}…",
            "y".repeat(80 - 29)
        )
    );
    // The same for a subscription.
    raw.frame(&subscribe_body(8, &hostile)).await;
    let reply = raw.read().await.unwrap();
    assert!(
        matches!(reply.error(), WireError::NotAllowed { channel } if channel.len() < 100 && !channel.contains('\n')),
        "{:?}",
        reply.error()
    );
    good_still_served(&good).await;
    drop(main);
}

/// A channel outside the renderer's API is not allowed whether main
/// serves it or not: a renderer learns nothing about channels beyond its
/// grant.
#[tokio::test]
async fn unknown_channel_gets_an_error_naming_it() {
    let (main, good, mut raw) = setup().await;
    raw.frame(&invoke_body(7, "probe:does-not-exist", &[]))
        .await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 7));
    assert_eq!(
        reply.error(),
        WireError::NotAllowed {
            channel: "probe:does-not-exist".into()
        }
    );
    // A send on an unknown channel has no call id: main answers with a notice.
    raw.frame(&send_body("nowhere:at-all", &[])).await;
    let notice = raw.read().await.unwrap();
    assert_eq!(notice.kind, kind::NOTICE);
    assert_eq!(
        notice.error(),
        WireError::NotAllowed {
            channel: "nowhere:at-all".into()
        }
    );
    // The hostile connection itself is still usable, and so is the good one.
    raw.frame(&invoke_body(8, "probe:add", &[1, 2])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!(
        (reply.kind, reply.call_id(), &reply.rest[8..]),
        (kind::REPLY_OK, 8, &[3u8][..])
    );
    good_still_served(&good).await;
    assert_eq!(main.renderer_count(), 2);
}

#[tokio::test]
async fn malformed_payload_gets_a_decode_error_naming_the_channel() {
    let (_main, good, mut raw) = setup().await;
    // `add` takes two varint u64s; 0xff is not a valid varint start here,
    // and one byte is not two numbers.
    raw.frame(&invoke_body(1, "probe:add", &[0xff])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 1));
    assert!(
        matches!(reply.error(), WireError::BadPayload { channel, .. } if channel == "probe:add"),
        "{:?}",
        reply.error()
    );
    // A string argument whose length field claims 2^40 bytes.
    let mut huge = vec![0xfd];
    huge.extend_from_slice(&(1u64 << 40).to_le_bytes());
    raw.frame(&invoke_body(2, "probe:echo", &huge)).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 2));
    assert!(
        matches!(reply.error(), WireError::BadPayload { channel, .. } if channel == "probe:echo"),
        "{:?}",
        reply.error()
    );
    // Extra bytes after valid arguments are refused too.
    raw.frame(&invoke_body(3, "probe:add", &[1, 2, 3])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 3));
    assert!(
        matches!(
            reply.error(),
            WireError::BadPayload { channel, reason }
                if channel == "probe:add" && reason.contains("unexpected bytes")
        ),
        "{:?}",
        reply.error()
    );
    // A frame kind main does not know, and an invoke cut inside its header.
    raw.frame(&[0x7e, 1, 2, 3]).await;
    assert_eq!(raw.read().await.unwrap().kind, kind::NOTICE);
    raw.frame(&[kind::INVOKE, 1, 2]).await;
    assert_eq!(raw.read().await.unwrap().kind, kind::NOTICE);
    good_still_served(&good).await;
}

#[tokio::test]
async fn a_four_gib_length_prefix_is_refused_without_allocating_it() {
    let (main, good, mut raw) = setup().await;
    let mut gone = main.disconnections();
    raw.bytes(&u32::MAX.to_be_bytes()).await;
    raw.bytes(&[kind::INVOKE; 16]).await;
    let notice = raw.read().await.unwrap();
    assert_eq!(notice.kind, kind::NOTICE);
    // The notice carries the size and the limit; this process did not try
    // to allocate 4 GiB (it would have aborted) and keeps serving.
    assert_eq!(
        notice.error(),
        WireError::FrameTooLarge {
            size: u64::from(u32::MAX),
            limit: LIMIT as u64
        }
    );
    assert!(
        raw.closed_by_main().await,
        "main drops a peer it cannot resync with"
    );
    assert!(eventually(Duration::from_secs(5), || main.renderer_count() == 1).await);
    let gone = next_disconnection(&mut gone, "main reports the disconnection").await;
    assert_eq!(gone.renderer.label, "hostile");
    assert!(
        matches!(
            gone.reason,
            DisconnectReason::FrameTooLarge { size, limit: LIMIT } if size == u64::from(u32::MAX)
        ),
        "{:?}",
        gone.reason
    );
    good_still_served(&good).await;
}

#[tokio::test]
async fn a_truncated_frame_then_eof_is_a_clean_disconnect() {
    let (main, good, mut raw) = setup().await;
    raw.bytes(&100u32.to_be_bytes()).await;
    raw.bytes(&invoke_body(1, "probe:add", &[1])[..6]).await;
    raw.stream.shutdown().await.unwrap();
    assert!(raw.closed_by_main().await);
    assert!(eventually(Duration::from_secs(5), || main.renderer_count() == 1).await);
    good_still_served(&good).await;
}

/// Main remembers the last channel a renderer used: using it again the
/// wrong way is still refused.
#[tokio::test]
async fn a_channel_just_used_rightly_is_still_refused_when_used_wrongly() {
    let (_main, good, mut raw) = setup().await;
    raw.frame(&invoke_body(1, "probe:add", &[2, 3])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_OK, 1));
    raw.frame(&send_body("probe:add", &[2, 3])).await;
    let notice = raw.read().await.unwrap();
    assert_eq!(notice.kind, kind::NOTICE);
    assert_protocol_error(&notice, "request/reply");

    raw.frame(&send_body("probe:record", &[1])).await;
    raw.frame(&invoke_body(2, "probe:record", &[1])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 2));
    assert_protocol_error(&reply, "fire-and-forget");
    good_still_served(&good).await;
}

#[tokio::test]
async fn invoking_a_send_channel_and_sending_to_an_invoke_channel_are_refused() {
    let (_main, good, mut raw) = setup().await;
    raw.frame(&invoke_body(4, "probe:record", &[1])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 4));
    assert_protocol_error(&reply, "fire-and-forget");
    raw.frame(&send_body("probe:add", &[1, 2])).await;
    let notice = raw.read().await.unwrap();
    assert_eq!(notice.kind, kind::NOTICE);
    assert_protocol_error(&notice, "request/reply");
    good_still_served(&good).await;
}

/// Using an event channel as a method, or subscribing to a method, is
/// told as such (the channel exists); to a renderer not granted the
/// channel it is only not allowed.
#[tokio::test]
async fn events_and_methods_used_the_wrong_way_are_told_apart() {
    let (main, good, mut raw) = setup().await;
    raw.frame(&invoke_body(1, "probe:tick", &[])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 1));
    assert_protocol_error(
        &reply,
        "`probe:tick` is an event channel; listen to it (subscribe) instead of invoking it",
    );
    raw.frame(&send_body("probe:tick", &[])).await;
    let notice = raw.read().await.unwrap();
    assert_eq!(notice.kind, kind::NOTICE);
    assert_protocol_error(&notice, "instead of sending to it");
    raw.frame(&subscribe_body(2, "probe:add")).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 2));
    assert_protocol_error(
        &reply,
        "`probe:add` is a method channel, not an event; only events can be subscribed to",
    );

    // `NarrowApi` has `echo` and `tick` only.
    let (mut narrow, _) = accepted::<NarrowApi, ProbeContract>(&main, "narrow").await;
    narrow.frame(&subscribe_body(3, "probe:add")).await;
    let reply = narrow.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, 3));
    assert!(
        matches!(reply.error(), WireError::NotAllowed { ref channel } if channel == "probe:add"),
        "{:?}",
        reply.error()
    );
    narrow
        .frame(&invoke_body(5, "probe:no-such-method", &[]))
        .await;
    let reply = narrow.read().await.unwrap();
    assert!(
        matches!(reply.error(), WireError::NotAllowed { ref channel } if channel == "probe:no-such-method"),
        "{:?}",
        reply.error()
    );
    // An unsubscribe has no call id: a notice.
    let mut unsubscribe = vec![0x14, b"probe:note".len() as u8];
    unsubscribe.extend_from_slice(b"probe:note");
    narrow.frame(&unsubscribe).await;
    let notice = narrow.read().await.unwrap();
    assert_eq!(notice.kind, kind::NOTICE);
    assert!(
        matches!(notice.error(), WireError::NotAllowed { ref channel } if channel == "probe:note"),
        "{:?}",
        notice.error()
    );
    narrow.frame(&invoke_body(4, "probe:note", &[])).await;
    let reply = narrow.read().await.unwrap();
    assert!(
        matches!(reply.error(), WireError::NotAllowed { ref channel } if channel == "probe:note"),
        "{:?}",
        reply.error()
    );
    good_still_served(&good).await;
}

/// An invoke or a subscribe malformed after its call id (a channel name
/// that is not UTF-8 or is cut short, bytes left over) is answered for
/// that id, so that its caller does not wait for its timeout.
#[tokio::test]
async fn a_frame_malformed_after_its_call_id_is_answered_for_that_id() {
    let (_main, good, mut raw) = setup().await;
    let header = |kind: u8, id: u64| {
        let mut body = vec![kind];
        body.extend_from_slice(&id.to_le_bytes());
        body
    };
    let mut not_utf8 = header(kind::INVOKE, 11);
    not_utf8.extend_from_slice(&[2, 0xff, 0xfe]);
    let mut cut = header(kind::INVOKE, 12);
    cut.push(40);
    cut.extend_from_slice(b"probe");
    let mut left_over = subscribe_body(13, "probe:tick");
    left_over.push(0);
    for (frame, id, words) in [
        (not_utf8, 11, "not UTF-8"),
        (cut, 12, "truncated"),
        (left_over, 13, "1 unexpected bytes at the end"),
    ] {
        raw.frame(&frame).await;
        let reply = raw.read().await.unwrap();
        assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_FAILED, id));
        assert_protocol_error(&reply, words);
    }
    good_still_served(&good).await;
}

/// Fixed-size frames without a call id (cancel, unsubscribe) with bytes
/// left over are malformed: each gets a notice, not silence.
#[tokio::test]
async fn a_cancel_frame_with_bytes_left_over_gets_a_notice() {
    let (_main, good, mut raw) = setup().await;
    let mut cancel = vec![0x12];
    cancel.extend_from_slice(&7u64.to_le_bytes());
    cancel.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    raw.frame(&cancel).await;
    let notice = raw.read().await.unwrap();
    assert_eq!(notice.kind, kind::NOTICE);
    assert_protocol_error(&notice, "4 unexpected bytes at the end");
    // A well-formed cancel for a call that is not in flight is ignored:
    // the next frame back is this call's reply.
    raw.frame(&cancel[..9]).await;
    raw.frame(&invoke_body(8, "probe:add", &[1, 2])).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_OK, 8));
    good_still_served(&good).await;
}

/// Frames only main sends are refused by their kind byte: the notice
/// says so, not that the body was malformed (each body here would fail to
/// decode), since main never read it. A hello after the handshake is
/// refused unread too, even one announcing a token of 2 GiB.
#[tokio::test]
async fn frames_only_main_sends_are_refused_unread() {
    let (_main, good, mut raw) = setup().await;
    let main_only = [
        kind::WELCOME,
        kind::REJECTED,
        kind::REPLY_OK,
        kind::REPLY_ERR,
        kind::REPLY_FAILED,
        kind::NOTICE,
        kind::EVENT,
    ];
    for k in main_only {
        let mut body = vec![k];
        body.extend_from_slice(&[0xff; 16]);
        raw.frame(&body).await;
        let notice = raw.read().await.unwrap();
        assert_eq!(notice.kind, kind::NOTICE);
        assert_protocol_error(
            &notice,
            &format!("unexpected frame: frame kind {k:#04x} is not sent by renderers"),
        );
    }
    let mut hello = ipc_suite::raw::hello_head(None);
    hello.pop(); // `None`…
    hello.push(1); // …becomes `Some`, of a string of 2 GiB:
    hello.extend_from_slice(&[0xfb, 0xff, 0xff, 0xff, 0x7f]);
    raw.frame(&hello).await;
    let notice = raw.read().await.unwrap();
    assert_protocol_error(&notice, "a hello after the handshake");
    good_still_served(&good).await;
}

/// Writes `wire` a byte at a time, with a pause after each.
async fn trickle(raw: &mut RawPeer, wire: Vec<u8>) {
    for byte in wire {
        raw.stream.write_all(&[byte]).await.unwrap();
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// The hello and then frames, each cut at every byte and sent a byte at a
/// time with pauses (a slow or hostile peer), are read as if sent whole:
/// no timeout, no violation, the right replies.
#[tokio::test]
async fn frames_cut_at_every_byte_are_read_whole() {
    use ipc_suite::raw::{framed, hello_body};
    let (main, _) = probe_main_with(|b| b.max_frame_size(LIMIT));
    let (a, b) = tokio::net::UnixStream::pair().unwrap();
    let mut raw = RawPeer { stream: b };
    let accept = tokio::spawn({
        let main = main.clone();
        async move {
            main.accept::<ProbeApi>(ipc_runtime::Transport::from_unix(a), "slow")
                .await
        }
    });
    trickle(&mut raw, framed(&hello_body::<ProbeContract>(None))).await;
    assert_eq!(raw.read().await.unwrap().kind, kind::WELCOME);
    let id = accept.await.unwrap().unwrap().id;
    let echo = ipc_runtime::codec::encode_to_vec(&("héllo",)).unwrap();
    let mut wire = framed(&invoke_body(7, "probe:echo", &echo));
    wire.extend(framed(&send_body("probe:record", &[5])));
    wire.extend(framed(&invoke_body(8, "probe:add", &[40, 2])));
    trickle(&mut raw, wire).await;
    let reply = raw.read().await.unwrap();
    assert_eq!((reply.kind, reply.call_id()), (kind::REPLY_OK, 7));
    let reply = raw.read().await.unwrap();
    assert_eq!(
        (reply.kind, reply.call_id(), &reply.rest[8..]),
        (kind::REPLY_OK, 8, &[42][..])
    );
    assert_eq!(main.renderer_stats(id).unwrap().violations, 0);
}

/// Frames of exactly the limit and one byte under it are served; one byte
/// over is refused from its length prefix, and the peer disconnected.
#[tokio::test]
async fn frames_at_the_limit_are_served_and_one_byte_over_is_refused() {
    let (main, good, mut raw) = setup().await;
    let mut gone = main.disconnections();
    let head = invoke_body(1, "probe:byte-count", &[]).len();
    for (id, total) in [(1u64, LIMIT - 1), (2, LIMIT)] {
        // A `Vec<u8>` of n bytes: its length as a varint (0xfb and a u16),
        // then the bytes.
        let n = total - head - 3;
        let mut payload = vec![0xfb];
        payload.extend_from_slice(&(n as u16).to_le_bytes());
        payload.resize(3 + n, 0);
        let body = invoke_body(id, "probe:byte-count", &payload);
        assert_eq!(body.len(), total);
        raw.frame(&body).await;
        let reply = raw.read().await.unwrap();
        assert_eq!(
            (reply.kind, reply.call_id()),
            (kind::REPLY_OK, id),
            "{total}"
        );
    }
    raw.bytes(&((LIMIT + 1) as u32).to_be_bytes()).await;
    let notice = raw.read().await.unwrap();
    assert_eq!(
        notice.error(),
        WireError::FrameTooLarge {
            size: (LIMIT + 1) as u64,
            limit: LIMIT as u64
        }
    );
    let gone = next_disconnection(&mut gone, "main reports the disconnection").await;
    assert!(
        matches!(gone.reason, DisconnectReason::FrameTooLarge { .. }),
        "{:?}",
        gone.reason
    );
    good_still_served(&good).await;
}
