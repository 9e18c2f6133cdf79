-- Rebinds state_cleanup_expired to its own schema, so that a scheduler can
-- run it as one statement: CALL my_schema.state_cleanup_expired();
-- A procedure that commits may not pin its search_path with a SET clause,
-- and the recipe that set it first ('SET search_path …; CALL …') is one
-- multi-statement string, hence one implicit transaction, in which the
-- procedure's COMMIT fails as soon as the backlog exceeds one batch. So the
-- schema is written into the body, quoted, when the migration runs (with
-- search_path set to the store's schema); pg_catalog is named for the same
-- reason. Signature, owner and grants stay those of migration 005.
DO $migration$
BEGIN
    EXECUTE format($procedure$
CREATE OR REPLACE PROCEDURE %1$I.state_cleanup_expired(batch_size integer DEFAULT 10000, INOUT deleted bigint DEFAULT 0)
LANGUAGE plpgsql AS $body$
DECLARE
    n bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive, got %%', batch_size;
    END IF;
    deleted := 0;
    LOOP
        -- As the EntriesDeleteExpiredBatch query: by row id, with the
        -- expiry tested again against rows rewritten meanwhile.
        DELETE FROM %1$I.state_entries
        WHERE ctid = ANY(ARRAY(
                SELECT e.ctid
                FROM %1$I.state_entries AS e
                WHERE e.expires_at <= pg_catalog.now()
                ORDER BY e.expires_at
                LIMIT batch_size
            ))
            AND (expires_at <= pg_catalog.now()) IS TRUE;
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted := deleted + n;
        EXIT WHEN n < batch_size;
        COMMIT;
    END LOOP;
END;
$body$
$procedure$, current_schema());
END;
$migration$;

---- create above / drop below ----

-- Back to migration 005's procedure, which finds state_entries through the
-- caller's search_path.
CREATE OR REPLACE PROCEDURE state_cleanup_expired(batch_size integer DEFAULT 10000, INOUT deleted bigint DEFAULT 0)
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
