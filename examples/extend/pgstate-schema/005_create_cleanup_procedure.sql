-- For operators who schedule cleanup inside the database, for example with
-- pg_cron: CALL state_cleanup_expired(); deletes expired entries in batches,
-- committing after each so that locks and undo stay small. A procedure that
-- commits cannot pin its own search_path, so state_entries is found through
-- the caller's: for a store outside public, schedule
--   SET search_path TO my_schema; CALL my_schema.state_cleanup_expired();
CREATE PROCEDURE state_cleanup_expired(batch_size integer DEFAULT 10000, INOUT deleted bigint DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive, got %', batch_size;
    END IF;
    deleted := 0;
    LOOP
        -- As the EntriesDeleteExpiredBatch query: by row id, with the
        -- expiry tested again against rows rewritten meanwhile.
        DELETE FROM state_entries
        WHERE ctid = ANY(ARRAY(
                SELECT e.ctid
                FROM state_entries AS e
                WHERE e.expires_at <= now()
                ORDER BY e.expires_at
                LIMIT batch_size
            ))
            AND (expires_at <= now()) IS TRUE;
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted := deleted + n;
        EXIT WHEN n < batch_size;
        COMMIT;
    END LOOP;
END;
$$;

---- create above / drop below ----

DROP PROCEDURE state_cleanup_expired(integer, bigint);
