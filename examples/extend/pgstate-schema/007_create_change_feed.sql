-- The change feed: a durable log of every write to state_entries, ordered by
-- a store-wide revision. Triggers fill it in the writing transaction, so
-- every write path (single statements, batches and COPY, deletes, cleanup,
-- restores, transactions, an operator's psql) is covered and a change is in
-- the log exactly when its write committed.
--
-- Revisions come from a sequence, so they are handed out in one order and
-- committed in another: a watcher reads the log in revision order and only
-- delivers the unbroken run after its cursor. A hole (a revision still held
-- by an open transaction, or lost to a rollback or a crash) is resolved by
-- inserting a gap row at that revision (ChangesFillGaps): the insert waits
-- for a transaction that holds the revision to end, and fills a lost one for
-- good. Gap rows are never delivered.
CREATE SEQUENCE state_changes_revision_seq AS bigint;

CREATE TABLE state_changes (
    revision   BIGINT      NOT NULL DEFAULT nextval('state_changes_revision_seq'),
    version    BIGINT      NOT NULL DEFAULT 0,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    kind       SMALLINT    NOT NULL,
    key        BYTEA       NOT NULL DEFAULT ''::bytea,
    value      BYTEA       NULL,
    CONSTRAINT state_changes_pkey PRIMARY KEY (revision),
    CONSTRAINT state_changes_kind_known CHECK (kind BETWEEN 0 AND 3)
);

ALTER SEQUENCE state_changes_revision_seq OWNED BY state_changes.revision;

COMMENT ON TABLE state_changes IS 'pgstate change feed: one row per changed key and write, in revision order.';
COMMENT ON COLUMN state_changes.revision IS 'Store-wide position of the change; unique, increasing in the order revisions were taken.';
COMMENT ON COLUMN state_changes.kind IS '1 put, 2 delete, 3 expire (an expired row removed), 0 gap (a revision no write committed).';
COMMENT ON COLUMN state_changes.version IS 'The entry version written (put) or removed (delete, expire); 0 for a gap.';
COMMENT ON COLUMN state_changes.changed_at IS 'Start time of the writing transaction (its now()).';
COMMENT ON COLUMN state_changes.value IS 'The value written by a put; NULL otherwise.';

-- One row, inserted here: how far the log has been compacted, and whether
-- it is recorded. No key: nothing but this migration inserts (the
-- application role may only read and update it), and every statement reads
-- the whole table.
CREATE TABLE state_changes_meta (
    compacted_revision BIGINT  NOT NULL DEFAULT 0,
    enabled            BOOLEAN NOT NULL DEFAULT true
);

COMMENT ON TABLE state_changes_meta IS 'pgstate change feed state: a single row.';
COMMENT ON COLUMN state_changes_meta.compacted_revision IS 'Every revision up to this one is gone from the log (or incomplete): a watcher cannot resume at or below it.';
COMMENT ON COLUMN state_changes_meta.enabled IS 'False while the feed is switched off (state_changes_set_enabled).';

INSERT INTO state_changes_meta DEFAULT VALUES;

-- The trigger functions run on every write, so they name their tables with
-- the store's schema, written in when the migration runs (as migration 006
-- does for the cleanup procedure): the writer's search_path does not
-- matter, and no per-call SET clause costs the write anything.
--
-- A watcher may have put a gap row at a revision this statement took (only
-- if the writer stalled between taking the revision and inserting it for
-- longer than the watcher's grace period): the insert skips it and the
-- statement fails as a serialization failure, which the store retries.
--
-- A removed row that had already expired is an expiry, whoever removed it.
DO $migration$
BEGIN
    EXECUTE format($function$
CREATE FUNCTION %1$I.state_changes_put() RETURNS trigger
LANGUAGE plpgsql AS $body$
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
CREATE FUNCTION %1$I.state_changes_remove() RETURNS trigger
LANGUAGE plpgsql AS $body$
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

    -- TRUNCATE removes rows without row events: the log cannot say which,
    -- so every earlier revision becomes unusable to resume from.
    EXECUTE format($function$
CREATE FUNCTION %1$I.state_changes_truncated() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    UPDATE %1$I.state_changes_meta
    SET compacted_revision = pg_catalog.nextval(%2$L::regclass);
    RETURN NULL;
END;
$body$
$function$, current_schema(), pg_catalog.quote_ident(current_schema()) || '.state_changes_revision_seq');
END;
$migration$;

-- Statement-level triggers with transition tables: one trigger call and
-- one INSERT per statement, however many rows it wrote (a row-level trigger
-- would cost a call per row of a batch). INSERT and UPDATE need separate
-- triggers because a trigger with transition tables may have one event.
CREATE TRIGGER state_changes_insert
    AFTER INSERT ON state_entries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION state_changes_put();

CREATE TRIGGER state_changes_update
    AFTER UPDATE ON state_entries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION state_changes_put();

CREATE TRIGGER state_changes_delete
    AFTER DELETE ON state_entries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION state_changes_remove();

CREATE TRIGGER state_changes_truncate
    AFTER TRUNCATE ON state_entries
    FOR EACH STATEMENT
    EXECUTE FUNCTION state_changes_truncated();

-- Switches the feed off (writes stop being logged and cost nothing extra)
-- or back on. Only the table's owner may call it: ALTER TABLE. Watchers see
-- the switch: while it is off they fail with ErrChangeFeedOff, and turning
-- it on compacts every earlier revision, since the writes made while it was
-- off are missing from the log. Rarely called, so a SET clause pins the
-- search_path instead of the schema being written in.
CREATE FUNCTION state_changes_set_enabled(enabled boolean) RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF enabled THEN
        ALTER TABLE state_entries ENABLE TRIGGER state_changes_insert;
        ALTER TABLE state_entries ENABLE TRIGGER state_changes_update;
        ALTER TABLE state_entries ENABLE TRIGGER state_changes_delete;
        ALTER TABLE state_entries ENABLE TRIGGER state_changes_truncate;
        UPDATE state_changes_meta AS m
        SET enabled = true,
            compacted_revision = nextval('state_changes_revision_seq')
        WHERE NOT m.enabled;
    ELSE
        ALTER TABLE state_entries DISABLE TRIGGER state_changes_insert;
        ALTER TABLE state_entries DISABLE TRIGGER state_changes_update;
        ALTER TABLE state_entries DISABLE TRIGGER state_changes_delete;
        ALTER TABLE state_entries DISABLE TRIGGER state_changes_truncate;
        UPDATE state_changes_meta SET enabled = false;
    END IF;
    RETURN enabled;
END;
$$;

---- create above / drop below ----

DROP FUNCTION state_changes_set_enabled(boolean);
DROP TRIGGER state_changes_truncate ON state_entries;
DROP TRIGGER state_changes_delete ON state_entries;
DROP TRIGGER state_changes_update ON state_entries;
DROP TRIGGER state_changes_insert ON state_entries;
DROP FUNCTION state_changes_truncated();
DROP FUNCTION state_changes_remove();
DROP FUNCTION state_changes_put();
DROP TABLE state_changes_meta;
DROP TABLE state_changes;
