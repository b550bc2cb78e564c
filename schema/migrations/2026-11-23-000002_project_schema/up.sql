-- project_schema: projects, templates, sharing, versions, collaboration. Owned by the project
-- service. User ids refer to auth_schema.users but carry no foreign key: each service owns its
-- schema and may live in another database.
CREATE SCHEMA IF NOT EXISTS project_schema;

CREATE TABLE project_schema.templates (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug          text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,79}$'),
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '',
    category      text NOT NULL DEFAULT 'general',
    is_system     boolean NOT NULL DEFAULT false,
    author_id     uuid,
    configuration jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (is_system OR author_id IS NOT NULL)
);
CREATE UNIQUE INDEX templates_slug_key ON project_schema.templates (slug);
CREATE INDEX templates_category_idx ON project_schema.templates (category);

CREATE TABLE project_schema.projects (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id      uuid NOT NULL,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '',
    configuration jsonb NOT NULL DEFAULT '{}'::jsonb,
    template_id   uuid REFERENCES project_schema.templates (id) ON DELETE SET NULL,
    is_public     boolean NOT NULL DEFAULT false,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived', 'deleted')),
    version       integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_owner_idx ON project_schema.projects (owner_id, updated_at DESC) WHERE status <> 'deleted';
CREATE INDEX projects_public_idx ON project_schema.projects (updated_at DESC) WHERE is_public AND status = 'active';

CREATE TABLE project_schema.project_sharing (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid NOT NULL REFERENCES project_schema.projects (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL,
    access_level  text NOT NULL CHECK (access_level IN ('viewer', 'editor')),
    granted_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, user_id)
);
CREATE INDEX project_sharing_user_idx ON project_schema.project_sharing (user_id);

CREATE TABLE project_schema.project_versions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id     uuid NOT NULL REFERENCES project_schema.projects (id) ON DELETE CASCADE,
    version        integer NOT NULL CHECK (version >= 1),
    configuration  jsonb NOT NULL,
    author_id      uuid NOT NULL,
    change_summary text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, version)
);

CREATE TABLE project_schema.collaboration_sessions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id       uuid NOT NULL REFERENCES project_schema.projects (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL,
    gateway_instance text NOT NULL DEFAULT '',
    joined_at        timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    left_at          timestamptz,
    CHECK (left_at IS NULL OR left_at >= joined_at)
);
CREATE INDEX collaboration_sessions_active_idx ON project_schema.collaboration_sessions (project_id) WHERE left_at IS NULL;
