//! How frames and channel changes travel between the gateway's parts, as types that know
//! none of those parts: the registry, the subscriber, the sessions and the gRPC adapter all
//! import this module, and it imports none of them.
//!
//! - [`Deliver`], [`Disconnect`]: what a session actor receives.
//! - [`Backlog`], [`Admission`]: what a session has been sent and not yet written.
//! - [`Outlet`]: how frames reach one session (its recipients and its backlog).
//! - [`Resync`]: what the registry tells the subscriber when channels may have changed.

use actix::prelude::*;
use sdsim_protocols::frames::close_codes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Close code of a session ended by `UnregisterClient`: 1000 (normal closure) with the
/// caller's reason. Not a 4000-range code: those say what the *client* must fix (log in, stop
/// asking, read faster, refresh its token); here a backend ended the session on purpose, and a
/// client should not reconnect on its own.
pub const CLOSE_UNREGISTERED: u16 = 1000;

/// A frame to send to a client, already serialized (shared by every recipient).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<str>);

/// Close the session with `code` and `reason`; with `drain`, after the events already queued
/// for it are written.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub code: u16,
    pub reason: String,
    pub drain: bool,
}

impl Disconnect {
    pub fn too_slow() -> Self {
        Disconnect {
            code: close_codes::TOO_SLOW,
            reason: "too slow: events waiting for this client went over the limit".into(),
            drain: false,
        }
    }
}

/// What [`Backlog::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; send it.
    Queued,
    /// This frame would take the session over its limits: it is now marked too slow.
    Overflowed,
    /// The session was already too slow: drop the frame.
    Refused,
}

/// Bytes and frames sent to one session and not yet handed to its socket; shared by the
/// senders (through the registry) and the session actor.
#[derive(Debug)]
pub struct Backlog {
    max_bytes: usize,
    max_frames: usize,
    bytes: AtomicUsize,
    frames: AtomicUsize,
    overflowed: AtomicBool,
}

impl Backlog {
    pub fn new(max_bytes: usize, max_frames: usize) -> Self {
        Self {
            max_bytes,
            max_frames,
            bytes: AtomicUsize::new(0),
            frames: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
        }
    }

    /// Counts a frame of `len` bytes about to be sent, unless it takes the backlog over the
    /// limits. A frame to a session with nothing waiting is always admitted, however large.
    pub fn admit(&self, len: usize) -> Admission {
        if self.overflowed.load(Ordering::Acquire) {
            return Admission::Refused;
        }
        let before = self.frames.fetch_add(1, Ordering::AcqRel);
        let bytes = self.bytes.fetch_add(len, Ordering::AcqRel) + len;
        if before > 0 && (bytes > self.max_bytes || before + 1 > self.max_frames) {
            self.release(len);
            if self.overflowed.swap(true, Ordering::AcqRel) {
                Admission::Refused
            } else {
                Admission::Overflowed
            }
        } else {
            Admission::Queued
        }
    }

    /// A frame of `len` bytes left the backlog (written, or dropped).
    pub fn release(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::AcqRel);
        self.frames.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// (bytes, frames) allowed.
    pub fn limits(&self) -> (usize, usize) {
        (self.max_bytes, self.max_frames)
    }

    /// (bytes, frames) waiting.
    pub fn pending(&self) -> (usize, usize) {
        (
            self.bytes.load(Ordering::Acquire),
            self.frames.load(Ordering::Acquire),
        )
    }
}

/// How frames reach one session: its actor, and the count of what it has not yet written.
#[derive(Clone)]
pub struct Outlet {
    pub deliver: Recipient<Deliver>,
    pub disconnect: Recipient<Disconnect>,
    pub backlog: Arc<Backlog>,
}

impl Outlet {
    /// Queues `frame` unless the session is over its limits; says whether this very frame
    /// took it over them (the caller then evicts it).
    pub(crate) fn offer(&self, frame: &Deliver) -> Offer {
        match self.backlog.admit(frame.0.len()) {
            Admission::Queued => {
                self.deliver.do_send(frame.clone());
                Offer::Sent
            }
            Admission::Overflowed => Offer::Overflowed,
            Admission::Refused => Offer::Refused,
        }
    }
}

pub(crate) enum Offer {
    Sent,
    Overflowed,
    Refused,
}

/// These (relative) channels may have become needed or unneeded: SUBSCRIBE or UNSUBSCRIBE
/// each so as to match the registry. Answers true when every one of them the registry needs
/// is subscribed (false while reconnecting or if Redis refused).
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct Resync(pub Vec<String>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_admits_up_to_its_limits_then_overflows_once() {
        let b = Backlog::new(100, 3);
        // The first frame goes through whatever its size.
        assert_eq!(b.admit(500), Admission::Queued);
        assert_eq!(b.pending(), (500, 1));
        b.release(500);
        assert_eq!(b.admit(40), Admission::Queued);
        assert_eq!(b.admit(40), Admission::Queued);
        assert_eq!(b.admit(40), Admission::Overflowed);
        assert!(b.overflowed());
        assert_eq!(b.pending(), (80, 2), "the refused frame is not counted");
        assert_eq!(b.admit(1), Admission::Refused);
        b.release(40);
        b.release(40);
        assert_eq!(b.pending(), (0, 0));
        assert_eq!(b.admit(1), Admission::Refused, "too slow stays too slow");
    }

    #[test]
    fn backlog_counts_frames_too() {
        let b = Backlog::new(1 << 20, 3);
        for _ in 0..3 {
            assert_eq!(b.admit(1), Admission::Queued);
        }
        assert_eq!(b.admit(1), Admission::Overflowed);
    }
}
