-- SchemaExists tells a store whose tables are missing because its schema was
-- never created (often a mistyped name) from one that is not migrated yet.
-- name: SchemaExists :one
SELECT EXISTS (
    SELECT 1
    FROM pg_catalog.pg_namespace
    WHERE nspname = @name::text
) AS found;
