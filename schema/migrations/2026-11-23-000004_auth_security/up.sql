-- Refresh-token reuse detection and the security audit log.

-- Every refresh token a session has rotated away from. Presenting one again means the token
-- was stolen (or replayed): the whole session (the token family) is revoked.
CREATE TABLE auth_schema.refresh_token_uses (
    token_hash  text PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES auth_schema.sessions (id) ON DELETE CASCADE,
    used_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_token_uses_session_idx ON auth_schema.refresh_token_uses (session_id);

-- Security events: logins, failures, lockouts, logouts, token reuse, password and role
-- changes. Append-only; read by admins.
CREATE TABLE auth_schema.audit_log (
    id          bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    event       text NOT NULL CHECK (event ~ '^[a-z][a-z_.]{1,63}$'),
    user_id     uuid REFERENCES auth_schema.users (id) ON DELETE SET NULL,
    session_id  uuid,
    ip          text NOT NULL DEFAULT '',
    user_agent  text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_user_idx ON auth_schema.audit_log (user_id, occurred_at DESC);
CREATE INDEX audit_log_event_idx ON auth_schema.audit_log (event, occurred_at DESC);
