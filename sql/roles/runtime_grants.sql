-- What the runtime role may do, re-applied in full by every `consentd migrate` run.
-- {{app_role}} is replaced by the quoted role name. Everything is revoked first, so this file is the whole truth:
-- a privilege not granted here is one the server does not have.

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {{app_role}};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {{app_role}};
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {{app_role}};
REVOKE CREATE ON SCHEMA public FROM {{app_role}};
GRANT USAGE ON SCHEMA public TO {{app_role}};

GRANT SELECT ON schema_migrations TO {{app_role}};
GRANT SELECT ON tenants TO {{app_role}};
GRANT SELECT, INSERT ON api_keys TO {{app_role}};
GRANT UPDATE (revoked_at) ON api_keys TO {{app_role}};

GRANT EXECUTE ON FUNCTION app_current_tenant() TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_operator_scope() TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_authenticate(bytea) TO {{app_role}};
