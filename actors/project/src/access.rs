//! Who may do what with a project: one table, tested as one table.
//!
//! A project someone may not see answers "not found", never "forbidden", so ids cannot be
//! probed; someone who may see it but not do this gets "forbidden".

use sdsim_runtime::error::ServiceError;

/// What a person is to a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Editor,
    Viewer,
    /// Anyone, for a public project.
    Public,
    /// Holds `admin:projects` (moderation), without a share.
    Admin,
    Stranger,
}

/// What a person may try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The project, its design, its versions and diffs.
    Read,
    /// Name, description, tags, design, layout; rollback.
    Edit,
    /// Visibility (public or private).
    SetVisibility,
    /// Move to the trash, restore from it, purge it.
    Delete,
    /// Who has what.
    ReadPermissions,
    /// Share with people, change or end their access, hand ownership over.
    Share,
}

/// `ALLOWED[op][role]`, roles in the order Owner, Editor, Viewer, Public, Admin, Stranger.
const ALLOWED: [(Op, [bool; 6]); 6] = [
    (Op::Read, [true, true, true, true, true, false]),
    (Op::Edit, [true, true, false, false, false, false]),
    (Op::SetVisibility, [true, false, false, false, false, false]),
    (Op::Delete, [true, false, false, false, true, false]),
    (Op::ReadPermissions, [true, true, true, false, true, false]),
    (Op::Share, [true, false, false, false, false, false]),
];

fn column(role: Role) -> usize {
    match role {
        Role::Owner => 0,
        Role::Editor => 1,
        Role::Viewer => 2,
        Role::Public => 3,
        Role::Admin => 4,
        Role::Stranger => 5,
    }
}

/// Whether `role` may do `op`.
pub fn allowed(role: Role, op: Op) -> bool {
    ALLOWED
        .iter()
        .find(|(o, _)| *o == op)
        .is_some_and(|(_, roles)| roles[column(role)])
}

/// Whether `role` may see the project at all (else it does not exist for them).
pub fn visible(role: Role) -> bool {
    allowed(role, Op::Read)
}

/// `Ok` when `role` may do `op` on project `id`; not found when it may not even see it.
pub fn check(role: Role, op: Op, id: &str) -> Result<(), ServiceError> {
    if !visible(role) {
        return Err(not_found(id));
    }
    if !allowed(role, op) {
        return Err(ServiceError::Forbidden(format!(
            "your access to project {id} does not allow this ({})",
            match op {
                Op::Read => "reading",
                Op::Edit => "editing: you can view it; ask its owner for editor access",
                Op::SetVisibility => "changing its visibility: only its owner can",
                Op::Delete => "deleting: only its owner can",
                Op::ReadPermissions => "seeing who has access",
                Op::Share => "sharing: only its owner can",
            }
        )));
    }
    Ok(())
}

pub fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no project {id}"))
}

/// The access level a role shows as.
pub fn level(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Editor => "editor",
        Role::Viewer | Role::Public | Role::Admin => "viewer",
        Role::Stranger => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_says_who_may_do_what() {
        use Role::*;
        // (op, who may) for every op; everyone else may not.
        let expect: [(Op, &[Role]); 6] = [
            (Op::Read, &[Owner, Editor, Viewer, Public, Admin]),
            (Op::Edit, &[Owner, Editor]),
            (Op::SetVisibility, &[Owner]),
            (Op::Delete, &[Owner, Admin]),
            (Op::ReadPermissions, &[Owner, Editor, Viewer, Admin]),
            (Op::Share, &[Owner]),
        ];
        for (op, who) in expect {
            for role in [Owner, Editor, Viewer, Public, Admin, Stranger] {
                assert_eq!(allowed(role, op), who.contains(&role), "{role:?} {op:?}");
            }
        }
    }

    #[test]
    fn strangers_get_not_found_and_viewers_forbidden() {
        assert!(matches!(
            check(Role::Stranger, Op::Edit, "p"),
            Err(ServiceError::NotFound(_))
        ));
        assert!(matches!(
            check(Role::Viewer, Op::Edit, "p"),
            Err(ServiceError::Forbidden(_))
        ));
        assert!(check(Role::Editor, Op::Edit, "p").is_ok());
    }
}
