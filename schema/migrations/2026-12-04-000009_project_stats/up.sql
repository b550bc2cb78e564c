-- Per-project counts: opened, forked, run (runs are counted by the simulation service).
CREATE TABLE project_schema.project_stats (
    project_id  uuid PRIMARY KEY REFERENCES project_schema.projects (id) ON DELETE CASCADE,
    views       bigint NOT NULL DEFAULT 0,
    forks       bigint NOT NULL DEFAULT 0,
    runs        bigint NOT NULL DEFAULT 0
);
