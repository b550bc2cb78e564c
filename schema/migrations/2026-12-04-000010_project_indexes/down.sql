DROP INDEX IF EXISTS project_schema.projects_gallery_idx;
DROP INDEX IF EXISTS project_schema.projects_mine_name_idx;
DROP INDEX IF EXISTS project_schema.projects_mine_updated_idx;
