-- Live collaboration (docs/collaboration.md). A project's live document: the design and
-- layout as of its latest edit `seq`, the project version it is based on, the last edit that
-- became a version, and who edited since then. Each edit is kept (for resuming clients and
-- for duplicates sent again after a reconnect) until a while after it became a version.
CREATE TABLE project_schema.collaboration_documents (
    project_id uuid PRIMARY KEY REFERENCES project_schema.projects (id) ON DELETE CASCADE,
    seq bigint NOT NULL DEFAULT 0,
    design jsonb NOT NULL,
    layout jsonb NOT NULL,
    based_on_version integer NOT NULL,
    snapshot_seq bigint NOT NULL DEFAULT 0,
    editors uuid[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX collaboration_documents_unsaved_idx
    ON project_schema.collaboration_documents (updated_at) WHERE seq > snapshot_seq;

CREATE TABLE project_schema.collaboration_edits (
    project_id uuid NOT NULL REFERENCES project_schema.projects (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    user_id uuid NOT NULL,
    client_id text NOT NULL,
    edit_id bigint NOT NULL,
    operations jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, seq),
    UNIQUE (project_id, client_id, edit_id)
);
CREATE INDEX collaboration_edits_created_idx ON project_schema.collaboration_edits (created_at);
