-- Projects as people save them: tags, the console's layout beside the design, a trash,
-- forks; versions that say who saved them, whether the save was named, and the layout.
ALTER TABLE project_schema.projects
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
    ADD COLUMN layout jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN deleted_at timestamptz,
    ADD COLUMN forked_from uuid,
    ADD COLUMN forked_from_version integer;
CREATE INDEX projects_tags_idx ON project_schema.projects USING gin (tags);
CREATE INDEX projects_trash_idx ON project_schema.projects (deleted_at) WHERE deleted_at IS NOT NULL;

ALTER TABLE project_schema.project_versions
    ADD COLUMN layout jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN named boolean NOT NULL DEFAULT false,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
