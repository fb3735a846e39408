-- 0001: the least-privilege role the programs connect as.
--
-- Migrations run as the owner of the database; the FastCGI programs and the
-- worker connect as agora_app, which may read and write rows but never
-- change the schema.  Production installs create agora_app with a password
-- before migrating (see README); here it is created without LOGIN when it
-- does not exist yet, which needs CREATEROLE.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agora_app') THEN
		CREATE ROLE agora_app NOLOGIN;
	END IF;
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO agora_app;

-- Tables and sequences the owner creates from here on are usable by the
-- programs; later migrations revoke what a table should not allow.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
	GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO agora_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
	GRANT USAGE, SELECT ON SEQUENCES TO agora_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
	GRANT EXECUTE ON FUNCTIONS TO agora_app;
