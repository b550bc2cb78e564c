DROP TABLE IF EXISTS auth_schema.email_tokens;
