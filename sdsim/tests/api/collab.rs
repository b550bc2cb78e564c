//! Live collaboration on `/ws/collaboration/{project_id}` (docs/collaboration.md): editors
//! on two gateway instances converge on one document that holds every acknowledged edit,
//! and so does the version it becomes; an edit made offline is merged on reconnect; REST
//! goes through the live document (or is refused while live edits are unsaved); viewers
//! cannot edit, strangers and unknown projects get 4004, a revoked share closes the socket;
//! no acknowledged edit is lost when the project process is killed.

use crate::helpers::*;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use sdsim_project::ops;
use sdsim_protocols::Service;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// One collaborator: their socket, the document as they have it, and what they sent.
struct Peer {
    ws: Ws,
    client: String,
    doc: Value,
    seq: i64,
    next_edit: i64,
    /// (client, edit) of every edit received, in order.
    seen: Vec<(String, i64)>,
    /// edit id -> seq of the acks received.
    acked: HashMap<i64, i64>,
    errors: Vec<Value>,
}

impl Peer {
    async fn join(base: &str, project: &str, token: &str, client: &str) -> Self {
        let ws = connect(base, project, None).await;
        let mut p = Peer {
            ws,
            client: client.to_string(),
            doc: Value::Null,
            seq: 0,
            next_edit: 1,
            seen: Vec::new(),
            acked: HashMap::new(),
            errors: Vec::new(),
        };
        p.ws.authenticate(token).await;
        let sync = p.ws.frame(WAIT).await;
        assert_eq!(sync["type"], "collaboration.sync", "{sync}");
        assert_eq!(sync["data"]["resumed"], false);
        p.doc = json!({"design": sync["data"]["design"], "layout": sync["data"]["layout"]});
        p.seq = sync["offset"].as_str().unwrap().parse().unwrap();
        p
    }

    async fn edit(&mut self, ops: Value) -> i64 {
        let id = self.next_edit;
        self.next_edit += 1;
        self.ws
            .send(json!({"type": "edit", "client_id": self.client, "edit_id": id, "ops": ops}))
            .await;
        id
    }

    /// Takes one frame in: edits applied in order (none missed, none twice), acks noted.
    fn take(&mut self, f: Value) {
        match f["type"].as_str() {
            Some("collaboration.edit") => {
                let seq: i64 = f["offset"].as_str().unwrap().parse().unwrap();
                assert_eq!(seq, self.seq + 1, "edits in order, no gap, none twice: {f}");
                self.seq = seq;
                let parsed = ops::parse(&f["data"]["ops"]).expect("streamed ops parse");
                ops::apply_all(&mut self.doc, &parsed);
                self.seen.push((
                    f["data"]["client_id"].as_str().unwrap().to_string(),
                    f["data"]["edit_id"].as_i64().unwrap(),
                ));
            }
            Some("collaboration.ack") => {
                let seq: i64 = f["offset"].as_str().unwrap().parse().unwrap();
                self.acked
                    .insert(f["data"]["edit_id"].as_i64().unwrap(), seq);
            }
            Some("error") => self.errors.push(f),
            _ => {}
        }
    }

    /// Reads frames until this peer has edit `seq` and `acks` acks.
    async fn until(&mut self, seq: i64, acks: usize) {
        while self.seq < seq || self.acked.len() < acks {
            match self.ws.next(WAIT).await {
                Next::Frame(f) => self.take(f),
                other => panic!(
                    "{}: at {} of {seq}, {} of {acks} acks: {other:?}",
                    self.client,
                    self.seq,
                    self.acked.len()
                ),
            }
        }
    }
}

async fn connect(base: &str, project: &str, since: Option<i64>) -> Ws {
    let url = match since {
        Some(s) => format!("{base}/ws/collaboration/{project}?since={s}"),
        None => format!("{base}/ws/collaboration/{project}"),
    };
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connect");
    Ws { socket }
}

/// A registered user, their address verified: (email, token).
async fn person(s: &Stack, tag: &str) -> (String, String) {
    let email = unique_email(tag);
    let token = verified(s, &email).await;
    (email, token)
}

async fn new_project(s: &Stack, owner: &str) -> String {
    let (st, b) = call(
        s,
        Method::POST,
        "/api/projects",
        owner,
        Some(json!({"name": "Drawn together", "template_id": "three-tier-web-app"})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    b["project"]["id"].as_str().unwrap().to_string()
}

async fn share(s: &Stack, owner: &str, project: &str, email: &str, role: &str) {
    let (st, b) = call(
        s,
        Method::POST,
        &format!("/api/projects/{project}/shares"),
        owner,
        Some(json!({"email": email, "role": role})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
}

/// The project as REST shows it: `{"design", "layout"}` and its version.
async fn stored(s: &Stack, token: &str, project: &str) -> (Value, i64) {
    let (st, b) = call(
        s,
        Method::GET,
        &format!("/api/projects/{project}"),
        token,
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    (
        json!({"design": b["project"]["design"], "layout": b["project"]["layout"]}),
        b["project"]["version"].as_i64().unwrap(),
    )
}

/// Waits until the newest stored version equals `doc` (the live document became a version
/// by itself: versions are read without the read-through save of GET /api/projects/{id}).
async fn saved_as_version(s: &Stack, token: &str, project: &str, doc: &Value) -> i64 {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (st, list) = call(
            s,
            Method::GET,
            &format!("/api/projects/{project}/versions"),
            token,
            None,
        )
        .await;
        assert_eq!(st, 200, "{list}");
        let newest = list["versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["version"].as_i64())
            .max()
            .unwrap();
        let (_, v) = call(
            s,
            Method::GET,
            &format!("/api/projects/{project}/versions/{newest}"),
            token,
            None,
        )
        .await;
        last = json!({"design": v["design"], "layout": v["layout"]});
        if last == *doc {
            assert!(
                v["version"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Live edit"),
                "{v}"
            );
            return newest;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, *doc, "the newest version is the live document");
    unreachable!()
}

/// Random edits that touch shared and private things: component fields (the same field
/// by several people: the last wins), positions, new components, deletions.
fn random_ops(rng: &mut rand::rngs::StdRng, who: usize, n: i64) -> Value {
    let names = ["web", "api", "db", "cache"];
    match rng.random_range(0..5) {
        0 => json!([{"op": "set",
            "path": ["design", "components", {"name": names[rng.random_range(0..4)]}, "replicas"],
            "value": rng.random_range(1..9)}]),
        1 => {
            json!([{"op": "set", "path": ["layout", "positions", format!("p{}", rng.random_range(0..3))],
            "value": {"x": who, "y": n}}])
        }
        2 => json!([
            {"op": "set", "path": ["design", "components", {"name": format!("svc-{who}-{n}")}],
             "value": {"name": format!("svc-{who}-{n}"), "kind": "microservice"}},
            {"op": "set", "path": ["layout", "mine", format!("c{who}-{n}")], "value": n}
        ]),
        3 => {
            json!([{"op": "delete", "path": ["layout", "mine", format!("c{who}-{}", rng.random_range(0..n.max(1)))]}])
        }
        _ => {
            json!([{"op": "set", "path": ["design", "description"], "value": format!("by {who} at {n}")}])
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_on_two_gateways_converge_and_the_version_holds_every_acknowledged_edit() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    settings.project.live_snapshot_s = 1;
    let s = Stack::start(settings.clone(), &Service::ALL);
    s.wait_ready().await;
    let mut second = settings.clone();
    *second.listen_mut(Service::Gateway) = sdsim_runtime::config::Listen::any();
    let g2 = Stack::start(second, &[Service::Gateway]);
    g2.wait_ready().await;

    let (_, owner) = person(&s, "owner").await;
    let project = new_project(&s, &owner).await;
    let mut tokens = vec![owner.clone()];
    for i in 0..3 {
        let (email, token) = person(&s, &format!("editor{i}")).await;
        share(&s, &owner, &project, &email, "editor").await;
        tokens.push(token);
    }
    let (viewer_email, viewer) = person(&s, "viewer").await;
    share(&s, &owner, &project, &viewer_email, "viewer").await;
    let (_, stranger) = person(&s, "stranger").await;

    // Four editors, two on each gateway, and a viewer.
    let mut peers = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let base = if i % 2 == 0 { &s.ws_base } else { &g2.ws_base };
        peers.push(Peer::join(base, &project, t, &format!("tab-{i}")).await);
    }
    let start = peers[0].doc.clone();
    assert!(peers.iter().all(|p| p.doc == start && p.seq == 0));
    let mut watcher = Peer::join(&g2.ws_base, &project, &viewer, "viewer-tab").await;

    // 20 random edits each, all at once.
    const EDITS: i64 = 20;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let plans: Vec<Vec<Value>> = (0..peers.len())
        .map(|who| (1..=EDITS).map(|n| random_ops(&mut rng, who, n)).collect())
        .collect();
    let total = EDITS * peers.len() as i64;
    let added: Vec<String> = plans
        .iter()
        .flatten()
        .filter_map(|ops| ops[0]["value"]["name"].as_str().map(str::to_string))
        .collect();
    let runs = peers.iter_mut().zip(plans).map(|(p, plan)| async move {
        for ops in plan {
            p.edit(ops).await;
            // Read what has come meanwhile, without waiting.
            while let Next::Frame(f) = p.ws.next(Duration::from_millis(5)).await {
                p.take(f);
            }
        }
        p.until(total, EDITS as usize).await;
    });
    futures_util::future::join_all(runs).await;
    watcher.until(total, 0).await;

    // Every screen has the same document, every edit once, and every ack's edit.
    for p in &peers {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.doc, peers[0].doc, "{} converged", p.client);
        assert_eq!(p.seen, peers[0].seen, "one order for everyone");
        let mine: BTreeSet<i64> = p
            .seen
            .iter()
            .filter(|(c, _)| *c == p.client)
            .map(|(_, e)| *e)
            .collect();
        assert_eq!(mine, (1..=EDITS).collect(), "{}: every edit once", p.client);
        for (edit, seq) in &p.acked {
            let at = p.seen[(*seq - 1) as usize].clone();
            assert_eq!(
                at,
                (p.client.clone(), *edit),
                "acked as the edit at its seq"
            );
        }
    }
    assert_eq!(watcher.doc, peers[0].doc, "the viewer watched it all");
    // Every new component an editor added is there.
    let names: BTreeSet<String> = peers[0].doc["design"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!added.is_empty());
    for n in &added {
        assert!(
            names.contains(n),
            "{n} was added and acknowledged: {names:?}"
        );
    }
    // The live document becomes a version by itself (the snapshot runs every second here),
    // and reading the project gives the same.
    let version = saved_as_version(&s, &owner, &project, &peers[0].doc).await;
    assert!(version > 1);
    assert_eq!(stored(&s, &owner, &project).await.0, peers[0].doc);

    // A viewer's edit is refused with an error frame; the socket stays open.
    let id = watcher
        .edit(json!([{"op": "set", "path": ["design", "name"], "value": "mine"}]))
        .await;
    let f = watcher.ws.frame(WAIT).await;
    assert_eq!(
        (&f["type"], &f["code"], &f["edit_id"]),
        (&json!("error"), &json!("read_only"), &json!(id)),
        "{f}"
    );
    watcher.ws.send(json!({"type": "ping"})).await;
    assert_eq!(watcher.ws.frame(WAIT).await["type"], "pong");
    // A malformed edit is named, nothing applied.
    let id = peers[0]
        .edit(json!([{"op": "move", "path": ["design", "name"]}]))
        .await;
    let f = peers[0].ws.frame(WAIT).await;
    assert_eq!(
        (&f["code"], &f["edit_id"]),
        (&json!("invalid_edit"), &json!(id)),
        "{f}"
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("op must be set or delete"),
        "{f}"
    );
    // Ops each within JSON's depth that together would nest the layout past what can be
    // read back: refused, and the project still opens.
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({ "a": deep });
    }
    let mut path = vec![json!("layout"), json!("bomb")];
    path.extend(std::iter::repeat_n(json!("a"), 29));
    path.push(json!("b"));
    let id = peers[0]
        .edit(json!([
            {"op": "set", "path": ["layout", "bomb"], "value": deep},
            {"op": "set", "path": path, "value": deep},
        ]))
        .await;
    let f = peers[0].ws.frame(WAIT).await;
    assert_eq!(
        (&f["code"], &f["edit_id"]),
        (&json!("invalid_edit"), &json!(id)),
        "{f}"
    );
    assert!(
        f["message"].as_str().unwrap().contains("levels deep"),
        "{f}"
    );
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("/api/projects/{project}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");

    // Strangers and unknown projects: 4004.
    for (p, t) in [
        (project.as_str(), &stranger),
        ("6d1f5c1e-0000-4000-8000-000000000000", &owner),
        ("not-a-project", &owner),
    ] {
        let mut ws = connect(&s.ws_base, p, None).await;
        ws.send(json!({"type": "auth", "token": t})).await;
        ws.expect_close(4004, WAIT).await;
    }

    // Revoking a share closes that person's socket with 4004 at once.
    let (st, b) = call(
        &s,
        Method::DELETE,
        &format!("/api/projects/{project}/shares?email={viewer_email}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    loop {
        match watcher.ws.next(WAIT).await {
            Next::Frame(_) => continue,
            Next::Closed(code, _) => {
                assert_eq!(code, Some(4004));
                break;
            }
            Next::Timeout => panic!("the revoked socket stayed open"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_merge_on_reconnect_and_rest_goes_through_the_live_document() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    // Saved as a version when the last person leaves, not on a timer, in this test.
    settings.project.live_snapshot_s = 3_600;
    let s = Stack::start(settings, &Service::ALL);
    s.wait_ready().await;
    let (_, owner) = person(&s, "owner").await;
    let (email, editor) = person(&s, "editor").await;
    let project = new_project(&s, &owner).await;
    share(&s, &owner, &project, &email, "editor").await;

    let mut a = Peer::join(&s.ws_base, &project, &owner, "a").await;
    let mut b = Peer::join(&s.ws_base, &project, &editor, "b").await;
    // Each sees the other arrive.
    let mut saw = false;
    while !saw {
        let f = a.ws.frame(WAIT).await;
        saw = f["type"] == "collaboration.presence";
    }
    a.edit(json!([{"op": "set", "path": ["layout", "a"], "value": 1}]))
        .await;
    a.until(1, 1).await;
    b.until(1, 0).await;

    // A goes offline; both edit meanwhile (A's edits wait on A's side).
    drop(a.ws);
    b.edit(json!([{"op": "set", "path": ["layout", "b"], "value": 2}]))
        .await;
    b.edit(json!([{"op": "set", "path": ["design", "components", {"name": "api"}, "replicas"], "value": 5}]))
        .await;
    b.until(3, 2).await;
    let offline = [
        json!([{"op": "set", "path": ["layout", "offline"], "value": true}]),
        json!([{"op": "set", "path": ["design", "components", {"name": "api"}, "replicas"], "value": 9}]),
    ];
    // A reconnects from where it was: B's edits first, then its own, sent again.
    a.ws = connect(&s.ws_base, &project, Some(a.seq)).await;
    a.ws.authenticate(&owner).await;
    let sync = a.ws.frame(WAIT).await;
    assert_eq!(sync["type"], "collaboration.sync");
    assert_eq!(sync["data"]["resumed"], true, "{sync}");
    assert!(sync["data"].get("design").is_none());
    a.until(3, 1).await;
    for ops in offline {
        a.edit(ops).await;
    }
    // The first edit again (its ack was lost, say): applied once.
    a.ws
        .send(json!({"type": "edit", "client_id": "a", "edit_id": 1, "ops": [{"op": "set", "path": ["layout", "a"], "value": 100}]}))
        .await;
    a.until(5, 3).await;
    b.until(5, 2).await;
    assert_eq!(a.doc, b.doc);
    assert_eq!(a.doc["layout"]["a"], 1, "a duplicate is not applied twice");
    assert_eq!(a.doc["layout"]["offline"], true);
    let api = a.doc["design"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api["replicas"], 9, "the later edit of a field wins");

    // REST may not overwrite live edits that are not a version yet.
    let version = sync["data"]["version"].as_i64().unwrap();
    let mut changed = a.doc["design"].clone();
    changed["duration_s"] = json!(99);
    let patch = |token: String, body: Value, version: Option<i64>| {
        let mut r = s
            .authed(Method::PATCH, &format!("/api/projects/{project}"), &token)
            .json(&body);
        if let Some(v) = version {
            r = r.header("if-match", format!("\"{v}\""));
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (st, body) = patch(owner.clone(), json!({"design": changed}), Some(version)).await;
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["error"]["code"], "live_session", "{body}");

    // A named save names the live document as it is.
    let (st, body) = patch(
        editor.clone(),
        json!({"named": true, "message": "checkpoint"}),
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["project"]["design"], a.doc["design"],
        "the live design"
    );
    let version = body["project"]["version"].as_i64().unwrap();
    let (_, versions) = call(
        &s,
        Method::GET,
        &format!("/api/projects/{project}/versions"),
        &owner,
        None,
    )
    .await;
    assert!(versions.to_string().contains("checkpoint"), "{versions}");

    // Now a REST change goes through the live document: both get it as an edit.
    let (st, body) = patch(owner.clone(), json!({"design": changed}), Some(version)).await;
    assert_eq!(st, 200, "{body}");
    a.until(6, 3).await;
    b.until(6, 2).await;
    assert_eq!(a.seen.last().unwrap().0, "rest");
    assert_eq!(a.doc["design"], changed);
    assert_eq!(a.doc, b.doc);

    // Reading the project (as a run of it does) saves the live edits first.
    b.edit(json!([{"op": "set", "path": ["layout", "late"], "value": true}]))
        .await;
    b.until(7, 3).await;
    let (now, _) = stored(&s, &owner, &project).await;
    assert_eq!(now, b.doc, "what a reader gets is what people see");

    // When the last person leaves, the live document becomes a version.
    b.edit(json!([{"op": "set", "path": ["layout", "last"], "value": 1}]))
        .await;
    b.until(8, 4).await;
    drop(a.ws);
    drop(b.ws);
    saved_as_version(&s, &owner, &project, &b.doc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_edit_is_lost_when_the_project_process_is_killed() {
    let db = TestDb::create().await;
    let settings = settings(&db);
    let logs = std::env::temp_dir().join(format!("sdsim-collab-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&logs).unwrap();
    let (grpc, http) = (free_addr(), free_addr());
    let mut project_process =
        ServiceProcess::spawn("project", &settings, grpc, http, &logs.join("p1.log"));
    project_process.wait_healthy().await;
    // The gateway finds the project process through discovery (same Redis prefix).
    let s = Stack::start(
        settings.clone(),
        &[Service::Gateway, Service::Auth, Service::Simulation],
    );
    s.wait_ready().await;
    let (_, owner) = person(&s, "owner").await;
    let project = new_project(&s, &owner).await;
    let mut a = Peer::join(&s.ws_base, &project, &owner, "a").await;

    // Edits one after another; the project process is killed with SIGKILL a third of the
    // way in and started again. Each edit sets a key of its own.
    const EDITS: i64 = 30;
    for n in 1..=EDITS {
        a.edit(json!([{"op": "set", "path": ["layout", format!("k{n}")], "value": n}]))
            .await;
        if n == EDITS / 3 {
            a.until(0, (n - 1) as usize).await;
            project_process.sigkill();
            project_process =
                ServiceProcess::spawn("project", &settings, grpc, http, &logs.join("p2.log"));
        }
        while let Next::Frame(f) = a.ws.next(Duration::from_millis(5)).await {
            a.take(f);
        }
    }
    project_process.wait_healthy().await;
    a.until(EDITS, EDITS as usize).await;
    for n in 1..=EDITS {
        assert_eq!(a.doc["layout"][format!("k{n}")], n, "edit {n}");
    }
    // A newcomer's document (from PostgreSQL) holds every acknowledged edit.
    let b = Peer::join(&s.ws_base, &project, &owner, "b").await;
    assert_eq!(b.seq, EDITS);
    assert_eq!(b.doc, a.doc);
    drop(project_process);
    let _ = std::fs::remove_dir_all(&logs);
}

/// Edits too large to replay in one answer (each REST save of a large design is an edit of
/// the live document): a client resuming from before them gets the whole document, not an
/// error it would retry forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_behind_edits_too_large_to_replay_syncs_the_whole_document() {
    let db = TestDb::create().await;
    let s = Stack::start(settings(&db), &Service::ALL);
    s.wait_ready().await;
    let (_, owner) = person(&s, "owner").await;
    let project = new_project(&s, &owner).await;
    let mut a = Peer::join(&s.ws_base, &project, &owner, "a").await;
    // Ordinary edits first, saved as a version (REST design changes wait for that).
    for n in 0..10 {
        a.edit(json!([{"op": "set", "path": ["layout", format!("k{n}")], "value": n}]))
            .await;
    }
    a.until(a.seq + 10, 10).await;
    let r = s
        .authed(Method::PATCH, &format!("/api/projects/{project}"), &owner)
        .json(&json!({"named": true, "message": "before the large ones"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let since = a.seq;
    let mut version = stored(&s, &owner, &project).await.1;
    for i in 0..3 {
        let design = json!({"name": format!("big {i}"), "notes": "x".repeat(2_000_000)});
        let r = s
            .authed(Method::PATCH, &format!("/api/projects/{project}"), &owner)
            .header("if-match", format!("\"{version}\""))
            .json(&json!({"design": design}))
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let b: Value = r.json().await.unwrap();
        assert_eq!(st, 200, "save {i}: {b}");
        version = b["project"]["version"].as_i64().unwrap();
        a.until(since + i + 1, 0).await;
    }
    // A large edit trims the stream to a few entries (it held the ten small ones too).
    let ns = sdsim_protocols::names::Namespace::new(s.settings.redis.prefix.clone());
    let stream = ns.collaboration_stream(&project);
    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let len: i64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(len <= 8, "{stream} holds {len} entries");
    let mut ws = connect(&s.ws_base, &project, Some(since)).await;
    ws.authenticate(&owner).await;
    let sync = ws.frame(WAIT).await;
    assert_eq!(sync["type"], "collaboration.sync", "{sync}");
    assert_eq!(sync["data"]["resumed"], false);
    assert_eq!(sync["data"]["design"], a.doc["design"]);
    assert_eq!(sync["data"]["design"]["name"], "big 2");

    // The live state in Redis expires (a day after its last write), and goes with a purge.
    let ttl: i64 = redis::cmd("TTL")
        .arg(&stream)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 86_400, "TTL of {stream}: {ttl}");
    // Both leave first (their leaving is announced in the stream), then the purge.
    drop((a.ws, ws));
    let presence = ns.collaboration_presence(&project);
    for _ in 0..50 {
        let n: i64 = redis::cmd("HLEN")
            .arg(&presence)
            .query_async(&mut redis)
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (method, path) in [
        (Method::DELETE, format!("/api/projects/{project}")),
        (Method::POST, format!("/api/projects/{project}/purge")),
    ] {
        let (st, b) = call(&s, method, &path, &owner, None).await;
        assert!(st < 300, "{path}: {st} {b}");
    }
    let mut gone = false;
    for _ in 0..50 {
        let n: i64 = redis::cmd("EXISTS")
            .arg(&stream)
            .query_async(&mut redis)
            .await
            .unwrap();
        if n == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "{stream} removed with the purged project");
}
