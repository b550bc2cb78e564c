//! Where the settings come from, lowest priority first:
//! 1. the defaults in [`sdsim_actors::config::Settings`] (the standard ports on 127.0.0.1,
//!    PostgreSQL and Redis on their standard local ports);
//! 2. a TOML file, given with `--config` or `SDSIM_CONFIG` (see `deploy/sdsim.example.toml`);
//! 3. `DATABASE_URL` and `REDIS_URL`, the conventional variables;
//! 4. `SDSIM_*` variables, `__` between levels: `SDSIM_GATEWAY__MAX_BODY_BYTES=131072`,
//!    `SDSIM_LISTEN__GATEWAY_HTTP=0.0.0.0:8000`, `SDSIM_AUTH__JWT_SECRET=...`.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default). `SDSIM_*`
//! variables without `__` (other than `SDSIM_INSTANCE_ID`) are not settings and are ignored.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use sdsim_actors::config::{self, Settings};
use std::path::Path;

/// Whether an `SDSIM_*` variable (prefix stripped) is a setting: every setting lives in a
/// section (`SECTION__KEY`) except `INSTANCE_ID`. Others (`SDSIM_CONFIG`, `SDSIM_LOG`, the
/// scripts' and tests' own variables) are not, so they never trip the unknown-key check,
/// while a misspelt section or key still does.
fn is_setting(key: &str) -> bool {
    key.contains("__") || key.eq_ignore_ascii_case("instance_id")
}

pub fn load(file: Option<&Path>) -> Result<Settings, String> {
    let mut fig = Figment::from(Serialized::defaults(Settings::default()));
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
    let settings: Settings = fig
        .extract()
        .map_err(|e| format!("invalid configuration: {e}"))?;
    config::validate(&settings)
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
                "[gateway]\nmax_body_bytes = 4096\n[listen]\ngateway_http = \"127.0.0.1:0\"\n",
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
            assert_eq!(s.listen.gateway_http.port(), 0);
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
}
