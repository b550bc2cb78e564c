-- Which simulation instance runs a live run, until when (renewed while it lives). A run whose
-- lease ran out belongs to a process that stopped: it is ended as failed (never left
-- "running" forever), and later taken over (runs that survive their process).
ALTER TABLE simulation_schema.simulations
    ADD COLUMN owner_instance text,
    ADD COLUMN lease_until timestamptz;
CREATE INDEX simulations_lease_idx ON simulation_schema.simulations (lease_until)
    WHERE status IN ('pending', 'running', 'paused');
CREATE INDEX simulations_completed_idx ON simulation_schema.simulations (completed_at)
    WHERE completed_at IS NOT NULL;
