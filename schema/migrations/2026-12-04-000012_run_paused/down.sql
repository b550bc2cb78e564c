UPDATE simulation_schema.simulations SET status = 'running' WHERE status = 'paused';
DROP INDEX simulation_schema.simulations_running_idx;
CREATE INDEX simulations_running_idx ON simulation_schema.simulations (status)
    WHERE status IN ('pending', 'running');
ALTER TABLE simulation_schema.simulations DROP CONSTRAINT simulations_status_check;
ALTER TABLE simulation_schema.simulations ADD CONSTRAINT simulations_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'stopped'));
