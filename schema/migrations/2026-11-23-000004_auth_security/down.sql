DROP TABLE IF EXISTS auth_schema.audit_log;
DROP TABLE IF EXISTS auth_schema.refresh_token_uses;
