//! Black-box tests of `GatewayService.RegisterClient` / `UnregisterClient` and of slow
//! WebSocket clients: real PostgreSQL, Redis, gRPC and WebSockets, the four services started
//! as `sdsim up` starts them.

use crate::helpers::*;
use sdsim_protocols::proto::gateway as pb;
use sdsim_protocols::proto::gateway::gateway_service_client::GatewayServiceClient;
use sdsim_protocols::Service;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(500);
const PASSWORD: &str = "a long enough password";

async fn grpc(s: &Stack) -> GatewayServiceClient<Channel> {
    let gw = s.running.addrs(Service::Gateway).grpc;
    GatewayServiceClient::connect(format!("http://{gw}"))
        .await
        .unwrap()
}

async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A registered, logged-in user: access token, user id and auth session id.
struct User {
    token: String,
    id: String,
    session_id: String,
}

async fn user(s: &Stack, tag: &str) -> User {
    let email = unique_email(tag);
    s.register(&email, PASSWORD).await;
    let login = s.login(&email, PASSWORD).await;
    User {
        token: login["access_token"].as_str().unwrap().into(),
        id: login["user"]["id"].as_str().unwrap().into(),
        session_id: login["session_id"].as_str().unwrap().into(),
    }
}

/// The client ids of `user`'s sessions on the gateway.
async fn client_ids(c: &mut GatewayServiceClient<Channel>, user_id: &str) -> Vec<String> {
    c.get_connected_clients(pb::GetConnectedClientsRequest {
        user_id: user_id.into(),
        limit: 0,
    })
    .await
    .unwrap()
    .into_inner()
    .clients
    .into_iter()
    .map(|c| c.client_id)
    .collect()
}

/// Opens and authenticates a WebSocket of `u`; returns it with its client id.
async fn session(s: &Stack, c: &mut GatewayServiceClient<Channel>, u: &User) -> (Ws, String) {
    let before = client_ids(c, &u.id).await;
    let mut ws = s.ws().await;
    ws.authenticate(&u.token).await;
    let after = client_ids(c, &u.id).await;
    let new: Vec<String> = after
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(new.len(), 1, "exactly one new session");
    (ws, new[0].clone())
}

fn register_req(client_id: &str, user_id: &str, channels: &[&str]) -> pb::RegisterClientRequest {
    pb::RegisterClientRequest {
        client_id: client_id.into(),
        user_id: user_id.into(),
        subscriptions: channels.iter().map(|c| c.to_string()).collect(),
        connection_type: "websocket".into(),
    }
}

async fn client_info(
    c: &mut GatewayServiceClient<Channel>,
    client_id: &str,
) -> Option<pb::ClientInfo> {
    c.get_client_info(pb::GetClientInfoRequest {
        client_id: client_id.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .client
}

/// PUBLISH an event envelope on a (relative) channel of the stack's namespace; returns the
/// envelope id and how many Redis subscribers got it.
async fn publish(
    s: &Stack,
    conn: &mut redis::aio::MultiplexedConnection,
    channel: &str,
    kind: &str,
    data: serde_json::Value,
) -> (String, i64) {
    let env = sdsim_protocols::events::Envelope::new(kind, "test", None, data);
    let n: i64 = redis::cmd("PUBLISH")
        .arg(format!("{}{channel}", s.settings.redis.prefix))
        .arg(serde_json::to_string(&env).unwrap())
        .query_async(conn)
        .await
        .unwrap();
    (env.id, n)
}

/// Redis subscribers of a (relative) channel of the stack's namespace.
async fn subscribers(
    s: &Stack,
    conn: &mut redis::aio::MultiplexedConnection,
    channel: &str,
) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("{}{channel}", s.settings.redis.prefix))
        .query_async(conn)
        .await
        .unwrap();
    n
}

/// Waits until the channel has `want` Redis subscribers.
async fn until_subscribers(
    s: &Stack,
    conn: &mut redis::aio::MultiplexedConnection,
    channel: &str,
    want: i64,
) {
    let mut n = -1;
    for _ in 0..100 {
        n = subscribers(s, conn, channel).await;
        if n == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{channel} has {n} subscribers, not {want}");
}

fn field(status: &tonic::Status) -> &str {
    status
        .metadata()
        .get("x-sdsim-error-field")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn assert_alive(ws: &mut Ws) {
    ws.send(serde_json::json!({"type": "ping", "id": "alive"}))
        .await;
    let f = ws.frame(WAIT).await;
    assert_eq!(f["type"], "pong", "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_once_auth_ok_arrives_is_delivered() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let mut redis = redis_conn().await;
    let alice = user(&s, "prompt").await;
    // Each round is the user's only session on the gateway, so its channel is subscribed
    // anew (just after the previous round's close unsubscribed it).
    for round in 0..20 {
        let mut ws = s.ws().await;
        ws.authenticate(&alice.token).await;
        let (_, receivers) = publish(
            &s,
            &mut redis,
            &format!("notifications:user:{}", alice.id),
            "test.prompt",
            serde_json::json!({ "round": round }),
        )
        .await;
        assert_eq!(
            receivers, 1,
            "round {round}: nobody was subscribed at auth_ok"
        );
        let f = ws.frame(WAIT).await;
        assert_eq!(f["data"]["round"], round, "{f}");
        ws.socket.close(None).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_channels_reach_exactly_the_sessions_attached_to_them() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let mut gw = grpc(&s).await;
    let mut redis = redis_conn().await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let (mut a1, a1_id) = session(&s, &mut gw, &alice).await;
    let (mut a2, a2_id) = session(&s, &mut gw, &alice).await;
    let (mut b1, b1_id) = session(&s, &mut gw, &bob).await;
    let sim = "simulation:events:sim-42";
    let project = "project:events:p-7";
    assert_eq!(subscribers(&s, &mut redis, sim).await, 0);

    let r = gw
        .register_client(register_req(&a1_id, &alice.id, &[sim, project]))
        .await
        .unwrap()
        .into_inner();
    assert!(r.success, "{r:?}");
    assert_eq!(r.session_id, alice.session_id);
    let info = client_info(&mut gw, &a1_id).await.unwrap();
    assert!(
        info.subscriptions.iter().any(|c| c == sim)
            && info.subscriptions.iter().any(|c| c == project),
        "{:?}",
        info.subscriptions
    );
    assert!(info
        .subscriptions
        .contains(&format!("notifications:user:{}", alice.id)));
    let other = client_info(&mut gw, &a2_id).await.unwrap();
    assert!(!other.subscriptions.iter().any(|c| c == sim), "{other:?}");
    // Subscribed on Redis by the time RegisterClient answers.
    assert_eq!(subscribers(&s, &mut redis, sim).await, 1);

    let (id, n) = publish(
        &s,
        &mut redis,
        sim,
        "simulation.progress",
        serde_json::json!({"progress": 0.5}),
    )
    .await;
    assert_eq!(n, 1, "the gateway listens on {sim}");
    let f = a1.frame(WAIT).await;
    assert_eq!(f["type"], "simulation.progress", "{f}");
    assert_eq!(f["channel"], sim);
    assert_eq!(f["offset"], id);
    assert_eq!(f["data"]["progress"], 0.5);
    // The user's other session and another user's session were not attached.
    assert!(matches!(a2.next(QUIET).await, Next::Timeout));
    assert!(matches!(b1.next(QUIET).await, Next::Timeout));

    // Bob's session too, with an empty connection type (meaning websocket).
    let mut req = register_req(&b1_id, &bob.id, &[project]);
    req.connection_type = String::new();
    assert!(gw.register_client(req).await.unwrap().into_inner().success);
    assert_eq!(
        subscribers(&s, &mut redis, project).await,
        1,
        "one gateway, one SUBSCRIBE"
    );
    publish(
        &s,
        &mut redis,
        project,
        "project.updated",
        serde_json::json!({"project_id": "p-7"}),
    )
    .await;
    for ws in [&mut a1, &mut b1] {
        let f = ws.frame(WAIT).await;
        assert_eq!(
            (f["type"].as_str(), f["channel"].as_str()),
            (Some("project.updated"), Some(project)),
            "{f}"
        );
    }
    assert!(matches!(a2.next(QUIET).await, Next::Timeout));

    // Alice's attached session leaves: nobody needs sim-42 any more, Bob still needs p-7.
    a1.socket.close(None).await.unwrap();
    until_subscribers(&s, &mut redis, sim, 0).await;
    assert_eq!(subscribers(&s, &mut redis, project).await, 1);
    drop(b1);
    until_subscribers(&s, &mut redis, project, 0).await;
    // The user's own channel and announcements keep working for the remaining session.
    assert_alive(&mut a2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_are_named_errors_and_change_nothing() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let mut gw = grpc(&s).await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let (mut a1, a1_id) = session(&s, &mut gw, &alice).await;
    let ok = "simulation:events:sim-1";

    let unknown = uuid::Uuid::new_v4().to_string();
    let e = gw
        .register_client(register_req(&unknown, &alice.id, &[ok]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains(&unknown), "{e:?}");

    let e = gw
        .register_client(register_req(&a1_id, &bob.id, &[ok]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains(&bob.id), "{e:?}");

    // (request, field, words the message must contain)
    let mut cases: Vec<(pb::RegisterClientRequest, &str, String)> = vec![
        (
            register_req("not-a-uuid", &alice.id, &[ok]),
            "client_id",
            "not-a-uuid".into(),
        ),
        (
            register_req("", &alice.id, &[ok]),
            "client_id",
            "required".into(),
        ),
        (
            register_req(&a1_id, "", &[ok]),
            "user_id",
            "required".into(),
        ),
        (
            register_req(&a1_id, &alice.id, &[]),
            "subscriptions",
            "at least one".into(),
        ),
        (
            register_req(&a1_id, &alice.id, &[ok, "auth:events:login"]),
            "subscriptions[1]",
            "auth:events:login".into(),
        ),
        (
            register_req(&a1_id, &alice.id, &["simulation:stream:sim-1"]),
            "subscriptions[0]",
            "simulation:stream:sim-1".into(),
        ),
        (
            register_req(&a1_id, &alice.id, &["simulation:events:"]),
            "subscriptions[0]",
            "simulation:events:".into(),
        ),
        (
            register_req(&a1_id, &alice.id, &["simulation:events:*"]),
            "subscriptions[0]",
            "'*'".into(),
        ),
        (
            register_req(&a1_id, &alice.id, &[ok, ok, "project:events:a b"]),
            "subscriptions[2]",
            "' '".into(),
        ),
        (
            register_req(&a1_id, &alice.id, &[""]),
            "subscriptions[0]",
            "empty".into(),
        ),
        (
            register_req(
                &a1_id,
                &alice.id,
                &[&format!("notifications:user:{}", bob.id)],
            ),
            "subscriptions[0]",
            "another user's".into(),
        ),
    ];
    let too_many: Vec<String> = (0..65).map(|i| format!("project:events:p{i}")).collect();
    let refs: Vec<&str> = too_many.iter().map(String::as_str).collect();
    cases.push((
        register_req(&a1_id, &alice.id, &refs),
        "subscriptions",
        "at most 64".into(),
    ));
    let mut http = register_req(&a1_id, &alice.id, &[ok]);
    http.connection_type = "http".into();
    cases.push((http, "connection_type", "only WebSocket clients".into()));
    let mut pigeon = register_req(&a1_id, &alice.id, &[ok]);
    pigeon.connection_type = "carrier-pigeon".into();
    cases.push((pigeon, "connection_type", "carrier-pigeon".into()));

    for (req, want_field, words) in cases {
        let shown = format!("{req:?}");
        let e = gw.register_client(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{shown}: {e:?}");
        assert_eq!(field(&e), want_field, "{shown}: {e:?}");
        assert!(e.message().contains(&words), "{shown}: {e:?} lacks {words}");
    }

    // Unregister: unknown ids are NOT_FOUND, malformed ones named.
    let e = gw
        .unregister_client(pb::UnregisterClientRequest {
            client_id: unknown.clone(),
            session_id: String::new(),
            reason: "bye".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = gw
        .unregister_client(pb::UnregisterClientRequest {
            client_id: a1_id.clone(),
            session_id: uuid::Uuid::new_v4().to_string(),
            reason: "bye".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = gw
        .unregister_client(pb::UnregisterClientRequest {
            client_id: "42".into(),
            session_id: String::new(),
            reason: "bye".into(),
        })
        .await
        .unwrap_err();
    assert_eq!((e.code(), field(&e)), (Code::InvalidArgument, "client_id"));
    let e = gw
        .unregister_client(pb::UnregisterClientRequest {
            client_id: a1_id.clone(),
            session_id: String::new(),
            reason: "x".repeat(1000),
        })
        .await
        .unwrap_err();
    assert_eq!((e.code(), field(&e)), (Code::InvalidArgument, "reason"));

    // Nothing changed: the session is open with its two own channels only.
    let info = client_info(&mut gw, &a1_id)
        .await
        .expect("still registered");
    assert_eq!(info.subscriptions.len(), 2, "{:?}", info.subscriptions);
    assert_alive(&mut a1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregister_closes_the_socket_with_1000_and_the_reason() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let mut gw = grpc(&s).await;
    let mut redis = redis_conn().await;
    let alice = user(&s, "alice").await;
    let (mut a1, a1_id) = session(&s, &mut gw, &alice).await;
    let (mut a2, a2_id) = session(&s, &mut gw, &alice).await;
    let sim = "simulation:events:sim-9";
    gw.register_client(register_req(&a1_id, &alice.id, &[sim]))
        .await
        .unwrap();
    assert_eq!(subscribers(&s, &mut redis, sim).await, 1);

    let r = gw
        .unregister_client(pb::UnregisterClientRequest {
            client_id: a1_id.clone(),
            session_id: alice.session_id.clone(),
            reason: "project p-7 was deleted".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.success, "{r:?}");
    assert!(r.message.contains("1000"), "{r:?}");
    let reason = a1.expect_close(1000, WAIT).await;
    assert_eq!(reason, "project p-7 was deleted");
    assert!(client_info(&mut gw, &a1_id).await.is_none());
    until_subscribers(&s, &mut redis, sim, 0).await;
    let e = gw
        .unregister_client(pb::UnregisterClientRequest {
            client_id: a1_id.clone(),
            session_id: String::new(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "already gone: {e:?}");

    // The user's other session is untouched; a long reason is cut to what a close frame
    // carries, on a character boundary.
    assert_alive(&mut a2).await;
    let long = "é".repeat(200);
    gw.unregister_client(pb::UnregisterClientRequest {
        client_id: a2_id,
        session_id: String::new(),
        reason: long.clone(),
    })
    .await
    .unwrap();
    let reason = a2.expect_close(1000, WAIT).await;
    assert!(
        reason.len() <= 123 && reason.len() >= 120,
        "{}",
        reason.len()
    );
    assert!(long.starts_with(&reason));
}

/// Frames `{"i": n, "pad": ...}` of about 64 KiB on the user's notification channel.
async fn push_big(
    s: &Stack,
    redis: &mut redis::aio::MultiplexedConnection,
    user_id: &str,
    range: std::ops::Range<usize>,
) {
    let pad = "x".repeat(64 * 1024);
    for i in range {
        publish(
            s,
            redis,
            &format!("notifications:user:{user_id}"),
            "test.bulk",
            serde_json::json!({"i": i, "pad": pad}),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_4008() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    // Pings cannot be answered by a client that does not read: keep the ping timeout out of
    // the way, so only the backlog can end this session.
    settings.gateway.ws_client_timeout_ms = 120_000;
    let s = Stack::start(settings, &Service::ALL);
    s.wait_ready().await;
    let mut gw = grpc(&s).await;
    let mut redis = redis_conn().await;
    let alice = user(&s, "slow").await;
    let (mut slow, _) = session(&s, &mut gw, &alice).await;

    // 64 KiB frames to a client that reads nothing, 50 at a time, until the gateway gives up
    // on it: past the 4 MiB backlog, actix's write buffer and the socket buffers (their size
    // depends on the machine, hence the rounds; about 150 frames on a stock Linux).
    const MAX_SENT: usize = 3_000;
    let mut sent = 0;
    let mut left = usize::MAX;
    while sent < MAX_SENT && left > 0 {
        push_big(&s, &mut redis, &alice.id, sent..sent + 50).await;
        sent += 50;
        left = client_ids(&mut gw, &alice.id).await.len();
    }
    // The gateway gave up on the session while the client has not read a byte.
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = client_ids(&mut gw, &alice.id).await.len();
    }
    assert_eq!(
        left, 0,
        "the stalled session is still registered after {sent} frames"
    );

    // Reading again, the client gets what was already on its way, in order, then 4008.
    let mut got = 0usize;
    let close = loop {
        match slow.next(Duration::from_secs(20)).await {
            Next::Frame(f) => {
                assert_eq!(f["type"], "test.bulk", "{}", f["type"]);
                assert_eq!(f["data"]["i"], got, "frames arrive in order, without gaps");
                got += 1;
            }
            other => break other,
        }
    };
    match close {
        Next::Closed(Some(4008), reason) => assert!(reason.contains("too slow"), "{reason}"),
        other => panic!("expected close 4008 after {got} frames, got {other:?}"),
    }
    eprintln!("slow client got {got} of {sent} frames before 4008");
    assert!(
        got < sent,
        "all {sent} frames were kept for a client that did not read"
    );
    let metrics = s.metrics(s.running.addrs(Service::Gateway).http).await;
    assert!(
        metrics.contains("sdsim_websocket_closed_total{code=\"4008\"} 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("frames_sent"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The user can reconnect and is served normally. Frames published before the new
    // session existed may still be in the subscriber's hands and reach it first (live
    // events, not a replay); the new one arrives after them.
    let (mut again, _) = session(&s, &mut gw, &alice).await;
    let marker = 1_000_000;
    push_big(&s, &mut redis, &alice.id, marker..marker + 1).await;
    loop {
        let i = again.frame(WAIT).await["data"]["i"].as_u64().unwrap() as usize;
        if i == marker {
            break;
        }
        assert!(i < sent, "unexpected frame {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_reading_gets_far_more_than_the_backlog_limit() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let mut gw = grpc(&s).await;
    let mut redis = redis_conn().await;
    let alice = user(&s, "reader").await;
    let (mut ws, id) = session(&s, &mut gw, &alice).await;

    // 16 MiB in all, 512 KiB at a time, read as it comes: the limit is on what waits, not
    // on what passes.
    const BATCH: usize = 8;
    for batch in 0..32 {
        let from = batch * BATCH;
        push_big(&s, &mut redis, &alice.id, from..from + BATCH).await;
        for i in from..from + BATCH {
            let f = ws.frame(WAIT).await;
            assert_eq!(f["data"]["i"], i);
        }
    }
    assert!(client_info(&mut gw, &id).await.is_some());
    assert_alive(&mut ws).await;
}
