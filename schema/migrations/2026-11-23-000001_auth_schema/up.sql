-- auth_schema: users, sessions and role-based access control. Owned by the auth service.
CREATE SCHEMA IF NOT EXISTS auth_schema;

CREATE TABLE auth_schema.users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- stored lower-cased and trimmed; uniqueness is case-insensitive by construction
    email           text NOT NULL CHECK (email = lower(email) AND char_length(email) BETWEEN 3 AND 254),
    password_hash   text NOT NULL,
    first_name      text NOT NULL CHECK (char_length(first_name) BETWEEN 1 AND 100),
    last_name       text NOT NULL CHECK (char_length(last_name) BETWEEN 1 AND 100),
    company         text CHECK (company IS NULL OR char_length(company) <= 200),
    is_active       boolean NOT NULL DEFAULT true,
    is_verified     boolean NOT NULL DEFAULT false,
    failed_logins   integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until    timestamptz,
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON auth_schema.users (email);

CREATE TABLE auth_schema.sessions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES auth_schema.users (id) ON DELETE CASCADE,
    -- SHA-256 of the current refresh token; the token itself is never stored
    refresh_token_hash  text NOT NULL,
    ip                  text NOT NULL DEFAULT '',
    user_agent          text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_used_at        timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    revoked_at          timestamptz,
    revoked_reason      text,
    CHECK (expires_at > created_at)
);
CREATE UNIQUE INDEX sessions_refresh_token_hash_key ON auth_schema.sessions (refresh_token_hash);
-- "the user's live sessions": logout-everywhere, session lists
CREATE INDEX sessions_user_live_idx ON auth_schema.sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE auth_schema.roles (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{1,49}$'),
    description text NOT NULL DEFAULT '',
    is_system   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth_schema.permissions (
    id          serial PRIMARY KEY,
    -- resource:action, e.g. project:create
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z_]+:[a-z_]+$'),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth_schema.user_roles (
    user_id     uuid NOT NULL REFERENCES auth_schema.users (id) ON DELETE CASCADE,
    role_id     integer NOT NULL REFERENCES auth_schema.roles (id) ON DELETE CASCADE,
    granted_by  uuid REFERENCES auth_schema.users (id) ON DELETE SET NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_idx ON auth_schema.user_roles (role_id);

CREATE TABLE auth_schema.role_permissions (
    role_id       integer NOT NULL REFERENCES auth_schema.roles (id) ON DELETE CASCADE,
    permission_id integer NOT NULL REFERENCES auth_schema.permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, permission_id)
);
CREATE INDEX role_permissions_permission_idx ON auth_schema.role_permissions (permission_id);

INSERT INTO auth_schema.roles (name, description, is_system) VALUES
    ('admin',  'Full access, including user administration', true),
    ('member', 'Creates and runs their own projects and simulations', true),
    ('viewer', 'Reads what is shared with them', true);

INSERT INTO auth_schema.permissions (name, description) VALUES
    ('project:create',    'Create projects'),
    ('project:read',      'Read projects the user can access'),
    ('project:update',    'Edit projects the user can edit'),
    ('project:delete',    'Delete own projects'),
    ('project:share',     'Share own projects'),
    ('simulation:start',  'Start simulations'),
    ('simulation:read',   'Read simulation results'),
    ('simulation:stop',   'Stop own simulations'),
    ('template:create',   'Create templates'),
    ('admin:users',       'List, lock and manage users'),
    ('admin:roles',       'Assign and remove roles'),
    ('admin:system',      'Operate the system');

INSERT INTO auth_schema.role_permissions (role_id, permission_id)
SELECT r.id, p.id FROM auth_schema.roles r, auth_schema.permissions p
WHERE r.name = 'admin'
   OR (r.name = 'member' AND p.name IN ('project:create', 'project:read', 'project:update',
        'project:delete', 'project:share', 'simulation:start', 'simulation:read',
        'simulation:stop', 'template:create'))
   OR (r.name = 'viewer' AND p.name IN ('project:read', 'simulation:read'));
