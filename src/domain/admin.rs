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

/// Longest accepted username, in bytes (a Chinese character takes 3).
pub const MAX_USERNAME_BYTES: usize = 64;
/// Longest accepted username, in characters.
pub const MAX_USERNAME_CHARS: usize = 20;
/// Longest accepted password, in bytes, so hashing cannot be made slow on purpose.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A login name as stored and looked up: trimmed and in Unicode NFC, so the same name typed
/// on two keyboards (composed or decomposed, a CJK compatibility ideograph) is one name.
#[must_use]
pub fn normalize_username(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    raw.trim().nfc().collect()
}

/// Whether `c` may be part of a login name: ASCII letters and digits, `_ - . @`, and Chinese
/// characters (CJK unified ideographs and extension A). No space of any kind, no control or
/// invisible character, and no other script, so two names that look alike are the same name
/// (Cyrillic `а` and Latin `a` never meet in a login name).
fn username_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '@')
        || matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

/// Why a new admin user was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewAdminError {
    /// Empty, too long, not NFC, or a character [`username_char`] refuses.
    #[error(
        "用户名需 1–{MAX_USERNAME_CHARS} 个汉字或 1–{MAX_USERNAME_BYTES} 个英文字符，只能用汉字、英文字母、数字和 _ - . @，不能有空格或其他符号"
    )]
    BadUsername { username: String },
    /// One of [`RESERVED_USERNAMES`], in any letter case.
    #[error(
        "用户名「{username}」是保留名（审计日志用 {} 记录系统自身的操作），请换一个用户名",
        RESERVED_USERNAMES.join("、")
    )]
    ReservedUsername { username: String },
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters; `chars` is how many it had.
    #[error("密码至少 {MIN_PASSWORD_CHARS} 个字符")]
    PasswordTooShort { chars: usize },
    /// More than [`MAX_PASSWORD_BYTES`]; `bytes` is how many it had.
    #[error("密码最多 {MAX_PASSWORD_BYTES} 字节")]
    PasswordTooLong { bytes: usize },
}

/// Why a new admin user was refused. `username` must already be [`normalize_username`]d: a
/// name that is not is refused, so what is stored is what sign-in looks up.
///
/// # Errors
/// [`NewAdminError`]: the username or the password, the username first.
pub fn check_new_admin(username: &str, password: &str) -> Result<(), NewAdminError> {
    let valid_name = !username.is_empty()
        && username.len() <= MAX_USERNAME_BYTES
        && (username.is_ascii() || username.chars().count() <= MAX_USERNAME_CHARS)
        && username.chars().all(username_char)
        && normalize_username(username) == username;
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
            assert!(error.to_string().contains("保留名"), "{error}");
        }
        assert!(check_new_admin("api2", "correct horse").is_ok());
    }

    #[test]
    fn new_admin_errors_read_in_chinese() {
        let text = |username: &str, password: &str| check_new_admin(username, password).unwrap_err().to_string();
        assert!(text("a b", "correct horse").starts_with("用户名需 1–20 个汉字或 1–64 个英文字符"));
        assert_eq!(
            text("api", "correct horse"),
            "用户名「api」是保留名（审计日志用 api、system、playbook、send_campaign、demo、worker 记录系统自身的操作），请换一个用户名"
        );
        assert_eq!(text("alice", "short"), "密码至少 8 个字符");
        assert_eq!(text("alice", &"x".repeat(2000)), "密码最多 1024 字节");
    }

    #[test]
    fn chinese_login_names_are_allowed_and_lookalikes_are_not() {
        assert!(check_new_admin("小王", "correct horse").is_ok());
        assert!(check_new_admin("运营-李明", "correct horse").is_ok());
        assert!(check_new_admin(&"王".repeat(MAX_USERNAME_CHARS), "correct horse").is_ok());
        assert!(check_new_admin(&"王".repeat(MAX_USERNAME_CHARS + 1), "correct horse").is_err());
        assert!(check_new_admin(&"a".repeat(MAX_USERNAME_BYTES), "correct horse").is_ok(), "ASCII keeps 64");
        // Full-width space, zero-width space, a control character, Cyrillic а, full-width ａ.
        for bad in ["小\u{3000}王", "小\u{200b}王", "小\u{7}王", "\u{430}lice", "\u{ff41}lice", " 小王"] {
            assert!(check_new_admin(bad, "correct horse").is_err(), "{bad:?}");
        }
        // A CJK compatibility ideograph becomes its unified form when normalised.
        assert_eq!(normalize_username(" \u{f900} "), "\u{8c48}");
    }
}
