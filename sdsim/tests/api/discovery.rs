//! Instances register in Redis, every process sees the others, a graceful stop deregisters
//! at once and a silent death expires with its TTL.

use crate::helpers::*;
use futures_util::StreamExt;
use sdsim_protocols::Service;
use std::time::{Duration, Instant};

async fn instances(s: &Stack, service: &str) -> Vec<serde_json::Value> {
    let gw = s.running.addrs(Service::Gateway).http;
    let v: serde_json::Value = s.get_json(&format!("http://{gw}/admin/instances")).await;
    v["services"][service]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_for(s: &Stack, service: &str, n: usize, within: Duration) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let list = instances(s, service).await;
        if list.len() == n || start.elapsed() > within {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_find_each_other_and_leave_cleanly() {
    let db = TestDb::create().await;
    let mut base = settings(&db);
    base.discovery.ttl_ms = 2_000;
    base.discovery.heartbeat_ms = 500;
    base.discovery.refresh_ms = 200;
    let mut a_settings = base.clone();
    a_settings.instance_id = "inst-a".into();
    let mut b_settings = base.clone();
    b_settings.instance_id = "inst-b".into();
    let a = Stack::start(a_settings, &Service::ALL);
    a.wait_ready().await;

    let client = redis::Client::open(redis_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(format!("{}services:membership", base.redis.prefix))
        .await
        .unwrap();

    let b = Stack::start(b_settings, &Service::ALL);
    b.wait_ready().await;
    // A sees B's four services within a second of B starting.
    for svc in ["gateway", "auth", "project", "simulation"] {
        let list = wait_for(&a, svc, 2, Duration::from_secs(1)).await;
        let ids: Vec<&str> = list
            .iter()
            .map(|i| i["instance_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["inst-a", "inst-b"], "{svc}: {list:?}");
        let b_auth = list.iter().find(|i| i["instance_id"] == "inst-b").unwrap();
        assert!(b_auth["grpc_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"));
        assert!(b_auth["load"].is_i64(), "{b_auth}");
    }
    // ...and A's gateway routes to B's backends: in use within a second.
    let b_auth = b.running.addrs(Service::Auth).grpc.to_string();
    let ready = Instant::now();
    loop {
        let mesh: serde_json::Value = a.get_json(&a.url("/admin/mesh")).await;
        let routable = mesh["services"]["auth"]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["address"] == b_auth.as_str() && t["routable"] == true);
        if routable {
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(1),
            "B's auth not in A's routes: {mesh}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let joins = {
        let mut seen = 0;
        let mut stream = pubsub.on_message();
        while let Ok(Some(msg)) =
            tokio::time::timeout(Duration::from_millis(500), stream.next()).await
        {
            let v: serde_json::Value =
                serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
            if v["event"] == "join" && v["instance"]["instance_id"] == "inst-b" {
                seen += 1;
            }
        }
        seen
    };
    assert_eq!(joins, 4, "B announced each of its services");
    let m = a.metrics(a.running.addrs(Service::Gateway).http).await;
    assert!(
        m.contains("sdsim_discovery_instances{service=\"auth\"} 2"),
        "{m}"
    );

    // B stops gracefully: its keys go at once, well before their TTL.
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}services:auth:inst-b", base.redis.prefix);
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(exists);
    drop(b);
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists, "deregistered on shutdown");
    let list = wait_for(&a, "auth", 1, Duration::from_secs(1)).await;
    assert_eq!(list.len(), 1, "{list:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_never_says_goodbye_expires_with_its_ttl() {
    let db = TestDb::create().await;
    let mut s = settings(&db);
    s.discovery.refresh_ms = 100;
    let prefix = s.redis.prefix.clone();
    let a = Stack::start(s, &Service::ALL);
    a.wait_ready().await;
    // A dead instance's last heartbeat, with 800 ms left to live.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ghost = serde_json::json!({
        "service": "auth", "instance_id": "ghost", "grpc_addr": "127.0.0.1:1",
        "http_addr": "127.0.0.1:2", "status": "serving", "version": "0.1.0",
        "started_at": 0, "heartbeat_at": 0
    });
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}services:auth:ghost"))
        .arg(ghost.to_string())
        .arg("PX")
        .arg(800)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        wait_for(&a, "auth", 2, Duration::from_secs(1)).await.len(),
        2
    );
    let list = wait_for(&a, "auth", 1, Duration::from_secs(2)).await;
    assert_eq!(
        list.len(),
        1,
        "the ghost is dropped after its TTL: {list:?}"
    );
    assert_ne!(list[0]["instance_id"], "ghost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_reaches_a_users_websocket_on_another_gateway_through_route_message() {
    use sdsim_protocols::proto::gateway::gateway_service_client::GatewayServiceClient;
    use sdsim_protocols::proto::gateway::RouteMessageRequest;
    let db = TestDb::create().await;
    let shared = settings(&db);
    let a = Stack::start(shared.clone(), &Service::ALL);
    let b = Stack::start(shared, &Service::ALL);
    a.wait_ready().await;
    b.wait_ready().await;
    let email = unique_email("route");
    let reg = a.register(&email, "a long enough password").await;
    let user_id = reg["user"]["id"].as_str().unwrap().to_string();
    let token = a.login(&email, "a long enough password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = b.ws().await; // the user is on gateway B
    ws.authenticate(&token).await;

    // A backend service calls gateway A.
    let gw_a = a.running.addrs(Service::Gateway).grpc;
    let mut client = GatewayServiceClient::connect(format!("http://{gw_a}"))
        .await
        .unwrap();
    let res = client
        .route_message(RouteMessageRequest {
            target_user_id: user_id.clone(),
            message_type: "simulation.completed".into(),
            payload: br#"{"simulation_id":"s-1","status":"done"}"#.to_vec(),
            source_service: "simulation".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(res.delivered, "{}", res.message);
    let f = ws.frame(Duration::from_secs(5)).await;
    assert_eq!(f["type"], "simulation.completed", "{f}");
    assert_eq!(f["channel"], format!("notifications:user:{user_id}"));
    assert_eq!(f["data"]["simulation_id"], "s-1");

    // Bad requests are named; a user with no session anywhere is "not delivered".
    let e = client
        .route_message(RouteMessageRequest {
            target_user_id: user_id.clone(),
            message_type: "x".into(),
            payload: b"{not json".to_vec(),
            source_service: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(e.metadata().get("x-sdsim-error-field").unwrap(), "payload");
    let res = client
        .route_message(RouteMessageRequest {
            target_user_id: uuid::Uuid::new_v4().to_string(),
            message_type: "x".into(),
            payload: b"{}".to_vec(),
            source_service: "t".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!res.delivered);
}
