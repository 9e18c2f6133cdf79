-- Checkpoints people can tell apart: an optional name given at creation
-- ('' when none), unique among the checkpoints that have one, so that
-- "before-upgrade" can be found and restored by name. NOT NULL with a
-- constant default adds the column without rewriting the table. The unique
-- index also serves the lookup by name (CheckpointGetByName).
ALTER TABLE state_checkpoints ADD COLUMN name TEXT NOT NULL DEFAULT '';

ALTER TABLE state_checkpoints ADD CONSTRAINT state_checkpoints_name_length
    CHECK (char_length(name) <= 128);

CREATE UNIQUE INDEX state_checkpoints_name_key ON state_checkpoints (name) WHERE name <> '';

COMMENT ON COLUMN state_checkpoints.name IS 'Optional name given at creation ('''' when none), unique among named checkpoints.';

---- create above / drop below ----

DROP INDEX state_checkpoints_name_key;

ALTER TABLE state_checkpoints DROP CONSTRAINT state_checkpoints_name_length;

ALTER TABLE state_checkpoints DROP COLUMN name;
