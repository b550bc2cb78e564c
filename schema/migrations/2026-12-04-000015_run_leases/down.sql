DROP INDEX simulation_schema.simulations_completed_idx;
DROP INDEX simulation_schema.simulations_lease_idx;
ALTER TABLE simulation_schema.simulations DROP COLUMN lease_until, DROP COLUMN owner_instance;
