-- Checkpoint entries without a foreign key to their header. The key checked
-- every copied row against state_checkpoints, one index probe and row lock
-- per entry: about 60 % of CreateCheckpoint's time (150,000 entries: 0.65-0.82 s
-- with it, 0.25-0.30 s without, against 0.24-0.29 s for a plain
-- INSERT … SELECT; see BENCHMARKS.md). The guarantee it gave, no entries
-- without a header and no header without its entries, is kept by the only
-- statements that write these tables: CheckpointCreate writes the header and
-- every entry in one statement, CheckpointDelete and CheckpointsDeleteBeyond
-- delete a header and its entries in one statement, so they commit or roll
-- back together.
ALTER TABLE state_checkpoint_entries DROP CONSTRAINT state_checkpoint_entries_checkpoint_fkey;

COMMENT ON TABLE state_checkpoint_entries IS 'The entries of each checkpoint, copied from state_entries; written and deleted only together with their state_checkpoints row.';

---- create above / drop below ----

-- Entries left without a header (written by hand; the store never leaves
-- any) would fail the key, so they go first.
DELETE FROM state_checkpoint_entries AS e
WHERE NOT EXISTS (SELECT FROM state_checkpoints AS c WHERE c.id = e.checkpoint_id);

ALTER TABLE state_checkpoint_entries ADD CONSTRAINT state_checkpoint_entries_checkpoint_fkey
    FOREIGN KEY (checkpoint_id) REFERENCES state_checkpoints (id) ON DELETE CASCADE;

COMMENT ON TABLE state_checkpoint_entries IS 'The entries of each checkpoint, copied from state_entries.';
