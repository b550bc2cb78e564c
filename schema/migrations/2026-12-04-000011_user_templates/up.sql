-- Templates people make from their projects: private (their own) or public (everyone's).
ALTER TABLE project_schema.templates ADD COLUMN is_public boolean NOT NULL DEFAULT false;
CREATE INDEX templates_author_idx ON project_schema.templates (author_id) WHERE NOT is_system;
