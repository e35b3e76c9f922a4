//! Property tests: arbitrary bytes, arbitrary frame bodies, and arbitrary
//! well-formed-but-wrong frames, fed to main's decoder and dispatcher after
//! a valid handshake. Main never panics and never hangs: each input ends in
//! answers or a disconnect, a well-behaved renderer connected beside it is
//! served throughout, and no code of the runtime panicked (a panic in a
//! task of main's would otherwise only look like a closed connection).

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Once,
    },
    time::Duration,
};

use ipc_runtime::Limits;
use ipc_suite::{
    connect_memory, probe_main_with,
    raw::{accepted, framed, kind},
    ProbeApi, ProbeContract,
};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Panics raised in the runtime's own code (not in a test's handler),
/// counted by a panic hook installed on first use.
fn runtime_panics() -> usize {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|l| l.file().contains("ipc-runtime/src/"))
            {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
    PANICS.load(Ordering::SeqCst)
}

/// Runs `input` against a fresh main with a good renderer beside the raw
/// peer; checks the good one is still served and that main answered or
/// closed within the time limit.
fn against_main(input: Vec<u8>, keep_connection: bool) -> Result<(), TestCaseError> {
    let panics = runtime_panics();
    let result = exchange(input, keep_connection);
    prop_assert_eq!(runtime_panics(), panics, "the runtime panicked");
    result
}

fn exchange(input: Vec<u8>, keep_connection: bool) -> Result<(), TestCaseError> {
    runtime().block_on(async move {
        let mut limits = Limits::default();
        limits.max_frame_size = 64 * 1024;
        limits.max_violations = if keep_connection { None } else { Some(8) };
        let (main, _) = probe_main_with(|b| b.limits(limits));
        let good = connect_memory(&main, "good").await.unwrap();
        let (mut raw, _) = accepted::<ProbeApi, ProbeContract>(&main, "fuzz").await;

        let _ = raw.stream.write_all(&input).await;
        // A final, valid call: if the connection survived, it is answered.
        let mut echo = vec![0x10];
        echo.extend_from_slice(&u64::MAX.to_le_bytes());
        echo.push(10);
        echo.extend_from_slice(b"probe:echo");
        echo.extend_from_slice(&[2, b'o', b'k']);
        let _ = raw.stream.write_all(&framed(&echo)).await;
        if !keep_connection {
            // The stream may be out of step with the framing: closing our
            // side must still end the exchange (main then aborts the calls
            // of a renderer that left, so the final one may go unanswered).
            let _ = raw.stream.shutdown().await;
        }
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(frame) = raw.read().await {
                if frame.kind == kind::REPLY_OK && frame.call_id() == u64::MAX {
                    return true;
                }
            }
            false
        })
        .await;
        prop_assert!(answered.is_ok(), "main answered or closed in time");
        if keep_connection {
            // Well-framed input never costs the connection when violations
            // are not counted: the final call is answered.
            prop_assert_eq!(answered, Ok(true));
        }
        prop_assert_eq!(good.probe.add(2, 3).await.unwrap(), 5);
        Ok(())
    })
}

/// A frame body with a valid length prefix and a plausible kind.
fn wrong_frame() -> impl Strategy<Value = Vec<u8>> {
    let kinds = prop_oneof![
        Just(0x01u8),
        Just(0x02),
        Just(0x10),
        Just(0x11),
        Just(0x12),
        Just(0x13),
        Just(0x14),
        Just(0x20),
        Just(0x23),
        any::<u8>(),
    ];
    let channels = prop_oneof![
        Just("probe:echo".to_string()),
        Just("probe:add".to_string()),
        Just("probe:record".to_string()),
        Just("probe:sleep".to_string()),
        Just("probe:tick".to_string()),
        Just("probe:nope".to_string()),
        "[a-z:]{0,20}",
    ];
    (
        kinds,
        any::<u64>(),
        channels,
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(k, id, channel, payload)| {
            let mut body = vec![k];
            if matches!(k, 0x10 | 0x12 | 0x13 | 0x20) {
                body.extend_from_slice(&(id % 1000).to_le_bytes());
            }
            if matches!(k, 0x10 | 0x11 | 0x13 | 0x14) {
                body.push(channel.len() as u8);
                body.extend_from_slice(channel.as_bytes());
            }
            body.extend_from_slice(&payload);
            framed(&body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_break_main(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        against_main(input, false)?;
    }

    #[test]
    fn arbitrary_frame_bodies_never_break_main(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Framed, so that the body reaches the parser instead of stopping
        // at the length check.
        against_main(framed(&body), false)?;
    }

    #[test]
    fn wrong_frames_are_answered_and_the_connection_survives(
        frames in proptest::collection::vec(wrong_frame(), 1..24)
    ) {
        let input: Vec<u8> = frames.concat();
        against_main(input, true)?;
    }
}
