ALTER TABLE simulation_schema.simulations DROP COLUMN injections, DROP COLUMN window_seconds;
