//! Tests of the supervision runtime with real actix actors.

use super::*;
use crate::metrics::Metrics;
use actix::prelude::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default, Clone)]
struct Registry {
    addrs: Arc<Mutex<HashMap<String, Addr<Worker>>>>,
    starts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Registry {
    fn starts(&self, id: &str) -> usize {
        self.starts.lock().unwrap().get(id).copied().unwrap_or(0)
    }
    fn addr(&self, id: &str) -> Addr<Worker> {
        self.addrs
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .expect("worker started")
    }
}

struct Worker {
    id: String,
    reg: Registry,
    link: ChildLink,
}

impl Actor for Worker {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        self.reg
            .addrs
            .lock()
            .unwrap()
            .insert(self.id.clone(), ctx.address());
        *self
            .reg
            .starts
            .lock()
            .unwrap()
            .entry(self.id.clone())
            .or_default() += 1;
    }
}
crate::impl_supervised!(Worker);

#[derive(Message)]
#[rtype(result = "()")]
enum Cmd {
    Panic,
    Fail,
    Finish,
}

impl Handler<Cmd> for Worker {
    type Result = ();
    fn handle(&mut self, msg: Cmd, ctx: &mut Context<Self>) {
        match msg {
            Cmd::Panic => panic!("worker {} told to panic (expected in this test)", self.id),
            Cmd::Fail => {
                self.link.fail("told to fail");
                ctx.stop();
            }
            Cmd::Finish => ctx.stop(),
        }
    }
}

fn worker(id: &str, restart: Restart, reg: &Registry) -> ChildSpec {
    let reg = reg.clone();
    let id2 = id.to_string();
    ChildSpec::worker(id, restart, move |link| {
        let addr = Worker {
            id: id2.clone(),
            reg: reg.clone(),
            link,
        }
        .start();
        Ok(ChildHandle::from_addr(addr))
    })
}

fn spec(name: &str, strategy: Strategy) -> SupervisorSpec {
    SupervisorSpec::new("test", name, strategy).backoff(Backoff::none())
}

async fn settle() {
    actix_rt::time::sleep(Duration::from_millis(60)).await;
}

fn restarts(m: &Metrics, sup: &str, child: &str, reason: &str) -> u64 {
    m.supervisor_restarts
        .with_label_values(&["test", sup, child, reason])
        .get()
}

#[actix_rt::test]
async fn panicking_child_is_restarted_and_counted() {
    let reg = Registry::default();
    let metrics = Metrics::new();
    let view = TreeView::new();
    let _sup = Supervisor::start_root(
        spec("root", Strategy::OneForOne)
            .child(worker("a", Restart::Permanent, &reg))
            .child(worker("b", Restart::Permanent, &reg)),
        view.clone(),
        metrics.clone(),
        || {},
    );
    settle().await;
    assert_eq!(reg.starts("a"), 1);
    reg.addr("a").do_send(Cmd::Panic);
    settle().await;
    assert_eq!(reg.starts("a"), 2, "panicked child restarted");
    assert_eq!(reg.starts("b"), 1, "one_for_one leaves siblings alone");
    assert_eq!(restarts(&metrics, "root", "a", "panic"), 1);
    assert!(metrics
        .render()
        .contains("sdsim_supervisor_restarts_total{child=\"a\",reason=\"panic\",service=\"test\",supervisor=\"root\"} 1"));
    let snap = view.snapshot("root").unwrap();
    assert_eq!(snap.children[0].restarts, 1);
    assert_eq!(snap.children[0].status, ChildStatus::Running);
    assert_eq!(snap.children[0].last_exit.as_deref(), Some("panic"));
}

#[actix_rt::test]
async fn restart_types_decide_what_comes_back() {
    let reg = Registry::default();
    let metrics = Metrics::new();
    let _sup = Supervisor::start_root(
        spec("root", Strategy::OneForOne)
            .child(worker("perm", Restart::Permanent, &reg))
            .child(worker("trans", Restart::Transient, &reg))
            .child(worker("temp", Restart::Temporary, &reg))
            .child(worker("trans2", Restart::Transient, &reg)),
        TreeView::new(),
        metrics.clone(),
        || {},
    );
    settle().await;
    reg.addr("perm").do_send(Cmd::Finish);
    reg.addr("trans").do_send(Cmd::Finish);
    reg.addr("temp").do_send(Cmd::Panic);
    reg.addr("trans2").do_send(Cmd::Fail);
    settle().await;
    assert_eq!(
        reg.starts("perm"),
        2,
        "permanent restarts even after a normal exit"
    );
    assert_eq!(
        reg.starts("trans"),
        1,
        "transient stays down after a normal exit"
    );
    assert_eq!(reg.starts("temp"), 1, "temporary never restarts");
    assert_eq!(
        reg.starts("trans2"),
        2,
        "transient restarts after a failure"
    );
    assert_eq!(restarts(&metrics, "root", "trans2", "failure"), 1);
    assert_eq!(restarts(&metrics, "root", "perm", "normal"), 1);
}

#[actix_rt::test]
async fn one_for_all_restarts_every_child() {
    let reg = Registry::default();
    let metrics = Metrics::new();
    let _sup = Supervisor::start_root(
        spec("root", Strategy::OneForAll)
            .child(worker("a", Restart::Permanent, &reg))
            .child(worker("b", Restart::Permanent, &reg))
            .child(worker("c", Restart::Permanent, &reg)),
        TreeView::new(),
        metrics.clone(),
        || {},
    );
    settle().await;
    reg.addr("b").do_send(Cmd::Panic);
    settle().await;
    assert_eq!(
        (reg.starts("a"), reg.starts("b"), reg.starts("c")),
        (2, 2, 2)
    );
    assert_eq!(restarts(&metrics, "root", "a", "sibling_restart"), 1);
    assert_eq!(restarts(&metrics, "root", "b", "panic"), 1);
}

#[actix_rt::test]
async fn rest_for_one_restarts_later_children_only() {
    let reg = Registry::default();
    let _sup = Supervisor::start_root(
        spec("root", Strategy::RestForOne)
            .child(worker("a", Restart::Permanent, &reg))
            .child(worker("b", Restart::Permanent, &reg))
            .child(worker("c", Restart::Permanent, &reg)),
        TreeView::new(),
        Metrics::new(),
        || {},
    );
    settle().await;
    reg.addr("b").do_send(Cmd::Panic);
    settle().await;
    assert_eq!(
        (reg.starts("a"), reg.starts("b"), reg.starts("c")),
        (1, 2, 2)
    );
}

#[actix_rt::test]
async fn root_gives_up_past_its_intensity() {
    let reg = Registry::default();
    let gave_up = Arc::new(AtomicUsize::new(0));
    let g = gave_up.clone();
    let view = TreeView::new();
    let _sup = Supervisor::start_root(
        spec("root", Strategy::OneForOne)
            .intensity(Intensity {
                max_restarts: 2,
                period: Duration::from_secs(10),
            })
            .child(worker("a", Restart::Permanent, &reg)),
        view.clone(),
        Metrics::new(),
        move || {
            g.fetch_add(1, Ordering::SeqCst);
        },
    );
    for _ in 0..3 {
        settle().await;
        reg.addr("a").do_send(Cmd::Panic);
    }
    settle().await;
    assert_eq!(
        reg.starts("a"),
        3,
        "two restarts allowed, the third failure gives up"
    );
    assert_eq!(gave_up.load(Ordering::SeqCst), 1);
    assert!(view.snapshot("root").unwrap().gave_up);
}

#[actix_rt::test]
async fn nested_supervisor_escalates_to_its_parent() {
    let reg = Registry::default();
    let metrics = Metrics::new();
    let view = TreeView::new();
    let reg2 = reg.clone();
    let inner = move || {
        spec("root/inner", Strategy::OneForOne)
            .intensity(Intensity {
                max_restarts: 1,
                period: Duration::from_secs(10),
            })
            .child(worker("leaf", Restart::Permanent, &reg2))
    };
    let _sup = Supervisor::start_root(
        spec("root", Strategy::OneForOne)
            .child(worker("sibling", Restart::Permanent, &reg))
            .child(ChildSpec::supervisor(
                Restart::Permanent,
                inner,
                view.clone(),
                metrics.clone(),
            )),
        view.clone(),
        metrics.clone(),
        || {},
    );
    settle().await;
    reg.addr("leaf").do_send(Cmd::Panic); // restart 1: allowed
    settle().await;
    reg.addr("leaf").do_send(Cmd::Panic); // restart 2: inner gives up, escalates
    settle().await;
    assert_eq!(
        restarts(&metrics, "root", "root/inner", "failure"),
        1,
        "parent restarted the inner supervisor"
    );
    assert_eq!(
        reg.starts("leaf"),
        3,
        "a fresh inner supervisor started the leaf again"
    );
    assert_eq!(reg.starts("sibling"), 1);
    let tree = view.to_json();
    let root = &tree["supervisors"][0];
    assert_eq!(root["name"], "root");
    assert_eq!(root["children"][1]["supervisor"]["name"], "root/inner");
    assert_eq!(root["children"][1]["supervisor"]["gave_up"], false);
}

#[actix_rt::test]
async fn a_child_that_cannot_start_is_retried_with_backoff() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let metrics = Metrics::new();
    let gave_up = Arc::new(AtomicUsize::new(0));
    let g = gave_up.clone();
    let _sup = Supervisor::start_root(
        SupervisorSpec::new("test", "root", Strategy::OneForOne)
            .backoff(Backoff {
                base: Duration::from_millis(5),
                max: Duration::from_millis(20),
                jitter: 0.1,
            })
            .intensity(Intensity {
                max_restarts: 3,
                period: Duration::from_secs(10),
            })
            .child(ChildSpec::worker(
                "flaky",
                Restart::Permanent,
                move |_link| {
                    a.fetch_add(1, Ordering::SeqCst);
                    Err(StartError("port in use".into()))
                },
            )),
        TreeView::new(),
        metrics.clone(),
        move || {
            g.fetch_add(1, Ordering::SeqCst);
        },
    );
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        4,
        "first start plus three restarts"
    );
    assert_eq!(restarts(&metrics, "root", "flaky", "failure"), 3);
    assert_eq!(gave_up.load(Ordering::SeqCst), 1);
}
