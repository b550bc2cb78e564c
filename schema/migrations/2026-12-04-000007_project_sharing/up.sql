-- Shares with addresses that have no account yet: they become shares when that person has
-- an account with this address verified.
CREATE TABLE project_schema.project_invitations (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid NOT NULL REFERENCES project_schema.projects (id) ON DELETE CASCADE,
    email         text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 320),
    access_level  text NOT NULL CHECK (access_level IN ('viewer', 'editor')),
    granted_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, email)
);
CREATE INDEX project_invitations_email_idx ON project_schema.project_invitations (email);

-- Share links: an unguessable token (only its SHA-256 is kept) that lets any signed-in
-- person view a project, or only fork it, until it expires or is revoked.
CREATE TABLE project_schema.project_links (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid NOT NULL REFERENCES project_schema.projects (id) ON DELETE CASCADE,
    token_hash    text NOT NULL UNIQUE,
    access        text NOT NULL CHECK (access IN ('view', 'fork')),
    created_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX project_links_project_idx ON project_schema.project_links (project_id);
