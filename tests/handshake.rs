//! The handshake: a renderer built from another contract, another protocol
//! version, or one that never says hello, is refused at connect time.

use std::time::Duration;

use ipc_runtime::{service, transport, Connection, DisconnectCause, IpcError, Main, Service};
use ipc_suite::{
    probe_main, probe_main_with,
    raw::{framed, hello_body, hello_body_claiming, kind, RawPeer},
    ProbeApi, ProbeContract,
};
use tokio::net::UnixStream;

/// The probe contract as an older renderer knew it: `echo` returned a
/// number, `add` did not exist, and there was a `legacy` method.
pub mod old {
    use super::*;

    #[service(namespace = "probe")]
    pub trait Probe {
        async fn echo(&self, text: String) -> u32;
        async fn legacy(&self);
    }
}

#[service(namespace = "extra")]
pub trait Extra {
    async fn ping(&self);
}

async fn connect_as<S: Service>(
    main: &ipc_runtime::Main,
) -> (
    Result<ipc_runtime::RendererInfo, IpcError>,
    Result<Connection, IpcError>,
) {
    let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
    tokio::join!(
        main.accept::<ProbeApi>(main_end, "renderer"),
        Connection::builder().service::<S>().connect(renderer_end)
    )
}

#[tokio::test]
async fn a_renderer_from_another_contract_gets_a_mismatch_naming_the_channels() {
    let (main, _) = probe_main();
    let (accepted, conn) = connect_as::<old::ProbeContract>(&main).await;
    let err = conn.unwrap_err();
    let IpcError::HandshakeMismatch {
        renderer,
        main: main_fp,
        differences,
    } = &err
    else {
        panic!("expected a handshake mismatch, got {err:?}");
    };
    assert_ne!(renderer, main_fp);
    assert!(
        differences.contains(
            &"trait `Probe`: channel `probe:echo` has a different signature: not the same result type (main's: `String`); `result` is `u32` in this renderer's".to_string()
        ),
        "{differences:?}"
    );
    // Not a channel the renderer may reach: main says nothing of it.
    assert!(
        !differences.iter().any(|d| d.contains("probe:legacy")),
        "{differences:?}"
    );
    assert!(
        differences.contains(
            &"trait `Probe`: channel `probe:add` exists only in main's contract".to_string()
        ),
        "{differences:?}"
    );
    // The advice is the message's, not one of the differences.
    assert!(
        differences
            .iter()
            .all(|d| d.starts_with("trait `Probe`: channel")),
        "{differences:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("{renderer:#018x}"))
            && message.contains(&format!("{main_fp:#018x}"))
            && message.contains(
                "main must serve the channels this renderer may reach, from the same version of their contracts"
            ),
        "{message}"
    );
    // What `unwrap` and a `main` returning the error print: the message,
    // fingerprints in hex.
    assert_eq!(format!("{err:?}"), message);
    // Main refused it too, with the same error, and keeps no state for it.
    assert!(matches!(accepted, Err(IpcError::HandshakeMismatch { .. })));
    assert_eq!(main.renderer_count(), 0);
}

/// A service on channels the grant allows, that main does not serve, is a
/// mismatch (main refuses to grant such an API in the first place:
/// `check_serves`). One on channels the renderer may not reach is not
/// compared: whether main serves it is none of the renderer's business,
/// and it could not call it anyway.
#[tokio::test]
async fn a_service_main_does_not_serve_is_a_mismatch_if_the_renderer_may_reach_it() {
    let (main, _) = probe_main();
    let (transport, mut raw) = raw_pair();
    let accept = accepting(&main, transport, "claims");
    raw.frame(&hello_body_claiming(vec!["Extra".into()], None))
        .await;
    assert_eq!(raw.read().await.map(|f| f.kind), Some(kind::REJECTED));
    let err = accept.await.unwrap().unwrap_err();
    assert!(
        err.to_string()
            .contains("`Extra` is not registered on main (register it with `MainBuilder::service`"),
        "{err}"
    );

    let (accepted, conn) = connect_as::<ExtraContract>(&main).await;
    accepted.unwrap();
    let extra = ExtraClient::new(&conn.unwrap());
    assert!(
        matches!(extra.ping().await, Err(IpcError::NotAllowed { channel }) if channel == "extra:ping")
    );
}

/// A renderer whose grant is narrower than a service learns nothing of the
/// rest of it from a handshake: not the signatures of other channels, not
/// whether main has them, not a fingerprint over them. Only what it may
/// reach is compared.
#[tokio::test]
async fn a_narrow_renderer_learns_nothing_of_channels_beyond_its_grant() {
    pub mod prober {
        use super::*;

        #[service(namespace = "probe")]
        pub trait Probe {
            async fn echo(&self, text: String) -> String;
            async fn divide(&self, x: u8) -> u8;
            async fn guessed(&self);
        }
    }
    let (main, _) = probe_main();
    let connect = |renderer: ipc_runtime::ConnectionBuilder| {
        let main = main.clone();
        async move {
            let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
            tokio::join!(
                main.accept::<ipc_suite::NarrowApi>(main_end, "narrow"),
                renderer.connect(renderer_end)
            )
        }
    };
    // Guessed signatures of channels beyond `probe:echo`, right or wrong,
    // make no difference: the renderer is admitted.
    let (accepted, conn) = connect(Connection::builder().service::<prober::ProbeContract>()).await;
    accepted.unwrap();
    conn.unwrap();
    // A difference on `probe:echo` is told, and only that one, with
    // fingerprints over `probe:echo` alone.
    let (_, conn) = connect(Connection::builder().service::<old::ProbeContract>()).await;
    let err = conn.unwrap_err();
    let IpcError::HandshakeMismatch { differences, .. } = &err else {
        panic!("expected a handshake mismatch, got {err:?}");
    };
    assert_eq!(
        differences,
        &["trait `Probe`: channel `probe:echo` has a different signature: not the same result type (main's: `String`); `result` is `u32` in this renderer's"]
    );
}

#[tokio::test]
async fn matching_contracts_connect() {
    let (main, _) = probe_main();
    let (accepted, conn) = connect_as::<ProbeContract>(&main).await;
    assert_eq!(accepted.unwrap().id, conn.unwrap().id());
}

fn raw_pair() -> (ipc_runtime::Transport, RawPeer) {
    let (a, b) = UnixStream::pair().unwrap();
    (ipc_runtime::Transport::from_unix(a), RawPeer { stream: b })
}

/// Main accepting a renderer as `ProbeApi` over `transport`, in a task of
/// its own, while the test plays the renderer by hand.
fn accepting(
    main: &Main,
    transport: ipc_runtime::Transport,
    label: &'static str,
) -> tokio::task::JoinHandle<Result<ipc_runtime::RendererInfo, IpcError>> {
    let main = main.clone();
    tokio::spawn(async move { main.accept::<ProbeApi>(transport, label).await })
}

#[tokio::test]
async fn another_protocol_version_is_refused_with_both_versions() {
    let (main, _) = probe_main();
    let (transport, mut raw) = raw_pair();
    let accept = accepting(&main, transport, "future");
    let mut hello = hello_body::<ProbeContract>(None);
    hello[1..3].copy_from_slice(&99u16.to_le_bytes());
    raw.frame(&hello).await;
    let answer = raw.read().await.expect("main answers");
    assert_eq!(answer.kind, kind::REJECTED);
    let err = accept.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            IpcError::ProtocolMismatch {
                renderer: 99,
                main: ipc_runtime::PROTOCOL_VERSION
            }
        ),
        "{err:?}"
    );
    assert!(raw.closed_by_main().await);
}

#[tokio::test]
async fn a_renderer_that_never_says_hello_is_dropped_after_the_timeout() {
    let (main, _) = probe_main_with(|b| b.handshake_timeout(Duration::from_millis(100)));
    let (transport, mut raw) = raw_pair();
    let err = main
        .accept::<ProbeApi>(transport, "silent")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no handshake within 100ms"),
        "{err}"
    );
    assert_eq!(raw.read().await.map(|f| f.kind), Some(kind::REJECTED));
    assert!(raw.closed_by_main().await);
}

/// `Main::close` does not leave a handshake under way to its timeout: the
/// peer is refused at once, told that main is closed.
#[tokio::test]
async fn close_refuses_a_handshake_under_way_at_once() {
    let (main, _) = probe_main();
    let (transport, mut raw) = raw_pair();
    let accept = accepting(&main, transport, "half-hello");
    // Part of a hello, then nothing: main is reading it.
    raw.bytes(&framed(&hello_body_claiming(Vec::new(), None))[..3])
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    main.close().await;
    let err = tokio::time::timeout(Duration::from_secs(2), accept)
        .await
        .expect("accept ends at close, not at the 10 s handshake timeout")
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("main is closed"), "{err}");
    let rejection = raw.read().await.expect("main answers");
    assert_eq!(rejection.kind, kind::REJECTED);
}

#[tokio::test]
async fn a_call_before_the_handshake_is_refused() {
    let (main, _) = probe_main();
    let (transport, mut raw) = raw_pair();
    let accept = accepting(&main, transport, "eager");
    raw.frame(&ipc_suite::raw::invoke_body(1, "probe:add", &[1, 2]))
        .await;
    assert_eq!(raw.read().await.map(|f| f.kind), Some(kind::REJECTED));
    let err = accept.await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("first frame must be a handshake"),
        "{err}"
    );
}

/// A hello is the renderer's to write: whatever it claims, main's
/// rejection stays small (a bounded list of differences, each name cut),
/// where it once grew with the product of two sizes the renderer chose.
#[tokio::test]
async fn a_hostile_hello_gets_a_small_rejection() {
    let (main, _) = probe_main();
    let claims = [
        // An API with a long name reaching thousands of channels.
        hello_body_claiming(
            Vec::new(),
            Some(("A".repeat(32 * 1024), vec![String::new(); 2000])),
        ),
        // Thousands of services main has never heard of, with long names.
        hello_body_claiming(
            (0..2000)
                .map(|i| format!("{}{i}", "S".repeat(448)))
                .collect(),
            None,
        ),
    ];
    for hello in claims {
        let (transport, mut raw) = raw_pair();
        let accept = accepting(&main, transport, "hostile");
        raw.frame(&hello).await;
        let answer = raw.read().await.expect("main answers");
        assert_eq!(answer.kind, kind::REJECTED);
        assert!(answer.rest.len() < 16 * 1024, "{} bytes", answer.rest.len());
        let err = accept.await.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                IpcError::HandshakeMismatch { .. } | IpcError::ApiNotGranted(_)
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("and 1984 more"), "{err}");
        assert!(err.to_string().len() < 8 * 1024, "{err}");
    }
    assert_eq!(main.renderer_count(), 0);
}

/// Nor can a hello be larger than main reads before a renderer is
/// admitted, whatever `max_frame_size` allows afterwards. The refusal says
/// so, rather than `FrameTooLarge`'s advice to raise `max_frame_size`,
/// which would not help.
#[tokio::test]
async fn a_hello_over_a_megabyte_is_refused_unread() {
    let (main, _) = probe_main();
    let (transport, mut raw) = raw_pair();
    let accept = accepting(&main, transport, "huge");
    let hello = hello_body_claiming(vec!["S".repeat(2 << 20)], None);
    raw.bytes(&framed(&hello)[..4096]).await;
    let err = accept.await.unwrap().unwrap_err();
    match &err {
        IpcError::Protocol { reason } => assert!(
            reason.contains(&format!("hello is {} bytes", hello.len()))
                && reason.contains("at most 1048576 bytes before it admits a renderer"),
            "{reason}"
        ),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(raw.read().await.map(|f| f.kind), Some(kind::REJECTED));
}

/// Below a megabyte, `max_frame_size` caps the hello too.
#[tokio::test]
async fn a_hello_over_a_small_max_frame_size_is_refused_unread() {
    let (main, _) = probe_main_with(|b| b.max_frame_size(4096));
    let (transport, mut raw) = raw_pair();
    let accept = accepting(&main, transport, "large");
    let hello = hello_body_claiming(vec!["S".repeat(8192)], None);
    raw.bytes(&framed(&hello)[..1024]).await;
    let err = accept.await.unwrap().unwrap_err();
    assert!(
        matches!(err, IpcError::FrameTooLarge { limit: 4096, size } if size > 8192),
        "{err:?}"
    );
    assert_eq!(raw.read().await.map(|f| f.kind), Some(kind::REJECTED));
}

/// Main does not wait on a renderer that never reads its rejection: the
/// write is bounded by the handshake timeout (a small in-memory pipe
/// stands in for a socket whose buffer is full).
#[tokio::test]
async fn a_renderer_that_does_not_read_its_rejection_does_not_hold_up_accept() {
    use tokio::io::AsyncWriteExt;

    let (main, _) = probe_main_with(|b| b.handshake_timeout(Duration::from_millis(200)));
    let (main_end, mut renderer_end) = tokio::io::duplex(256);
    let (read, write) = tokio::io::split(main_end);
    let accept = accepting(&main, ipc_runtime::Transport::new(read, write), "deaf");
    let hello = hello_body_claiming(Vec::new(), Some(("deaf".into(), vec![String::new(); 100])));
    renderer_end.write_all(&framed(&hello)).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), accept).await;
    let err = ended.expect("accept returns").unwrap().unwrap_err();
    assert!(matches!(err, IpcError::ApiNotGranted(_)), "{err:?}");
    drop(renderer_end);
}

#[test]
fn services_registered_unchecked_still_get_the_run_time_channel_check() {
    use ipc_runtime::Main;
    use ipc_suite::{ProbeHandler, ProbeServer};
    // Chosen at run time, so not in the builder's type: the clash is
    // reported by build() instead of the compiler.
    let twice = Main::builder()
        .service_unchecked(ProbeServer::new(ProbeHandler::default()))
        .service_unchecked(ProbeServer::new(ProbeHandler::default()))
        .build();
    match twice {
        Err(IpcError::Config { reason }) => {
            assert!(reason.contains("`Probe` is registered twice"), "{reason}")
        }
        other => panic!(
            "expected a configuration error, got {:?}",
            other.map(|_| ())
        ),
    }
    let once = Main::builder()
        .service_unchecked(ProbeServer::new(ProbeHandler::default()))
        .build();
    assert!(once.is_ok());
}

/// Limits under which main could serve nothing: an in-flight limit of 0
/// would refuse every call and count each one a violation of a renderer
/// that only uses the generated client; with no renderer places, a frame
/// limit of 0 or no time for the handshake, every renderer is refused.
/// Main is not built with them.
#[test]
fn main_is_not_built_with_limits_that_let_nothing_through() {
    type Change = fn(&mut ipc_runtime::Limits);
    let cases: [(&str, Change); 4] = [
        ("max_in_flight", |l| l.max_in_flight = 0),
        ("max_renderers", |l| l.max_renderers = 0),
        ("max_frame_size", |l| l.max_frame_size = 0),
        ("handshake_timeout", |l| {
            l.handshake_timeout = Duration::ZERO
        }),
    ];
    for (name, change) in cases {
        let mut limits = ipc_runtime::Limits::default();
        change(&mut limits);
        let built = ipc_runtime::Main::builder()
            .service(ipc_suite::ProbeServer::new(
                ipc_suite::ProbeHandler::default(),
            ))
            .limits(limits)
            .build();
        match built {
            Err(IpcError::Config { reason }) => {
                assert!(reason.contains(&format!("`Limits::{name}`")), "{reason}")
            }
            other => panic!("built with {name} 0: {:?}", other.map(|_| ())),
        }
    }
}

/// The handshake timeout bounds the whole handshake, writing the hello
/// included: a peer that never reads (the hello does not fit the pipe)
/// does not keep `connect` waiting for ever.
#[tokio::test]
async fn the_handshake_timeout_bounds_writing_the_hello() {
    let (_deaf, renderer_end) = transport::memory_pair(64);
    let started = std::time::Instant::now();
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::builder()
            .handshake_timeout(Duration::from_millis(300))
            .connect_as::<ProbeApi>(renderer_end),
    )
    .await
    .expect("connect gave up by itself");
    match connected {
        Err(IpcError::Disconnected { reason, cause }) => {
            assert!(reason.contains("within 300ms"), "{reason}");
            assert_eq!(cause, DisconnectCause::Lost);
        }
        other => panic!("expected a disconnection, got {:?}", other.err()),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A main accepting before it is built refuses the renderer and tells it
/// why; the renderer only saw a broken pipe.
#[tokio::test]
async fn a_renderer_accepted_by_an_unbuilt_main_is_told_why() {
    let builder = Main::builder();
    let unbuilt = builder.main();
    let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
    let (accepted, connected) = tokio::join!(
        unbuilt.accept::<ProbeApi>(main_end, "early"),
        ProbeApi::connect(renderer_end)
    );
    assert!(
        matches!(&accepted, Err(IpcError::Config { reason }) if reason.contains("not built yet")),
        "{accepted:?}"
    );
    let Err(e) = connected else {
        panic!("the renderer was admitted")
    };
    assert!(e.to_string().contains("not built yet"), "{e}");
}

/// A renderer accepting frames too small for main's welcome: main's
/// `accept` fails and says what to raise (it returned Ok, and the renderer
/// was reported gone right after).
#[tokio::test]
async fn a_welcome_larger_than_the_renderer_accepts_fails_the_accept() {
    let (main, _) = probe_main();
    let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
    let (accepted, connected) = tokio::join!(
        main.accept::<ProbeApi>(main_end, "tiny"),
        Connection::builder()
            .max_frame_size(8)
            .connect_as::<ProbeApi>(renderer_end)
    );
    match accepted {
        Err(IpcError::Protocol { reason }) => assert!(
            reason.contains("welcome does not fit") && reason.contains("max_frame_size"),
            "{reason}"
        ),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(connected.is_err());
    assert_eq!(main.renderer_count(), 0);
}

/// Two versions of a bank's contract: the same trait, channels and type
/// names, but `Transfer`'s fields moved and retyped, and `Notice` with one
/// more variant. On the wire v2's bytes would read as a v1 `Transfer` with
/// the parties swapped, so the handshake must refuse it.
macro_rules! bank {
    ($version:ident, { $($transfer:tt)* }, { $($notice:tt)* }) => {
        pub mod $version {
            use ipc_runtime::{events, expose, service};
            use serde::{Deserialize, Serialize};

            #[derive(Debug, Clone, Serialize, Deserialize)]
            pub struct Transfer { $($transfer)* }

            #[derive(Debug, Clone, Serialize, Deserialize)]
            pub enum Notice { $($notice)* }

            /// A memo of at least three characters: its `Deserialize`
            /// refuses the tracer's made-up `"a"`, so it cannot be traced.
            #[derive(Debug, Clone, Serialize, Deserialize)]
            #[serde(try_from = "String")]
            pub struct Memo(String);

            impl TryFrom<String> for Memo {
                type Error = String;
                fn try_from(memo: String) -> Result<Self, String> {
                    if memo.len() < 3 {
                        return Err(format!("memo {memo:?} is too short"));
                    }
                    Ok(Memo(memo))
                }
            }

            #[service(namespace = "bank")]
            pub trait Bank {
                async fn pay(&self, transfer: Transfer) -> String;
                async fn pay_with_memo(&self, memo: Memo, transfer: Transfer) -> String;
            }

            #[events(namespace = "bank")]
            pub trait BankEvents {
                fn notice(&self, notice: Notice);
            }

            pub struct Teller;

            impl Bank for Teller {
                async fn pay(&self, transfer: Transfer) -> String {
                    format!("{transfer:?}")
                }
                async fn pay_with_memo(&self, memo: Memo, transfer: Transfer) -> String {
                    format!("{transfer:?} {memo:?}")
                }
            }

            expose! {
                /// The whole bank.
                pub struct BankApi {
                    bank: Bank { pay, pay_with_memo },
                    events: BankEvents { notice },
                }
            }

            pub fn main() -> ipc_runtime::Main {
                ipc_runtime::Main::builder()
                    .service(BankServer::new(Teller))
                    .events::<BankEventsContract>()
                    .build()
                    .unwrap()
            }
        }
    };
}

bank!(v1, { pub from: String, pub to: String, pub cents: u64 }, { Paid, Refused(String) });
bank!(v2_fields, { pub to: String, pub from: String, pub cents: i64 }, { Paid, Refused(String) });
bank!(v2_variant, { pub from: String, pub to: String, pub cents: u64 }, { Paid, Refused(String), Frozen });
bank!(v2_cents, { pub from: String, pub to: String, pub cents: i64 }, { Paid, Refused(String) });
bank!(v2_refusal, { pub from: String, pub to: String, pub cents: u64 }, { Paid, Refused { reason: String } });
// The same encoding, written differently: the same contract.
bank!(v1_spelled_out, { pub from: std::string::String, pub to: ::std::string::String, pub cents: core::primitive::u64 }, { Paid, Refused(String) });

async fn bank_connect<A: ipc_runtime::Api>(main: &Main) -> Result<A, IpcError> {
    let (main_end, renderer_end) = transport::memory_pair(64 * 1024);
    let (_, conn) = tokio::join!(
        main.accept::<v1::BankApi>(main_end, "renderer"),
        Connection::builder().connect_as::<A>(renderer_end)
    );
    conn
}

/// The differences a renderer built as `A` is refused with by `main`.
async fn bank_mismatch<A: ipc_runtime::Api>(main: &Main) -> Vec<String> {
    match bank_connect::<A>(main).await.err() {
        Some(IpcError::HandshakeMismatch { differences, .. }) => differences,
        other => panic!("expected a handshake mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn a_type_changed_under_the_same_name_is_a_mismatch() {
    let main = v1::main();
    // `pay_with_memo` too: its memo cannot be traced, but that does not
    // hide the change to the other argument. Each says where the types
    // differ, as this renderer sees it (the first difference found).
    assert_eq!(
        bank_mismatch::<v2_fields::BankApi>(&main).await[..2],
        [
            "trait `Bank`: channel `bank:pay` has a different signature: not the same arguments (main's: `(transfer: Transfer)`); at `transfer`, the fields are in another order: main's `from, to, cents`, this renderer's `to, from, cents`",
            "trait `Bank`: channel `bank:pay-with-memo` has a different signature: not the same arguments (main's: `(memo: Memo, transfer: Transfer)`); at `transfer`, the fields are in another order: main's `from, to, cents`, this renderer's `to, from, cents`"
        ]
    );
    assert_eq!(
        bank_mismatch::<v2_variant::BankApi>(&main).await[0],
        "trait `BankEvents`: channel `bank:notice` has a different signature: not the same arguments (main's: `(notice: Notice)`); at `notice`, variant `Frozen` only in this renderer's"
    );
    assert_eq!(
        bank_mismatch::<v2_cents::BankApi>(&main).await[0],
        "trait `Bank`: channel `bank:pay` has a different signature: not the same arguments (main's: `(transfer: Transfer)`); at `transfer.cents`, main's is `u64` and this renderer's `i64`"
    );
    assert_eq!(
        bank_mismatch::<v2_refusal::BankApi>(&main).await[0],
        "trait `BankEvents`: channel `bank:notice` has a different signature: not the same arguments (main's: `(notice: Notice)`); at `notice::Refused`, main's variant is a newtype variant and this renderer's a struct variant"
    );
    assert_eq!(main.renderer_count(), 0);

    let api = bank_connect::<v1_spelled_out::BankApi>(&main)
        .await
        .unwrap();
    let paid = api
        .bank
        .pay(v1_spelled_out::Transfer {
            from: "alice".into(),
            to: "bob".into(),
            cents: 5,
        })
        .await
        .unwrap();
    assert_eq!(paid, r#"Transfer { from: "alice", to: "bob", cents: 5 }"#);
    let paid = api
        .bank
        .pay_with_memo(
            "rent".to_string().try_into().unwrap(),
            v1_spelled_out::Transfer {
                from: "alice".into(),
                to: "bob".into(),
                cents: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        paid,
        r#"Transfer { from: "alice", to: "bob", cents: 5 } Memo("rent")"#
    );
}

/// A main played by hand refuses the renderer with a mismatch whose notes
/// (main's shapes of the types that differ) the renderer cannot use:
/// bytes of no known layout, notes far over what it reads, or notes
/// nested past what its decoder accepts. Each time the renderer still
/// reports the mismatch, its lines as main wrote them, at once.
#[tokio::test]
async fn a_mismatch_whose_notes_cannot_be_read_keeps_its_lines() {
    use ipc_suite::raw::WireError;
    // One note (line 0, channel "", no argument names) whose one argument
    // is `Some` shape nested 100 000 times in shapes of options (variant
    // 2 of main's shape tree): refused by the decoder's depth limit, not
    // a stack overflow.
    let deep = {
        let mut notes = vec![1u8, 0, 0, 0, 1, 1];
        notes.extend(std::iter::repeat_n(2u8, 100_000));
        notes
    };
    let cases: [(&str, Vec<u8>); 3] = [
        ("garbage", b"\xff\xfe not notes".to_vec()),
        ("oversized", vec![0; 8 << 20]),
        ("deep", deep),
    ];
    for (name, shapes) in cases {
        let (renderer_end, main_end) = UnixStream::pair().unwrap();
        let fake_main = tokio::spawn(async move {
            let mut main = RawPeer { stream: main_end };
            assert_eq!(main.read().await.unwrap().kind, kind::HELLO);
            let mut body = vec![kind::REJECTED];
            body.extend(
                ipc_runtime::codec::encode_to_vec(&WireError::HandshakeMismatch {
                    renderer: 1,
                    main: 2,
                    differences: vec!["trait `Probe` differs".into()],
                    shapes: ipc_runtime::Blob::from(shapes),
                })
                .unwrap(),
            );
            main.frame(&body).await;
        });
        let started = std::time::Instant::now();
        let err = Connection::builder()
            .connect_as::<ProbeApi>(ipc_runtime::Transport::from_unix(renderer_end))
            .await
            .err()
            .unwrap();
        fake_main.await.unwrap();
        match err {
            IpcError::HandshakeMismatch { differences, .. } => {
                assert_eq!(differences, ["trait `Probe` differs"], "{name}")
            }
            other => panic!("{name}: expected the mismatch, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{name}");
    }
}
