//! Every Redis channel, key and stream name sdsim uses, defined once (seed 002).
//!
//! All names are relative: a [`Namespace`] prepends an optional prefix so that several
//! deployments (or several tests) can share one Redis without seeing each other's data.

/// A Redis key prefix. The empty prefix gives the names exactly as the seeds write them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// `prefix` is used verbatim; pass e.g. `"test-42:"` to isolate a test.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn name(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}{}", self.prefix, rest)
    }

    /// `auth:events:{event}` with event one of `login`, `logout`, `permission_changed`.
    pub fn auth_events(&self, event: &str) -> String {
        self.name(format_args!("auth:events:{event}"))
    }
    /// Pattern matching every auth event channel.
    pub fn auth_events_pattern(&self) -> String {
        self.name(format_args!("auth:events:*"))
    }
    /// `project:events:{event}` (`created`, `shared`, `updated`).
    pub fn project_events(&self, event: &str) -> String {
        self.name(format_args!("project:events:{event}"))
    }
    pub fn project_events_pattern(&self) -> String {
        self.name(format_args!("project:events:*"))
    }
    /// `simulation:events:{event}` (`started`, `completed`, ...).
    pub fn simulation_events(&self, event: &str) -> String {
        self.name(format_args!("simulation:events:{event}"))
    }
    pub fn simulation_events_pattern(&self) -> String {
        self.name(format_args!("simulation:events:*"))
    }
    /// Notifications for one user, delivered to every gateway holding one of their sockets.
    pub fn user_notifications(&self, user_id: &str) -> String {
        self.name(format_args!("notifications:user:{user_id}"))
    }
    pub fn user_notifications_pattern(&self) -> String {
        self.name(format_args!("notifications:user:*"))
    }
    /// System-wide announcements.
    pub fn system_announcements(&self) -> String {
        self.name(format_args!("system:announcements"))
    }
    /// A background work queue, `async:{name}:queue` (`email`, `reports`, ...).
    pub fn async_queue(&self, name: &str) -> String {
        self.name(format_args!("async:{name}:queue"))
    }
    /// Live data of one simulation run (a Redis Stream, XADD with MAXLEN).
    pub fn simulation_stream(&self, simulation_id: &str) -> String {
        self.name(format_args!("simulation:stream:{simulation_id}"))
    }
    /// The instance that may write run `simulation_id`'s stream (its fencing token).
    pub fn simulation_owner(&self, simulation_id: &str) -> String {
        self.name(format_args!("simulation:owner:{simulation_id}"))
    }
    /// Real-time collaboration edits of one project (a Redis Stream).
    pub fn collaboration_stream(&self, project_id: &str) -> String {
        self.name(format_args!("collaboration:stream:{project_id}"))
    }
    /// Who is in one project's live session (a hash: session -> presence).
    pub fn collaboration_presence(&self, project_id: &str) -> String {
        self.name(format_args!("collaboration:presence:{project_id}"))
    }
    /// Registry entry of one service instance.
    pub fn service_instance(&self, service: &str, instance_id: &str) -> String {
        self.name(format_args!("services:{service}:{instance_id}"))
    }
    /// Pattern matching every instance of a service.
    pub fn service_instances_pattern(&self, service: &str) -> String {
        self.name(format_args!("services:{service}:*"))
    }
    /// Channel announcing instance joins and leaves.
    pub fn service_membership(&self) -> String {
        self.name(format_args!("services:membership"))
    }
    /// Cached session state, so revocation is seen by every gateway.
    pub fn session_cache(&self, session_id: &str) -> String {
        self.name(format_args!("auth:session:{session_id}"))
    }

    /// Jobs taken from `async:{name}:queue` and not yet done: `async:{name}:processing`.
    pub fn async_processing(&self, name: &str) -> String {
        self.name(format_args!("async:{name}:processing"))
    }

    /// Jobs of `async:{name}:queue` waiting to be retried, scored by when (unix ms):
    /// `async:{name}:delayed`.
    pub fn async_delayed(&self, name: &str) -> String {
        self.name(format_args!("async:{name}:delayed"))
    }

    /// A fixed-window rate-limit counter: `ratelimit:{action}:{scope}:{id}`, e.g.
    /// `ratelimit:login:ip:10.0.0.7`.
    pub fn rate_limit(&self, action: &str, scope: &str, id: &str) -> String {
        self.name(format_args!("ratelimit:{action}:{scope}:{id}"))
    }

    /// Failed-login counter of an account (by e-mail digest, so unknown e-mails count the
    /// same way), overall or from one address: `auth:login_failures:{account}[:{ip}]`.
    pub fn login_failures(&self, account: &str, ip: Option<&str>) -> String {
        match ip {
            Some(ip) => self.name(format_args!("auth:login_failures:{account}:{ip}")),
            None => self.name(format_args!("auth:login_failures:{account}")),
        }
    }

    /// The user id of a (prefixed) `notifications:user:{id}` channel.
    pub fn notification_user<'a>(&self, channel: &'a str) -> Option<&'a str> {
        self.strip(channel)?
            .strip_prefix("notifications:user:")
            .filter(|id| !id.is_empty())
    }

    /// Strips this namespace's prefix from a channel name received from Redis.
    pub fn strip<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(self.prefix.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_user_reads_the_id_back() {
        let ns = Namespace::new("t1:");
        let ch = ns.user_notifications("42");
        assert_eq!(ns.notification_user(&ch), Some("42"));
        assert_eq!(ns.notification_user("notifications:user:42"), None);
        assert_eq!(ns.notification_user("t1:notifications:user:"), None);
        assert_eq!(ns.notification_user(&ns.system_announcements()), None);
    }

    #[test]
    fn default_namespace_matches_the_seed_names() {
        let ns = Namespace::default();
        assert_eq!(ns.auth_events("login"), "auth:events:login");
        assert_eq!(ns.user_notifications("u1"), "notifications:user:u1");
        assert_eq!(ns.simulation_stream("s1"), "simulation:stream:s1");
        assert_eq!(ns.service_instance("auth", "i1"), "services:auth:i1");
        assert_eq!(ns.async_queue("email"), "async:email:queue");
    }

    #[test]
    fn prefixed_names_strip_back() {
        let ns = Namespace::new("t1:");
        let ch = ns.user_notifications("abc");
        assert_eq!(ch, "t1:notifications:user:abc");
        assert_eq!(ns.strip(&ch), Some("notifications:user:abc"));
        assert_eq!(ns.strip("other:notifications:user:abc"), None);
    }
}
