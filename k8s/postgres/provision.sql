-- Creates Warden's database, one role per service and one schema per service, owned by its role.
-- Idempotent: run it on every start. Variables (psql -v): db, and pw_<service> for each service.
-- A service's role can use only its own schema: no other role has USAGE on it.
\set ON_ERROR_STOP on

-- Roles are cluster-wide: serialise concurrent runs (two jobs, parallel tests) while changing them.
SELECT pg_advisory_lock(hashtext('warden.provision'));

SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec

SELECT format('CREATE ROLE %I LOGIN', r) FROM unnest(ARRAY['warden_gateway','warden_vault','warden_policy','warden_approvals','warden_audit']) AS r
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec

ALTER ROLE warden_gateway   WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw_gateway';
ALTER ROLE warden_vault     WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw_vault';
ALTER ROLE warden_policy    WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw_policy';
ALTER ROLE warden_approvals WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw_approvals';
ALTER ROLE warden_audit     WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw_audit';

SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO warden_gateway, warden_vault, warden_policy, warden_approvals, warden_audit', :'db') \gexec
SELECT format('ALTER ROLE %I IN DATABASE %I SET search_path = %I', 'warden_' || s, :'db', s)
FROM unnest(ARRAY['gateway','vault','policy','approvals','audit']) AS s \gexec

SELECT pg_advisory_unlock(hashtext('warden.provision'));

\connect :db

REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS gateway   AUTHORIZATION warden_gateway;
CREATE SCHEMA IF NOT EXISTS vault     AUTHORIZATION warden_vault;
CREATE SCHEMA IF NOT EXISTS policy    AUTHORIZATION warden_policy;
CREATE SCHEMA IF NOT EXISTS approvals AUTHORIZATION warden_approvals;
CREATE SCHEMA IF NOT EXISTS audit     AUTHORIZATION warden_audit;
