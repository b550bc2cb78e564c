-- What a run needs to be replayed besides its design and seed: its window length and the
-- chaos injected while it ran (each entry as applied, with its simulated time).
ALTER TABLE simulation_schema.simulations
    ADD COLUMN window_seconds double precision NOT NULL DEFAULT 1 CHECK (window_seconds > 0),
    ADD COLUMN injections jsonb NOT NULL DEFAULT '[]'::jsonb;
