DROP TABLE IF EXISTS auth_schema.notifications;
