-- Row-level security as a boundary (docs/security.md). The schema belongs
-- to the role that runs the migrations (`leadflow db migrate`); the daemon
-- logs in as a member of leadflow_app, which is not the owner, so:
--
-- * every table that has tenant policies gets FORCE ROW LEVEL SECURITY:
--   the policies then hold for the owner as well (a daemon started with the
--   owner's URL by mistake still sees one tenant per transaction);
-- * leadflow_app may read the migration ledger (the daemon checks the
--   schema is current before it starts) but not write it, so it cannot
--   mark a migration applied or erase one.
--
-- Tables created by later migrations enable and force RLS themselves (a
-- test checks that every table but the ledger has both).
DO $$
DECLARE t text;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relrowsecurity
    LOOP
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;

REVOKE ALL ON _sqlx_migrations FROM leadflow_app;
GRANT SELECT ON _sqlx_migrations TO leadflow_app;
