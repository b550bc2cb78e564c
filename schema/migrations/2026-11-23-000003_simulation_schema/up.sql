-- simulation_schema: runs, results, metrics, analysis, history. Owned by the simulation service.
CREATE SCHEMA IF NOT EXISTS simulation_schema;

CREATE TABLE simulation_schema.simulations (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid NOT NULL,
    project_id       uuid,
    name             text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'completed', 'failed', 'stopped')),
    configuration    jsonb NOT NULL,
    seed             bigint NOT NULL DEFAULT 0,
    duration_seconds double precision NOT NULL CHECK (duration_seconds > 0),
    speed            double precision NOT NULL DEFAULT 0 CHECK (speed >= 0),
    progress         double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz
);
CREATE INDEX simulations_user_idx ON simulation_schema.simulations (user_id, created_at DESC);
CREATE INDEX simulations_project_idx ON simulation_schema.simulations (project_id, created_at DESC) WHERE project_id IS NOT NULL;
CREATE INDEX simulations_running_idx ON simulation_schema.simulations (status) WHERE status IN ('pending', 'running');

CREATE TABLE simulation_schema.simulation_results (
    simulation_id      uuid PRIMARY KEY REFERENCES simulation_schema.simulations (id) ON DELETE CASCADE,
    summary            jsonb NOT NULL,
    requests_simulated bigint NOT NULL DEFAULT 0 CHECK (requests_simulated >= 0),
    simulated_seconds  double precision NOT NULL DEFAULT 0,
    wall_seconds       double precision NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- one row per component per window (component_id '' = end to end)
CREATE TABLE simulation_schema.performance_metrics (
    id              bigserial PRIMARY KEY,
    simulation_id   uuid NOT NULL REFERENCES simulation_schema.simulations (id) ON DELETE CASCADE,
    component_id    text NOT NULL,
    window_start    double precision NOT NULL,
    window_end      double precision NOT NULL,
    arrivals        bigint NOT NULL DEFAULT 0,
    completions     bigint NOT NULL DEFAULT 0,
    drops           bigint NOT NULL DEFAULT 0,
    errors          bigint NOT NULL DEFAULT 0,
    utilization     double precision NOT NULL DEFAULT 0,
    queue_length    double precision NOT NULL DEFAULT 0,
    throughput      double precision NOT NULL DEFAULT 0,
    latency_p50_ms  double precision NOT NULL DEFAULT 0,
    latency_p95_ms  double precision NOT NULL DEFAULT 0,
    latency_p99_ms  double precision NOT NULL DEFAULT 0,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (window_end >= window_start),
    UNIQUE (simulation_id, component_id, window_start)
);

CREATE TABLE simulation_schema.simulation_analytics (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    simulation_id uuid NOT NULL REFERENCES simulation_schema.simulations (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('bottleneck', 'anomaly', 'trend', 'forecast', 'alert', 'preview')),
    component_id  text,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX simulation_analytics_sim_idx ON simulation_schema.simulation_analytics (simulation_id, kind);

CREATE TABLE simulation_schema.simulation_history (
    id            bigserial PRIMARY KEY,
    user_id       uuid NOT NULL,
    simulation_id uuid NOT NULL REFERENCES simulation_schema.simulations (id) ON DELETE CASCADE,
    action        text NOT NULL CHECK (action IN ('created', 'started', 'stopped', 'completed', 'failed', 'viewed')),
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX simulation_history_user_idx ON simulation_schema.simulation_history (user_id, created_at DESC);
