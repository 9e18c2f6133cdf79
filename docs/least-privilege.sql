-- pgstate roles: an owner that runs the migrations and owns the tables, and
-- an application role that can only read and write rows. Replace the names
-- (pgstate_owner, pgstate_app, the database pgstate_db, the schema pgstate)
-- and the passwords with your own. tests/privilege_test.go runs this file.

-- [superuser] Run once as a superuser or a role with CREATEROLE.
CREATE ROLE pgstate_owner LOGIN PASSWORD 'owner-secret';
CREATE ROLE pgstate_app LOGIN PASSWORD 'app-secret';
-- CREATE lets the owner's migrations create the store's schema.
GRANT CONNECT, CREATE ON DATABASE pgstate_db TO pgstate_owner;
GRANT CONNECT ON DATABASE pgstate_db TO pgstate_app;

-- [owner] Run as pgstate_owner after the migrations (state.Open with
-- Config.Schema = "pgstate", or statectl migrate up), and again after each
-- release that adds a table.
REVOKE ALL ON SCHEMA pgstate FROM PUBLIC;
GRANT USAGE ON SCHEMA pgstate TO pgstate_app;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON pgstate.state_entries, pgstate.state_checkpoints, pgstate.state_checkpoint_entries
    TO pgstate_app;
GRANT SELECT ON pgstate.pgstate_schema_version TO pgstate_app;
-- Writes draw the entries' revisions (mod_revision) themselves.
GRANT USAGE ON SEQUENCE pgstate.state_entries_revision_seq TO pgstate_app;
-- The change feed: the triggers that log every write run as the owner
-- (SECURITY DEFINER, migration 010), so the application role only reads
-- the log, its state and the log sequence's position; it compacts the log
-- through the owner's two compaction functions, granted below, and can
-- neither write, alter nor remove events, nor move the marker by hand.
-- Switching the feed off or on (SetChangeFeed, statectl feed) stays with
-- the owner.
GRANT SELECT ON pgstate.state_changes, pgstate.state_changes_meta TO pgstate_app;
GRANT SELECT ON SEQUENCE pgstate.state_changes_revision_seq TO pgstate_app;
-- The store calls only the compaction functions; the cleanup procedure
-- stays callable only by roles given it explicitly. Functions a
-- later migration adds are executable by PUBLIC (the default) until this
-- part runs again, so an upgrade needs no new grant to keep working.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pgstate FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA pgstate FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgstate.state_changes_compact(bigint, bigint, bigint),
    pgstate.state_changes_compact_before(bigint, bigint, bigint) TO pgstate_app;
