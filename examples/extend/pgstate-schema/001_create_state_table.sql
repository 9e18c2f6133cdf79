-- The key/value table every store operation reads and writes.
CREATE TABLE state_entries (
    key        BYTEA       NOT NULL,
    value      BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NULL,
    metadata   JSONB       NULL,
    version    BIGINT      NOT NULL DEFAULT 1,
    CONSTRAINT state_entries_pkey PRIMARY KEY (key),
    -- Mirrors the client-side limit: a btree entry must fit in a third of a page.
    CONSTRAINT state_entries_key_length CHECK (octet_length(key) BETWEEN 1 AND 2048),
    CONSTRAINT state_entries_version_positive CHECK (version > 0)
);

COMMENT ON TABLE state_entries IS 'pgstate key/value entries; one row per live or not yet cleaned-up key.';
COMMENT ON COLUMN state_entries.key IS 'Binary key, 1 to 2048 bytes, compared bytewise.';
COMMENT ON COLUMN state_entries.value IS 'Binary value; an empty value is stored as zero bytes, never NULL.';
COMMENT ON COLUMN state_entries.created_at IS 'When the key was first written (reset when an expired entry is overwritten).';
COMMENT ON COLUMN state_entries.updated_at IS 'When the entry was last written; maintained by every write.';
COMMENT ON COLUMN state_entries.expires_at IS 'When the entry stops being visible; NULL means it never expires.';
COMMENT ON COLUMN state_entries.metadata IS 'Optional JSON document attached to the entry.';
COMMENT ON COLUMN state_entries.version IS 'Starts at 1 and grows by one with every write of the key.';

-- Writes issued by pgstate set updated_at and version themselves, so the
-- trigger only runs (and pays for PL/pgSQL) when some other client updates a
-- row without bumping the version, for example an operator in psql.
CREATE FUNCTION state_entries_touch() RETURNS trigger
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

---- create above / drop below ----

DROP TRIGGER state_entries_touch ON state_entries;
DROP FUNCTION state_entries_touch();
DROP TABLE state_entries;
