-- Every window of a run exactly as it was streamed (text, not jsonb: the bytes a watcher
-- resumes from must equal the live ones). The live stream is trimmed only past windows
-- stored here, so a watcher that reconnects late, or after the stream expired, misses none.
CREATE TABLE simulation_schema.simulation_windows (
    simulation_id uuid   NOT NULL REFERENCES simulation_schema.simulations (id) ON DELETE CASCADE,
    window_index  bigint NOT NULL CHECK (window_index >= 0),
    data          text   NOT NULL,
    PRIMARY KEY (simulation_id, window_index)
);
