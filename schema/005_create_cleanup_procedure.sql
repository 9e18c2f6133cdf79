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
        DELETE FROM state_entries
        WHERE key IN (
            SELECT key
            FROM state_entries
            WHERE expires_at <= now()
            ORDER BY expires_at
            LIMIT batch_size
            FOR UPDATE SKIP LOCKED
        );
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted := deleted + n;
        EXIT WHEN n < batch_size;
        COMMIT;
    END LOOP;
END;
$$;

---- create above / drop below ----

DROP PROCEDURE state_cleanup_expired(integer, bigint);
