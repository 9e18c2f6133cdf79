-- Serves the expired-entry cleanup, which deletes the oldest expired rows
-- first in bounded batches. Partial: rows without a TTL are never indexed,
-- and expires_at changes only when a TTL is set, so most writes stay HOT.
CREATE INDEX state_entries_expires_at_idx
    ON state_entries (expires_at)
    WHERE expires_at IS NOT NULL;

---- create above / drop below ----

DROP INDEX state_entries_expires_at_idx;
