//! Diesel table definitions, one module per PostgreSQL schema (see `migrations/`).
#![allow(missing_docs)]

pub mod auth_schema {
    diesel::table! {
        auth_schema.users (id) {
            id -> Uuid,
            email -> Text,
            password_hash -> Text,
            first_name -> Text,
            last_name -> Text,
            company -> Nullable<Text>,
            is_active -> Bool,
            is_verified -> Bool,
            failed_logins -> Int4,
            locked_until -> Nullable<Timestamptz>,
            last_login_at -> Nullable<Timestamptz>,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        auth_schema.sessions (id) {
            id -> Uuid,
            user_id -> Uuid,
            refresh_token_hash -> Text,
            ip -> Text,
            user_agent -> Text,
            created_at -> Timestamptz,
            last_used_at -> Timestamptz,
            expires_at -> Timestamptz,
            revoked_at -> Nullable<Timestamptz>,
            revoked_reason -> Nullable<Text>,
        }
    }

    diesel::table! {
        auth_schema.roles (id) {
            id -> Int4,
            name -> Text,
            description -> Text,
            is_system -> Bool,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        auth_schema.permissions (id) {
            id -> Int4,
            name -> Text,
            description -> Text,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        auth_schema.user_roles (user_id, role_id) {
            user_id -> Uuid,
            role_id -> Int4,
            granted_by -> Nullable<Uuid>,
            granted_at -> Timestamptz,
        }
    }

    diesel::table! {
        auth_schema.role_permissions (role_id, permission_id) {
            role_id -> Int4,
            permission_id -> Int4,
        }
    }

    diesel::table! {
        auth_schema.refresh_token_uses (token_hash) {
            token_hash -> Text,
            session_id -> Uuid,
            used_at -> Timestamptz,
        }
    }

    diesel::table! {
        auth_schema.audit_log (id) {
            id -> Int8,
            occurred_at -> Timestamptz,
            event -> Text,
            user_id -> Nullable<Uuid>,
            session_id -> Nullable<Uuid>,
            ip -> Text,
            user_agent -> Text,
            detail -> Jsonb,
        }
    }

    diesel::table! {
        auth_schema.email_tokens (token_hash) {
            token_hash -> Text,
            user_id -> Uuid,
            purpose -> Text,
            created_at -> Timestamptz,
            expires_at -> Timestamptz,
            used_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        auth_schema.notifications (id) {
            id -> Uuid,
            user_id -> Uuid,
            kind -> Text,
            title -> Text,
            body -> Text,
            link -> Text,
            data -> Jsonb,
            created_at -> Timestamptz,
            read_at -> Nullable<Timestamptz>,
        }
    }

    diesel::joinable!(sessions -> users (user_id));
    diesel::joinable!(refresh_token_uses -> sessions (session_id));
    diesel::joinable!(user_roles -> roles (role_id));
    diesel::joinable!(role_permissions -> roles (role_id));
    diesel::joinable!(role_permissions -> permissions (permission_id));
    diesel::allow_tables_to_appear_in_same_query!(
        users,
        sessions,
        roles,
        permissions,
        user_roles,
        role_permissions,
        refresh_token_uses,
        audit_log,
        email_tokens,
        notifications
    );
}

pub mod project_schema {
    diesel::table! {
        project_schema.templates (id) {
            id -> Uuid,
            slug -> Text,
            name -> Text,
            description -> Text,
            category -> Text,
            is_system -> Bool,
            author_id -> Nullable<Uuid>,
            configuration -> Jsonb,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            is_public -> Bool,
        }
    }

    diesel::table! {
        project_schema.projects (id) {
            id -> Uuid,
            owner_id -> Uuid,
            name -> Text,
            description -> Text,
            configuration -> Jsonb,
            template_id -> Nullable<Uuid>,
            is_public -> Bool,
            status -> Text,
            version -> Int4,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            tags -> Array<Text>,
            layout -> Jsonb,
            deleted_at -> Nullable<Timestamptz>,
            forked_from -> Nullable<Uuid>,
            forked_from_version -> Nullable<Int4>,
        }
    }

    diesel::table! {
        project_schema.project_sharing (id) {
            id -> Uuid,
            project_id -> Uuid,
            user_id -> Uuid,
            access_level -> Text,
            granted_by -> Uuid,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        project_schema.project_invitations (id) {
            id -> Uuid,
            project_id -> Uuid,
            email -> Text,
            access_level -> Text,
            granted_by -> Uuid,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        project_schema.project_links (id) {
            id -> Uuid,
            project_id -> Uuid,
            token_hash -> Text,
            access -> Text,
            created_by -> Uuid,
            created_at -> Timestamptz,
            expires_at -> Nullable<Timestamptz>,
            revoked_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        project_schema.project_stats (project_id) {
            project_id -> Uuid,
            views -> Int8,
            forks -> Int8,
            runs -> Int8,
        }
    }

    diesel::table! {
        project_schema.project_versions (id) {
            id -> Uuid,
            project_id -> Uuid,
            version -> Int4,
            configuration -> Jsonb,
            author_id -> Uuid,
            change_summary -> Text,
            created_at -> Timestamptz,
            layout -> Jsonb,
            named -> Bool,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        project_schema.collaboration_sessions (id) {
            id -> Uuid,
            project_id -> Uuid,
            user_id -> Uuid,
            gateway_instance -> Text,
            joined_at -> Timestamptz,
            last_seen_at -> Timestamptz,
            left_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        project_schema.collaboration_documents (project_id) {
            project_id -> Uuid,
            seq -> Int8,
            design -> Jsonb,
            layout -> Jsonb,
            based_on_version -> Int4,
            snapshot_seq -> Int8,
            editors -> Array<Uuid>,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        project_schema.collaboration_edits (project_id, seq) {
            project_id -> Uuid,
            seq -> Int8,
            user_id -> Uuid,
            client_id -> Text,
            edit_id -> Int8,
            operations -> Jsonb,
            created_at -> Timestamptz,
        }
    }

    diesel::joinable!(projects -> templates (template_id));
    diesel::joinable!(collaboration_documents -> projects (project_id));
    diesel::joinable!(collaboration_edits -> projects (project_id));
    diesel::joinable!(project_sharing -> projects (project_id));
    diesel::joinable!(project_invitations -> projects (project_id));
    diesel::joinable!(project_links -> projects (project_id));
    diesel::joinable!(project_stats -> projects (project_id));
    diesel::joinable!(project_versions -> projects (project_id));
    diesel::joinable!(collaboration_sessions -> projects (project_id));
    diesel::allow_tables_to_appear_in_same_query!(
        templates,
        projects,
        project_sharing,
        project_invitations,
        project_links,
        project_stats,
        project_versions,
        collaboration_sessions,
        collaboration_documents,
        collaboration_edits
    );
}

pub mod simulation_schema {
    diesel::table! {
        simulation_schema.simulations (id) {
            id -> Uuid,
            user_id -> Uuid,
            project_id -> Nullable<Uuid>,
            name -> Text,
            status -> Text,
            configuration -> Jsonb,
            seed -> Int8,
            duration_seconds -> Float8,
            speed -> Float8,
            progress -> Float8,
            error -> Nullable<Text>,
            created_at -> Timestamptz,
            started_at -> Nullable<Timestamptz>,
            completed_at -> Nullable<Timestamptz>,
            window_seconds -> Float8,
            injections -> Jsonb,
            owner_instance -> Nullable<Text>,
            lease_until -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        simulation_schema.simulation_results (simulation_id) {
            simulation_id -> Uuid,
            summary -> Jsonb,
            requests_simulated -> Int8,
            simulated_seconds -> Float8,
            wall_seconds -> Float8,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        simulation_schema.performance_metrics (id) {
            id -> Int8,
            simulation_id -> Uuid,
            component_id -> Text,
            window_start -> Float8,
            window_end -> Float8,
            arrivals -> Int8,
            completions -> Int8,
            drops -> Int8,
            errors -> Int8,
            utilization -> Float8,
            queue_length -> Float8,
            throughput -> Float8,
            latency_p50_ms -> Float8,
            latency_p95_ms -> Float8,
            latency_p99_ms -> Float8,
            recorded_at -> Timestamptz,
        }
    }

    diesel::table! {
        simulation_schema.simulation_windows (simulation_id, window_index) {
            simulation_id -> Uuid,
            window_index -> Int8,
            data -> Text,
        }
    }

    diesel::table! {
        simulation_schema.simulation_analytics (id) {
            id -> Uuid,
            simulation_id -> Uuid,
            kind -> Text,
            component_id -> Nullable<Text>,
            payload -> Jsonb,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        simulation_schema.simulation_history (id) {
            id -> Int8,
            user_id -> Uuid,
            simulation_id -> Uuid,
            action -> Text,
            detail -> Jsonb,
            created_at -> Timestamptz,
        }
    }

    diesel::joinable!(simulation_results -> simulations (simulation_id));
    diesel::joinable!(performance_metrics -> simulations (simulation_id));
    diesel::joinable!(simulation_windows -> simulations (simulation_id));
    diesel::joinable!(simulation_analytics -> simulations (simulation_id));
    diesel::joinable!(simulation_history -> simulations (simulation_id));
    diesel::allow_tables_to_appear_in_same_query!(
        simulations,
        simulation_results,
        performance_metrics,
        simulation_windows,
        simulation_analytics,
        simulation_history
    );
}
