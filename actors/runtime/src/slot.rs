//! The address of a supervised actor, kept current across restarts.
//!
//! Adapters (tonic services, HTTP handlers) hold a [`Slot`] instead of an `Addr`: the actor
//! puts its new address in the slot when it starts and takes it out when it stops, so callers
//! always reach the live instance, or get a clear "restarting" error in between.

use actix::{Actor, Addr};
use std::sync::{Arc, RwLock};

pub struct Slot<A: Actor> {
    inner: Arc<RwLock<Option<Addr<A>>>>,
}

impl<A: Actor> Clone for Slot<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Actor> Default for Slot<A> {
    fn default() -> Self {
        Self {
            inner: Arc::new(RwLock::new(None)),
        }
    }
}

impl<A: Actor> std::fmt::Debug for Slot<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("filled", &self.get().is_some())
            .finish()
    }
}

impl<A: Actor> Slot<A> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self, addr: Addr<A>) {
        if let Ok(mut g) = self.inner.write() {
            *g = Some(addr);
        }
    }

    /// Empties the slot if it still holds `addr` (a newer instance may already be there).
    pub fn clear(&self, addr: &Addr<A>) {
        if let Ok(mut g) = self.inner.write() {
            if g.as_ref() == Some(addr) {
                *g = None;
            }
        }
    }

    /// The live instance, if one is running.
    pub fn get(&self) -> Option<Addr<A>> {
        self.inner
            .read()
            .ok()?
            .as_ref()
            .filter(|a| a.connected())
            .cloned()
    }
}
