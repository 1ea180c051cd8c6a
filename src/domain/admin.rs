//! The people who run the account: roles and what each may do.

use serde::{Deserialize, Serialize};

/// What an admin user may do. The JSON API's bearer token acts as user `api` with [`AdminRole::Admin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    /// Everything, including managing admin users.
    Admin,
    /// An operator who may also approve sends that touch sensitive tags.
    Approver,
    /// Runs tags, rules, segments and campaigns; cannot approve or manage users.
    Operator,
}

impl AdminRole {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "approver" => Some(Self::Approver),
            "operator" => Some(Self::Operator),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Approver => "approver",
            Self::Operator => "operator",
        }
    }

    /// 管理员 / 审批人 / 运营: how the admin page names the role.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Admin => "管理员",
            Self::Approver => "审批人",
            Self::Operator => "运营",
        }
    }

    pub fn may_approve(self) -> bool {
        matches!(self, Self::Admin | Self::Approver)
    }

    pub fn may_manage_admins(self) -> bool {
        self == Self::Admin
    }

    /// Marking a tag sensitive (or not) decides which sends need a second person, so only
    /// admins do it (issue 15): an operator who could unmark a tag could skip approval.
    pub fn may_change_sensitivity(self) -> bool {
        self == Self::Admin
    }
}

/// The audit log's actor for the JSON API's bearer token.
pub const API_ACTOR: &str = "api";
/// The audit log's actor for what tagcast does by itself (the start-up admin).
pub const SYSTEM_ACTOR: &str = "system";
/// The audit log's actor for playbooks applied at start or by the CLI.
pub const PLAYBOOK_ACTOR: &str = "playbook";
/// The audit log's actor for the campaign send job (an approval that lapsed when it fired).
pub const SEND_JOB_ACTOR: &str = "send_campaign";

/// Names no admin user may take: the audit log's machine actors (and two kept for ones to come),
/// so an entry's actor always says whether a person or tagcast itself acted.
pub const RESERVED_USERNAMES: [&str; 6] = [API_ACTOR, SYSTEM_ACTOR, PLAYBOOK_ACTOR, SEND_JOB_ACTOR, "demo", "worker"];

/// Whether `username` is a machine actor's name, in any letter case.
pub fn is_reserved(username: &str) -> bool {
    RESERVED_USERNAMES.iter().any(|r| r.eq_ignore_ascii_case(username.trim()))
}

/// Passwords shorter than this are refused (NIST SP 800-63B's floor).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Longest accepted username, in bytes (they are ASCII).
pub const MAX_USERNAME_BYTES: usize = 64;
/// Longest accepted password, in bytes, so hashing cannot be made slow on purpose.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a new admin user was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewAdminError {
    /// Empty, too long, or a character outside a–z, 0–9, `_`, `-`, `.`, `@`.
    #[error("username: 1–{MAX_USERNAME_BYTES} characters of a–z, 0–9, `_`, `-`, `.`, `@`")]
    BadUsername { username: String },
    /// One of [`RESERVED_USERNAMES`], in any letter case.
    #[error(
        "username: `{username}` is reserved for what tagcast records as machine actors ({}); choose another",
        RESERVED_USERNAMES.join(", ")
    )]
    ReservedUsername { username: String },
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters; `chars` is how many it had.
    #[error("password: at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort { chars: usize },
    /// More than [`MAX_PASSWORD_BYTES`]; `bytes` is how many it had.
    #[error("password: at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong { bytes: usize },
}

/// Why a new admin user was refused.
///
/// # Errors
/// [`NewAdminError`]: the username or the password, the username first.
pub fn check_new_admin(username: &str, password: &str) -> Result<(), NewAdminError> {
    let valid_name = !username.is_empty()
        && username.len() <= MAX_USERNAME_BYTES
        && username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if !valid_name {
        return Err(NewAdminError::BadUsername { username: username.to_owned() });
    }
    if is_reserved(username) {
        return Err(NewAdminError::ReservedUsername { username: username.to_owned() });
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(NewAdminError::PasswordTooShort { chars });
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(NewAdminError::PasswordTooLong { bytes: password.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_only_admins_and_approvers_approve() {
        for role in [AdminRole::Admin, AdminRole::Approver, AdminRole::Operator] {
            assert_eq!(AdminRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(AdminRole::parse("root"), None);
        assert!(AdminRole::Approver.may_approve());
        assert!(!AdminRole::Operator.may_approve());
        assert!(!AdminRole::Approver.may_manage_admins());
    }

    #[test]
    fn new_admins_need_a_plain_name_and_a_real_password() {
        assert!(check_new_admin("alice", "correct horse").is_ok());
        assert_eq!(check_new_admin("", "correct horse"), Err(NewAdminError::BadUsername { username: String::new() }));
        assert_eq!(check_new_admin("a b", "correct horse"), Err(NewAdminError::BadUsername { username: "a b".into() }));
        assert_eq!(check_new_admin("alice", "short"), Err(NewAdminError::PasswordTooShort { chars: 5 }));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(check_new_admin("alice", &long), Err(NewAdminError::PasswordTooLong { bytes: 1025 }));
        // Eight Chinese characters are eight characters, not 24 bytes' worth of length check.
        assert!(check_new_admin("alice", "八个汉字的密码啊").is_ok());
        for reserved in ["api", "API", "system", "playbook", "Demo", "worker"] {
            let error = check_new_admin(reserved, "correct horse").expect_err(reserved);
            assert_eq!(error, NewAdminError::ReservedUsername { username: reserved.to_owned() });
            assert!(error.to_string().contains("reserved"), "{error}");
        }
        assert!(check_new_admin("api2", "correct horse").is_ok());
    }

    #[test]
    fn new_admin_errors_read_as_before() {
        let text = |username: &str, password: &str| check_new_admin(username, password).unwrap_err().to_string();
        assert_eq!(text("a b", "correct horse"), "username: 1–64 characters of a–z, 0–9, `_`, `-`, `.`, `@`");
        assert_eq!(
            text("api", "correct horse"),
            "username: `api` is reserved for what tagcast records as machine actors \
             (api, system, playbook, send_campaign, demo, worker); choose another"
        );
        assert_eq!(text("alice", "short"), "password: at least 8 characters");
        assert_eq!(text("alice", &"x".repeat(2000)), "password: at most 1024 bytes");
    }
}
