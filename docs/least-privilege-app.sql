-- [application tables] The application's own tables in the store's schema
-- (see the README's "Extending the schema"), after docs/least-privilege.sql.
-- Run as pgstate_owner once the application's migrations are applied
-- (state.Open with Config.Migrations, or statectl migrate up --app), and
-- again after each migration that adds a table or sequence. The names are
-- examples/extend's: the shop's set, its orders table and identity sequence.
GRANT SELECT, INSERT, UPDATE, DELETE ON pgstate.orders TO pgstate_app;
GRANT USAGE ON SEQUENCE pgstate.orders_id_seq TO pgstate_app;
-- Open and HealthCheck read the set's version, as they read pgstate's.
GRANT SELECT ON pgstate.shop_schema_version TO pgstate_app;
