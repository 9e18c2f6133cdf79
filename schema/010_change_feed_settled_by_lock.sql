-- The change feed without gap rows (docs/change-feed.md).
--
-- Revisions still come from state_changes_revision_seq, taken while the
-- writer holds its rows' locks, so the changes of one key are in revision
-- order; they still commit in another order, so a reader meets revisions
-- that are missing from the log: taken by a writer that has not committed
-- yet, or lost to a rollback or a crash. Until now a reader resolved such a
-- hole by writing a gap row there, which waited for the holder, could abort
-- a slow writer, cancelled its own statement after 2 s and never finished a
-- large hole. Now a reader settles holes without writing anything:
--
-- * every transaction that writes the log first takes a shared
--   transaction-level advisory lock, (feed_lock_class, lock_key), and only
--   then draws its revisions;
-- * a reader reads the sequence's last value L, and then which transactions
--   hold that lock (pg_locks): every revision up to L was drawn by one of
--   them or by a transaction that has ended;
-- * once those transactions have ended, every revision up to L that is not
--   in the log never will be, so the reader skips it.
--
-- Shared locks never wait for each other, so writers do not contend; a
-- writer that stays open delays delivery after its revision only until it
-- ends. Transactions of other databases and of other stores (another lock
-- key) are never waited for.
--
-- The trigger functions become SECURITY DEFINER, owned by the owner, so the
-- application role needs no write privilege on the log or its state: it can
-- only make real writes, which the triggers log. Every name in them is
-- qualified (tables with the store's schema, written in when the migration
-- runs; functions and operators with pg_catalog), so the caller's
-- search_path cannot make them run anything else, and no per-call SET
-- clause costs the write anything. Put events carry the entry's expiry.
--
-- Entries get revisions of their own too: mod_revision (the last write)
-- and create_revision (the write that created the entry; NULL while it is
-- mod_revision), from state_entries_revision_seq, never reused, so that a
-- compare-and-swap on mod_revision cannot succeed on another incarnation of
-- the key (after a delete and re-create, or a restore, which writes new
-- ones). They are not the log's revisions: an insert evaluates its column
-- defaults before it may wait for a conflicting writer of the same key,
-- so a revision on the row can be older than that writer's, while the log
-- must order each key's changes as they happened; its revisions are drawn
-- by the triggers, after every wait. A put's log row records the entry's
-- mod_revision as well.

ALTER TABLE state_changes ADD COLUMN expires_at TIMESTAMPTZ NULL;
ALTER TABLE state_changes ADD COLUMN mod_revision BIGINT NULL;

COMMENT ON COLUMN state_changes.mod_revision IS 'The entry''s mod_revision after a put; NULL otherwise.';
COMMENT ON COLUMN state_changes.expires_at IS 'The expiry of the entry a put wrote; NULL when none (or for other kinds).';
COMMENT ON COLUMN state_changes.kind IS '1 put, 2 delete, 3 expire (an expired row removed); 0 a gap row written by releases before migration 010 (never delivered).';

-- The second key of the writers' advisory lock: the first is the constant
-- 1885828980 (the bytes "pgst"). Derived from the schema name once, and
-- kept here, so that a dump and restore or a renamed schema keeps writers
-- and readers on the same lock.
ALTER TABLE state_changes_meta ADD COLUMN lock_key INTEGER NOT NULL DEFAULT 0;
UPDATE state_changes_meta SET lock_key = hashtext(current_schema());

COMMENT ON COLUMN state_changes_meta.lock_key IS 'Second key of the advisory lock (1885828980, lock_key) every writer of the log holds in shared mode while it draws revisions.';

CREATE SEQUENCE state_entries_revision_seq AS bigint;

-- Existing rows get a revision each: the volatile default rewrites the
-- table once.
ALTER TABLE state_entries
    ADD COLUMN mod_revision BIGINT NOT NULL DEFAULT nextval('state_entries_revision_seq'),
    ADD COLUMN create_revision BIGINT NULL;

ALTER SEQUENCE state_entries_revision_seq OWNED BY state_entries.mod_revision;

-- Every role that may insert entries may draw their revisions, so that an
-- application role set up for an earlier release keeps writing after this
-- migration with no new grant.
DO $migration$
DECLARE
    grantee text;
BEGIN
    FOR grantee IN
        SELECT DISTINCT g.grantee
        FROM information_schema.role_table_grants AS g
        WHERE g.table_schema = current_schema()
            AND g.table_name = 'state_entries'
            AND g.privilege_type = 'INSERT'
            AND g.grantee <> 'PUBLIC'
    LOOP
        EXECUTE format('GRANT USAGE ON SEQUENCE state_entries_revision_seq TO %I', grantee);
    END LOOP;
END;
$migration$;

COMMENT ON COLUMN state_entries.mod_revision IS 'Revision of the last write of the entry (state_entries_revision_seq); never reused.';
COMMENT ON COLUMN state_entries.create_revision IS 'Revision of the write that created the entry (or began its life again after it expired); NULL when that is mod_revision.';

-- Writes issued by pgstate move version and mod_revision themselves; the
-- touch trigger covers other clients' updates that do not (an operator's
-- psql), so that every update gets a new mod_revision.
DROP TRIGGER state_entries_touch ON state_entries;

DO $migration$
BEGIN
    EXECUTE format($function$
CREATE OR REPLACE FUNCTION %1$I.state_entries_touch() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    NEW.updated_at := pg_catalog.now();
    IF NEW.version OPERATOR(pg_catalog.=) OLD.version THEN
        NEW.version := OLD.version OPERATOR(pg_catalog.+) 1;
    END IF;
    IF NEW.mod_revision OPERATOR(pg_catalog.=) OLD.mod_revision THEN
        NEW.mod_revision := pg_catalog.nextval(%2$L::pg_catalog.regclass);
        NEW.create_revision := coalesce(OLD.create_revision, OLD.mod_revision);
    END IF;
    RETURN NEW;
END;
$body$
$function$, current_schema(), pg_catalog.quote_ident(current_schema()) || '.state_entries_revision_seq');
END;
$migration$;

CREATE TRIGGER state_entries_touch
    BEFORE UPDATE ON state_entries
    FOR EACH ROW
    WHEN (NEW.version = OLD.version OR NEW.mod_revision = OLD.mod_revision)
    EXECUTE FUNCTION state_entries_touch();

DO $migration$
DECLARE
    lock_key integer := (SELECT m.lock_key FROM state_changes_meta AS m);
BEGIN
    EXECUTE format($function$
CREATE OR REPLACE FUNCTION %1$I.state_changes_put() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(1885828980, %2$s);
    INSERT INTO %1$I.state_changes (kind, key, version, value, expires_at, mod_revision)
    SELECT 1, r.key, r.version, r.value, r.expires_at, r.mod_revision
    FROM new_rows AS r;
    RETURN NULL;
END;
$body$
$function$, current_schema(), lock_key);

    EXECUTE format($function$
CREATE OR REPLACE FUNCTION %1$I.state_changes_remove() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(1885828980, %2$s);
    INSERT INTO %1$I.state_changes (kind, key, version)
    SELECT CASE WHEN r.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 3 ELSE 2 END, r.key, r.version
    FROM old_rows AS r;
    RETURN NULL;
END;
$body$
$function$, current_schema(), lock_key);

    EXECUTE format($function$
CREATE OR REPLACE FUNCTION %1$I.state_changes_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(1885828980, %3$s);
    UPDATE %1$I.state_changes_meta
    SET compacted_revision = pg_catalog.nextval(%2$L::pg_catalog.regclass);
    RETURN NULL;
END;
$body$
$function$, current_schema(), pg_catalog.quote_ident(current_schema()) || '.state_changes_revision_seq', lock_key);
END;
$migration$;

-- The cleanup procedure gets the same treatment: its operators and
-- functions named with pg_catalog, its tables with the schema, so that a session whose search_path puts another schema first
-- (a superuser's psql, say) cannot make them run that schema's operators.
DO $migration$
BEGIN
    EXECUTE format($procedure$
CREATE OR REPLACE PROCEDURE %1$I.state_cleanup_expired(batch_size integer DEFAULT 10000, INOUT deleted bigint DEFAULT 0)
LANGUAGE plpgsql AS $body$
DECLARE
    n bigint;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be positive, got %%', batch_size;
    END IF;
    deleted := 0;
    LOOP
        -- As the EntriesDeleteExpiredBatch query: by row id, with the
        -- expiry tested again against rows rewritten meanwhile.
        DELETE FROM %1$I.state_entries
        WHERE ctid OPERATOR(pg_catalog.=) ANY(ARRAY(
                SELECT e.ctid
                FROM %1$I.state_entries AS e
                WHERE e.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()
                ORDER BY e.expires_at
                LIMIT batch_size
            ))
            AND (expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()) IS TRUE;
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted := deleted OPERATOR(pg_catalog.+) n;
        EXIT WHEN n OPERATOR(pg_catalog.<) batch_size;
        COMMIT;
    END LOOP;
END;
$body$
$procedure$, current_schema());
END;
$migration$;

-- Compaction deletes from the log and moves the marker: through these two
-- functions, owned by the owner, so the application role needs neither
-- DELETE on the log nor UPDATE on its state. The store passes upto, the
-- newest revision it has settled (everything up to it is in the log or
-- never will be), so the marker is always a safe point to resume from.
-- Each call removes at most batch_size revisions past the marker. Their
-- search_path is the store's schema with pg_temp last (pg_catalog is always
-- first), so that no temporary table of the caller's can stand in for the
-- store's.
SELECT set_config('search_path', current_setting('search_path') || ', pg_temp', true);

CREATE FUNCTION state_changes_compact(revision bigint, upto bigint, batch_size bigint,
                                      OUT deleted bigint, OUT compacted bigint)
LANGUAGE sql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    WITH cut AS (
        SELECT least(revision, upto, m.compacted_revision + batch_size) AS upto
        FROM state_changes_meta AS m
    ), gone AS (
        DELETE FROM state_changes AS c
        WHERE c.revision <= (SELECT cut.upto FROM cut)
        RETURNING 1
    ), marked AS (
        UPDATE state_changes_meta AS m
        SET compacted_revision = greatest(m.compacted_revision, (SELECT cut.upto FROM cut))
        RETURNING m.compacted_revision
    )
    SELECT (SELECT count(*) FROM gone), (SELECT marked.compacted_revision FROM marked);
$$;

-- Retention: the oldest changes made more than retention ago, by the
-- database's clock, at most batch_size of them and never past upto.
CREATE FUNCTION state_changes_compact_before(retention_micros bigint, upto bigint, batch_size bigint,
                                             OUT deleted bigint, OUT compacted bigint)
LANGUAGE sql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    WITH head AS (
        SELECT c.revision, c.changed_at
        FROM state_changes AS c
        WHERE c.revision <= upto
        ORDER BY c.revision
        LIMIT batch_size
    ), young AS (
        SELECT min(h.revision) AS revision
        FROM head AS h
        WHERE h.changed_at >= now() - retention_micros * interval '1 microsecond'
    ), cut AS (
        SELECT coalesce(max(h.revision), 0) AS upto
        FROM head AS h, young
        WHERE young.revision IS NULL OR h.revision < young.revision
    ), gone AS (
        DELETE FROM state_changes AS c
        WHERE c.revision <= (SELECT cut.upto FROM cut)
        RETURNING 1
    ), marked AS (
        UPDATE state_changes_meta AS m
        SET compacted_revision = greatest(m.compacted_revision, (SELECT cut.upto FROM cut))
        RETURNING m.compacted_revision
    )
    SELECT (SELECT count(*) FROM gone), (SELECT marked.compacted_revision FROM marked);
$$;

-- Every function here keeps PUBLIC's EXECUTE, the default, so that an
-- application role set up by docs/least-privilege.sql for an earlier
-- release keeps working after this migration without a new grant; the
-- compaction functions stop at the settled revision the caller passes and
-- the marker only moves forward, so calling them is no more than
-- CompactChanges.

---- create above / drop below ----

DROP FUNCTION state_changes_compact_before(bigint, bigint, bigint);
DROP FUNCTION state_changes_compact(bigint, bigint, bigint);

-- The touch trigger and the cleanup procedure as migrations 001 and 006
-- left them.
DROP TRIGGER state_entries_touch ON state_entries;

CREATE OR REPLACE FUNCTION state_entries_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$;

CREATE TRIGGER state_entries_touch
    BEFORE UPDATE ON state_entries
    FOR EACH ROW
    WHEN (NEW.version = OLD.version)
    EXECUTE FUNCTION state_entries_touch();

ALTER TABLE state_entries DROP COLUMN create_revision, DROP COLUMN mod_revision;

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

DO $migration$
BEGIN
    EXECUTE format($function$
CREATE OR REPLACE FUNCTION %1$I.state_changes_put() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER AS $body$
DECLARE
    n bigint;
BEGIN
    INSERT INTO %1$I.state_changes (kind, key, version, value)
    SELECT 1, r.key, r.version, r.value
    FROM new_rows AS r
    ON CONFLICT (revision) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n < (SELECT pg_catalog.count(*) FROM new_rows) THEN
        RAISE EXCEPTION 'pgstate: a change revision of this write was marked as a gap'
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NULL;
END;
$body$
$function$, current_schema());

    EXECUTE format($function$
CREATE OR REPLACE FUNCTION %1$I.state_changes_remove() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER AS $body$
DECLARE
    n bigint;
BEGIN
    INSERT INTO %1$I.state_changes (kind, key, version)
    SELECT CASE WHEN r.expires_at <= pg_catalog.now() THEN 3 ELSE 2 END, r.key, r.version
    FROM old_rows AS r
    ON CONFLICT (revision) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n < (SELECT pg_catalog.count(*) FROM old_rows) THEN
        RAISE EXCEPTION 'pgstate: a change revision of this write was marked as a gap'
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NULL;
END;
$body$
$function$, current_schema());

    EXECUTE format($function$
CREATE OR REPLACE FUNCTION %1$I.state_changes_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER AS $body$
BEGIN
    UPDATE %1$I.state_changes_meta
    SET compacted_revision = pg_catalog.nextval(%2$L::regclass);
    RETURN NULL;
END;
$body$
$function$, current_schema(), pg_catalog.quote_ident(current_schema()) || '.state_changes_revision_seq');
END;
$migration$;

ALTER TABLE state_changes_meta DROP COLUMN lock_key;

ALTER TABLE state_changes DROP COLUMN mod_revision;

ALTER TABLE state_changes DROP COLUMN expires_at;
