-- Single-use e-mail tokens (address verification, password reset). Only a SHA-256 of the
-- token is stored; the token itself exists only in the mail.
CREATE TABLE auth_schema.email_tokens (
    token_hash  text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES auth_schema.users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX email_tokens_user_idx ON auth_schema.email_tokens (user_id, purpose);
