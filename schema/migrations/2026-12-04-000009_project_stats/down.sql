DROP TABLE IF EXISTS project_schema.project_stats;
