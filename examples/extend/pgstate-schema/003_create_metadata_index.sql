-- Serves FindByMetadata's containment query (metadata @> filter).
-- jsonb_path_ops is smaller and faster than the default operator class and
-- supports exactly the @> operator the query uses.
CREATE INDEX state_entries_metadata_idx
    ON state_entries USING gin (metadata jsonb_path_ops)
    WHERE metadata IS NOT NULL;

---- create above / drop below ----

DROP INDEX state_entries_metadata_idx;
