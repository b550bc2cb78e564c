//! One actor per live run on this instance, under the `runs` supervisor (the [`Keeper`]).
//!
//! A [`RunActor`] owns its run's lifecycle: when it starts, the run's engine thread and its
//! publisher start (the engine is CPU-bound and runs on a thread of its own, never on an
//! executor; the publisher is a task on the gRPC runtime, so runs spread over every core);
//! when the publisher has stored the run's end, the actor is told ([`Ended`]) and stops,
//! and the supervisor forgets it. A run that panics is not restarted (a deterministic run
//! would panic again): the panic is caught on its thread, the run ends as failed with its
//! reason and is counted in `sdsim_supervisor_restarts_total{supervisor="runs"}`, and no
//! other run is touched. Controls do not pass through the actor: they reach the run's
//! shared [`crate::runs::Control`] directly from the handlers.

use crate::keeper::Keeper;
use crate::runs::{Control, Progress, Ready, RunRow, Runs};
use actix::prelude::*;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Start this run under the supervisor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StartRun {
    pub(crate) row: RunRow,
    pub(crate) ready: Ready,
    pub(crate) control: Arc<Control>,
    pub(crate) progress: Arc<Mutex<Progress>>,
}

/// The run's end is stored: its actor stops.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Ended;

/// A run's actor stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct RunGone(pub(crate) Uuid, pub(crate) Addr<RunActor>);

pub struct RunActor {
    id: Uuid,
    runs: Arc<Runs>,
    start: Option<StartRun>,
    supervisor: Addr<Keeper>,
}

impl RunActor {
    pub(crate) fn new(runs: Arc<Runs>, start: StartRun, supervisor: Addr<Keeper>) -> Self {
        Self {
            id: start.row.id,
            runs,
            start: Some(start),
            supervisor,
        }
    }
}

impl Actor for RunActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(s) = self.start.take() {
            self.runs.attach(self.id, ctx.address());
            self.runs.launch_now(s.row, s.ready, s.control, s.progress);
        }
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.supervisor.do_send(RunGone(self.id, ctx.address()));
    }
}

impl Handler<Ended> for RunActor {
    type Result = ();
    fn handle(&mut self, _: Ended, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
