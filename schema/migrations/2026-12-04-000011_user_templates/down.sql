DROP INDEX IF EXISTS project_schema.templates_author_idx;
ALTER TABLE project_schema.templates DROP COLUMN IF EXISTS is_public;
