ALTER TABLE project_schema.project_versions
    DROP COLUMN IF EXISTS updated_at,
    DROP COLUMN IF EXISTS named,
    DROP COLUMN IF EXISTS layout;
DROP INDEX IF EXISTS project_schema.projects_trash_idx;
DROP INDEX IF EXISTS project_schema.projects_tags_idx;
ALTER TABLE project_schema.projects
    DROP COLUMN IF EXISTS forked_from_version,
    DROP COLUMN IF EXISTS forked_from,
    DROP COLUMN IF EXISTS deleted_at,
    DROP COLUMN IF EXISTS layout,
    DROP COLUMN IF EXISTS tags;
