-- The notification inbox, owned by the auth service: every notification a service sends a
-- person waits here until read, whether or not they were online when it was sent.
CREATE TABLE auth_schema.notifications (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES auth_schema.users (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 100),
    title       text NOT NULL CHECK (char_length(title) <= 500),
    body        text NOT NULL DEFAULT '' CHECK (char_length(body) <= 5000),
    link        text NOT NULL DEFAULT '' CHECK (char_length(link) <= 2000),
    data        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz
);
CREATE INDEX notifications_user_idx ON auth_schema.notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_unread_idx ON auth_schema.notifications (user_id) WHERE read_at IS NULL;
