//! The live documents open on this instance: a [`LiveDoc`] actor per project someone is
//! editing here, under the supervised [`LiveDocs`].
//!
//! A `LiveDoc` owns its document's lifecycle on this instance, not its edits: edits commit
//! straight from the gRPC handlers to PostgreSQL (every core; the row lock orders them, see
//! [`crate::live`]), so no edit waits on an actor. It saves the document's unsaved edits as a
//! version every `live_snapshot_s` while people are in it here, and once more when the last
//! of them leaves, then stops. With several instances, each has the `LiveDoc`s of the
//! sessions it serves; a save is one transaction that re-checks what is unsaved, so two
//! instances saving at once write one version. The janitor's slower sweep saves what an
//! instance that died left unsaved.

use crate::core::ProjectCore;
use actix::prelude::*;
use sdsim_runtime::slot::Slot;
use sdsim_runtime::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Someone joined project `0`'s live session on this instance.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Opened(pub Uuid);

/// Someone left project `0`'s live session on this instance.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Closed(pub Uuid);

/// A `LiveDoc` stopped (its last session here left).
#[derive(Message)]
#[rtype(result = "()")]
struct Gone(Uuid, Addr<LiveDoc>);

/// The supervisor-facing owner of this instance's open documents.
pub struct LiveDocs {
    core: Arc<ProjectCore>,
    slot: Slot<LiveDocs>,
    open: HashMap<Uuid, Addr<LiveDoc>>,
    _link: ChildLink,
}

impl LiveDocs {
    pub fn child(core: Arc<ProjectCore>, slot: Slot<LiveDocs>) -> ChildSpec {
        ChildSpec::worker("live_docs", Restart::Permanent, move |link| {
            Ok(ChildHandle::from_addr(
                LiveDocs {
                    core: core.clone(),
                    slot: slot.clone(),
                    open: HashMap::new(),
                    _link: link,
                }
                .start(),
            ))
        })
    }
}

impl Actor for LiveDocs {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.slot.set(ctx.address());
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.slot.clear(&ctx.address());
        for doc in self.open.values() {
            doc.do_send(Shutdown);
        }
    }
}
sdsim_runtime::impl_supervised!(LiveDocs);

impl Handler<Opened> for LiveDocs {
    type Result = ();
    fn handle(&mut self, msg: Opened, ctx: &mut Context<Self>) {
        let doc = match self.open.get(&msg.0).filter(|a| a.connected()) {
            Some(a) => a.clone(),
            None => {
                let a = LiveDoc {
                    project: msg.0,
                    core: self.core.clone(),
                    sessions: 0,
                    parent: ctx.address(),
                    saving: false,
                    joins: 0,
                }
                .start();
                self.open.insert(msg.0, a.clone());
                a
            }
        };
        doc.do_send(Join);
    }
}

impl Handler<Closed> for LiveDocs {
    type Result = ();
    fn handle(&mut self, msg: Closed, _: &mut Context<Self>) {
        if let Some(doc) = self.open.get(&msg.0) {
            doc.do_send(Leave);
        }
    }
}

impl Handler<Gone> for LiveDocs {
    type Result = ();
    fn handle(&mut self, msg: Gone, _: &mut Context<Self>) {
        if self.open.get(&msg.0) == Some(&msg.1) {
            self.open.remove(&msg.0);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Join;

#[derive(Message)]
#[rtype(result = "()")]
struct Leave;

#[derive(Message)]
#[rtype(result = "()")]
struct Shutdown;

/// One project's live document on this instance (see the module's documentation).
pub struct LiveDoc {
    project: Uuid,
    core: Arc<ProjectCore>,
    /// Its sessions on this instance.
    sessions: usize,
    parent: Addr<LiveDocs>,
    saving: bool,
    /// Joins so far (a save that sees it change knows someone came meanwhile).
    joins: u64,
}

impl LiveDoc {
    /// Saves the unsaved edits as a version, if any (one save at a time). After `last` (its
    /// last session here left), or when nobody was seen in the project lately (a gateway
    /// that died never said who left), this document is done here and stops, unless someone
    /// joined meanwhile.
    fn save(&mut self, ctx: &mut Context<Self>, last: bool) {
        if self.saving && !last {
            return;
        }
        self.saving = true;
        let (core, project, joins) = (self.core.clone(), self.project, self.joins);
        ctx.spawn(
            async move {
                if let Err(e) = core.settle_live(&project.to_string()).await {
                    tracing::warn!(%project, error = %e, "live document not saved; retrying later");
                }
                core.present(project)
                    .await
                    .map(|p| p.is_empty())
                    .unwrap_or(false)
            }
            .into_actor(self)
            .map(move |nobody, act, ctx| {
                act.saving = false;
                let joined_meanwhile = act.joins != joins;
                if !joined_meanwhile && ((last && act.sessions == 0) || nobody) {
                    ctx.stop();
                }
            }),
        );
    }
}

impl Actor for LiveDoc {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = Duration::from_secs(self.core.settings.live_snapshot_s.max(1));
        ctx.run_interval(every, |act, ctx| act.save(ctx, false));
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.parent.do_send(Gone(self.project, ctx.address()));
    }
}

impl Handler<Join> for LiveDoc {
    type Result = ();
    fn handle(&mut self, _: Join, _: &mut Context<Self>) {
        self.sessions += 1;
        self.joins += 1;
    }
}

impl Handler<Leave> for LiveDoc {
    type Result = ();
    fn handle(&mut self, _: Leave, ctx: &mut Context<Self>) {
        self.sessions = self.sessions.saturating_sub(1);
        if self.sessions == 0 {
            // The last one here: what they did becomes a version now, then this stops.
            self.save(ctx, true);
        }
    }
}

impl Handler<Shutdown> for LiveDoc {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
