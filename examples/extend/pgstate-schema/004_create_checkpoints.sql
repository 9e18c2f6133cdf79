-- A checkpoint is a point-in-time copy of every live entry, made and restored
-- entirely inside the database.
CREATE TABLE state_checkpoints (
    id         UUID        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    row_count  BIGINT      NOT NULL,
    data_bytes BIGINT      NOT NULL,
    metadata   JSONB       NULL,
    CONSTRAINT state_checkpoints_pkey PRIMARY KEY (id)
);

COMMENT ON TABLE state_checkpoints IS 'pgstate checkpoints: one row per snapshot of state_entries.';
COMMENT ON COLUMN state_checkpoints.row_count IS 'Number of entries copied into the checkpoint.';
COMMENT ON COLUMN state_checkpoints.data_bytes IS 'Total size of the copied keys and values, in bytes.';
COMMENT ON COLUMN state_checkpoints.metadata IS 'Optional JSON document describing the checkpoint.';

-- Newest-first listing and retention.
CREATE INDEX state_checkpoints_created_at_idx ON state_checkpoints (created_at DESC, id);

-- Row by row, not a single document: binary values stay binary and there is
-- no size cap beyond the table's own.
CREATE TABLE state_checkpoint_entries (
    checkpoint_id UUID        NOT NULL,
    key           BYTEA       NOT NULL,
    value         BYTEA       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NULL,
    metadata      JSONB       NULL,
    version       BIGINT      NOT NULL,
    CONSTRAINT state_checkpoint_entries_pkey PRIMARY KEY (checkpoint_id, key),
    CONSTRAINT state_checkpoint_entries_checkpoint_fkey FOREIGN KEY (checkpoint_id)
        REFERENCES state_checkpoints (id) ON DELETE CASCADE
);

COMMENT ON TABLE state_checkpoint_entries IS 'The entries of each checkpoint, copied from state_entries.';

---- create above / drop below ----

DROP TABLE state_checkpoint_entries;
DROP TABLE state_checkpoints;
