//! The process's settings: each crate owns its section (`sdsim_runtime::config` the shared
//! ones, `sdsim_gateway::GatewaySettings`, `sdsim_auth::AuthSettings`, ...) and this module
//! composes them. Where they come from, lowest priority first:
//! 1. the defaults of each section (the standard ports on 127.0.0.1, PostgreSQL and Redis on
//!    their standard local ports);
//! 2. a TOML file, given with `--config` or `SDSIM_CONFIG` (see `deploy/sdsim.example.toml`);
//! 3. `DATABASE_URL` and `REDIS_URL`, the conventional variables;
//! 4. `SDSIM_*` variables, `__` between levels: `SDSIM_GATEWAY__MAX_BODY_BYTES=131072`,
//!    `SDSIM_GATEWAY__LISTEN__HTTP=0.0.0.0:8000`, `SDSIM_AUTH__JWT_SECRET=...`.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and a key that
//! moved is refused with its new place. `SDSIM_*` variables without `__` (other than
//! `SDSIM_INSTANCE_ID`) are not settings and are ignored.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use sdsim_auth::AuthSettings;
use sdsim_gateway::GatewaySettings;
use sdsim_project::ProjectSettings;
use sdsim_protocols::Service;
use sdsim_runtime::config::{
    self as runtime, AdminSettings, DatabaseSettings, DiscoverySettings, Listen, MeshSettings,
    RedisSettings, RuntimeSettings, ShutdownSettings, SupervisionSettings, UpstreamSettings,
};
use sdsim_simulation::SimulationSettings;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Every setting of a process. `Debug` and `Serialize` never show a secret's value (see
/// `sdsim_runtime::config::Secret`), so `sdsim config` prints this as it is.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Unique id of this process in the mesh; random when empty.
    pub instance_id: String,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub supervision: SupervisionSettings,
    pub admin: AdminSettings,
    pub discovery: DiscoverySettings,
    pub mesh: MeshSettings,
    pub shutdown: ShutdownSettings,
    /// Where the other services are reached (gRPC URLs). Defaults to the listen addresses.
    pub upstream: UpstreamSettings,
    pub gateway: GatewaySettings,
    pub auth: AuthSettings,
    pub project: ProjectSettings,
    pub simulation: SimulationSettings,
}

impl Settings {
    /// The part every service's runtime needs.
    pub fn runtime(&self) -> RuntimeSettings {
        RuntimeSettings {
            database: self.database.clone(),
            redis: self.redis.clone(),
            supervision: self.supervision.clone(),
            admin: self.admin.clone(),
            discovery: self.discovery.clone(),
            mesh: self.mesh.clone(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// Where `service` listens.
    pub fn listen(&self, service: Service) -> Listen {
        match service {
            Service::Gateway => self.gateway.listen,
            Service::Auth => self.auth.listen,
            Service::Project => self.project.listen,
            Service::Simulation => self.simulation.listen,
        }
    }

    /// Where `service` listens, mutably (tests bind port 0).
    pub fn listen_mut(&mut self, service: Service) -> &mut Listen {
        match service {
            Service::Gateway => &mut self.gateway.listen,
            Service::Auth => &mut self.auth.listen,
            Service::Project => &mut self.project.listen,
            Service::Simulation => &mut self.simulation.listen,
        }
    }

    /// Every problem, each naming its setting; every section checks its own.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        runtime::validate(&self.runtime(), &mut errors);
        sdsim_gateway::settings::validate(&self.gateway, &mut errors);
        sdsim_auth::settings::validate(&self.auth, &mut errors);
        sdsim_project::validate(&self.project, &mut errors);
        sdsim_simulation::validate(&self.simulation, &mut errors);
        // A session revoked on one instance is refused everywhere within one second: a
        // gateway trusts a validation for its ttl, which auth may have answered from its own.
        if self.gateway.token_cache_ms + self.auth.validation_cache_ms >= 1000 {
            errors.push(format!(
                "gateway.token_cache_ms ({}) plus auth.validation_cache_ms ({}) must be below 1000 (revocation is promised within 1 s)",
                self.gateway.token_cache_ms, self.auth.validation_cache_ms
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The configuration as `sdsim config` prints it: JSON, secrets redacted by their type.
    pub fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Keys that moved, and where they went. A file or variable that still uses one is refused
/// with the new place, rather than ignored or reported as merely unknown.
const MOVED: &[(&str, &str)] = &[
    ("listen.gateway_http", "gateway.listen.http"),
    ("listen.gateway_grpc", "gateway.listen.grpc"),
    ("listen.auth_http", "auth.listen.http"),
    ("listen.auth_grpc", "auth.listen.grpc"),
    ("listen.project_http", "project.listen.http"),
    ("listen.project_grpc", "project.listen.grpc"),
    ("listen.simulation_http", "simulation.listen.http"),
    ("listen.simulation_grpc", "simulation.listen.grpc"),
];

/// The variable that sets `key` (`gateway.listen.http` → `SDSIM_GATEWAY__LISTEN__HTTP`).
fn env_name(key: &str) -> String {
    format!("SDSIM_{}", key.replace('.', "__").to_ascii_uppercase())
}

fn moved_keys(fig: &Figment) -> Vec<String> {
    let mut errors = Vec::new();
    for (old, new) in MOVED {
        if fig.find_value(old).is_ok() {
            errors.push(format!(
                "{old} (or {}) has moved to {new} (or {})",
                env_name(old),
                env_name(new)
            ));
        }
    }
    if errors.is_empty() && fig.find_value("listen").is_ok() {
        errors.push(
            "the [listen] section has moved: each service has its own, e.g. gateway.listen.http"
                .into(),
        );
    }
    errors
}

/// Whether an `SDSIM_*` variable (prefix stripped) is a setting: every setting lives in a
/// section (`SECTION__KEY`) except `INSTANCE_ID`. Others (`SDSIM_CONFIG`, `SDSIM_LOG`, the
/// scripts' and tests' own variables) are not, so they never trip the unknown-key check,
/// while a misspelt section or key still does.
fn is_setting(key: &str) -> bool {
    key.contains("__") || key.eq_ignore_ascii_case("instance_id")
}

pub fn load(file: Option<&Path>) -> Result<Settings, String> {
    // No serialized defaults of the whole (that would give the redacted form of the
    // secrets): each section's `Default` fills what is absent. The listen addresses are the
    // exception, since each service's default differs and one key may be set alone.
    let mut fig = Figment::new();
    let defaults = Settings::default();
    for service in Service::ALL {
        fig = fig.merge(Serialized::default(
            &format!("{service}.listen"),
            defaults.listen(service),
        ));
    }
    if let Some(path) = file {
        if !path.is_file() {
            return Err(format!(
                "configuration file {} does not exist",
                path.display()
            ));
        }
        fig = fig.merge(Toml::file(path));
    }
    fig = fig
        .merge(
            Env::raw()
                .only(&["DATABASE_URL"])
                .map(|_| "database.url".into()),
        )
        .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis.url".into()))
        .merge(
            Env::prefixed("SDSIM_")
                .filter(|k| is_setting(k.as_str()))
                .split("__"),
        );
    let moved = moved_keys(&fig);
    if !moved.is_empty() {
        return Err(format!(
            "invalid configuration:\n  - {}",
            moved.join("\n  - ")
        ));
    }
    let settings: Settings = fig
        .extract()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    settings
        .validate()
        .map_err(|errors| format!("invalid configuration:\n  - {}", errors.join("\n  - ")))?;
    Ok(settings)
}

#[cfg(test)]
// figment's Jail closures return its (large) error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn file_and_env_override_defaults() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "sdsim.toml",
                "[gateway]\nmax_body_bytes = 4096\n[gateway.listen]\nhttp = \"127.0.0.1:0\"\n",
            )?;
            jail.set_env("SDSIM_GATEWAY__WS_AUTH_TIMEOUT_MS", "1234");
            jail.set_env("SDSIM_CONFIG", "ignored");
            jail.set_env("SDSIM_TEST_PYTHON", "ignored");
            jail.set_env("SDSIM_INSTANCE_ID", "gw-7");
            jail.set_env("DATABASE_URL", "postgres://x@127.0.0.1:5432/other");
            let s = load(Some(Path::new("sdsim.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.gateway.max_body_bytes, 4096);
            assert_eq!(s.instance_id, "gw-7");
            assert_eq!(s.gateway.ws_auth_timeout_ms, 1234);
            assert_eq!(s.gateway.listen.http.port(), 0);
            // The other half of the section keeps its default.
            assert_eq!(s.gateway.listen.grpc.port(), 8001);
            assert_eq!(s.auth.listen.grpc.port(), 9000);
            assert_eq!(s.database.url.expose(), "postgres://x@127.0.0.1:5432/other");
            Ok(())
        });
    }

    #[test]
    fn the_example_file_is_valid_and_says_the_defaults() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let path = Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../deploy/sdsim.example.toml"
            ));
            let from_file = load(Some(path)).map_err(|e| e.to_string())?;
            let defaults = serde_json::to_value(Settings::default()).unwrap();
            assert_eq!(serde_json::to_value(from_file).unwrap(), defaults);
            Ok(())
        });
    }

    #[test]
    fn typos_and_bad_values_are_named() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("SDSIM_GATEWAY__MAX_BODY_BYTE", "10");
            let e = load(None).unwrap_err();
            assert!(e.contains("max_body_byte"), "{e}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("SDSIM_GATEWY__WORKERS", "1");
            let e = load(None).unwrap_err();
            assert!(e.contains("gatewy"), "{e}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("SDSIM_AUTH__BCRYPT_COST", "99");
            let e = load(None).unwrap_err();
            assert!(e.contains("auth.bcrypt_cost"), "{e}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.clear_env();
            let e = load(Some(Path::new("/nonexistent/sdsim.toml"))).unwrap_err();
            assert!(e.contains("does not exist"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn moved_keys_are_refused_with_their_new_place() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("old.toml", "[listen]\nauth_grpc = \"127.0.0.1:9100\"\n")?;
            let e = load(Some(Path::new("old.toml"))).unwrap_err();
            assert!(e.contains("listen.auth_grpc"), "{e}");
            assert!(e.contains("auth.listen.grpc"), "{e}");
            assert!(e.contains("SDSIM_AUTH__LISTEN__GRPC"), "{e}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("SDSIM_LISTEN__GATEWAY_HTTP", "0.0.0.0:8000");
            let e = load(None).unwrap_err();
            assert!(e.contains("SDSIM_LISTEN__GATEWAY_HTTP"), "{e}");
            assert!(e.contains("SDSIM_GATEWAY__LISTEN__HTTP"), "{e}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("SDSIM_AUTH__MAIL__TRANSPORT", "pigeon");
            let e = load(None).unwrap_err();
            assert!(
                e.contains("pigeon") && e.to_lowercase().contains("transport"),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn config_output_and_debug_never_show_a_secret() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let secrets = [
                "jwt-0123456789abcdef0123456789abcdef",
                "old-key-0123456789abcdef0123456789ab",
                "smtp-pass-4f1",
                "pg-pass-91c",
                "redis-pass-77e",
            ];
            jail.create_file(
                "s.toml",
                &format!(
                    "[auth]\njwt_secret = \"{}\"\n[[auth.previous_keys]]\nkid = \"k0\"\nsecret = \"{}\"\n\
                     [auth.mail]\nsmtp_tls = \"tls\"\nsmtp_username = \"u\"\nsmtp_password = \"{}\"\n",
                    secrets[0], secrets[1], secrets[2]
                ),
            )?;
            jail.set_env(
                "DATABASE_URL",
                format!("postgres://u:{}@127.0.0.1/x", secrets[3]),
            );
            jail.set_env("REDIS_URL", format!("redis://:{}@127.0.0.1/", secrets[4]));
            let s = load(Some(Path::new("s.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.auth.mail.smtp_password.expose(), secrets[2]);
            let shown = [s.to_pretty_json(), format!("{s:?}"), format!("{s:#?}")];
            for out in &shown {
                for secret in secrets {
                    assert!(!out.contains(secret), "{secret} printed in:\n{out}");
                }
            }
            assert!(shown[0].contains(sdsim_runtime::config::Secret::REDACTED));
            Ok(())
        });
    }
}
