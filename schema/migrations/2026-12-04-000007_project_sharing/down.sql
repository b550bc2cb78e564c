DROP TABLE IF EXISTS project_schema.project_links;
DROP TABLE IF EXISTS project_schema.project_invitations;
