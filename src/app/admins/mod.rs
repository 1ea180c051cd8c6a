//! Admin users: creating them (with the audit entry), the start-up admin of
//! `TAGCAST_ADMIN_PASSWORD`, and checking a username and password.
//!
//! Passwords are hashed with argon2id (OWASP's parameters: 19 MiB, 2 passes). A check costs
//! tens of milliseconds of CPU, so it runs off the async threads, and a successful check is
//! remembered for a minute keyed by a per-process keyed hash of the password: HTTP Basic
//! callers of the API pay the hash once a minute, not on every request.
//!
//! Every attempt, from the login page or HTTP Basic, goes through [`Authenticator::sign_in`]:
//! one throttle per (username, client address) pair and one bound on the checks running at
//! once ([`gate`]), so neither entrance is cheaper to attack than the other.

mod gate;
mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use blake2::{Blake2b512, Digest};
use deadpool_postgres::{GenericClient, Pool};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::domain::account::AccountId;
use crate::domain::admin::{self, AdminRole};
use crate::store;

pub use gate::{GateSettings, PasswordMetrics};
pub use throttle::{LOCKOUT, MAX_FAILURES};

use gate::PasswordGate;
use throttle::LoginThrottle;

/// How long a verified password is trusted without hashing it again. A changed password or a
/// disabled user takes effect at once in this process, and within this long in the others.
const VERIFIED_FOR: Duration = Duration::from_secs(60);

/// Why an admin user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(#[source] crate::domain::admin::NewAdminError),
    #[error("a user named `{0}` exists")]
    Exists(String),
    #[error("hashing the password failed")]
    Hash,
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP's argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An argon2id PHC string for `password`, computed off the async threads.
pub async fn hash_password(password: &str) -> Result<String, AccountError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|_| AccountError::Hash)?;
        hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|_| AccountError::Hash)
    })
    .await
    .map_err(|_| AccountError::Hash)?
}

fn verify_hash(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A user to create: a deployment admin, who holds every account and manages accounts and users,
/// or a user holding the accounts of `roles`.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub deployment_admin: bool,
    pub roles: Vec<(AccountId, AdminRole)>,
}

/// What `admins.role` says of a user: `admin` only for the deployment admin. The previous release
/// reads it as the one role (during a rolling upgrade only the first account exists), so it is the
/// role on the first account, capped below admin.
fn stored_role(deployment_admin: bool, roles: &[(AccountId, AdminRole)]) -> AdminRole {
    if deployment_admin {
        return AdminRole::Admin;
    }
    match roles.iter().find(|(a, _)| *a == AccountId::FIRST) {
        Some((_, AdminRole::Approver | AdminRole::Admin)) => AdminRole::Approver,
        _ => AdminRole::Operator,
    }
}

/// Creates an admin user with their roles and records who did it, in one transaction.
pub async fn create_admin(pool: &Pool, user: &NewUser<'_>, created_by: &str) -> Result<i64, AccountError> {
    admin::check_new_admin(user.username, user.password).map_err(AccountError::Invalid)?;
    let hash = hash_password(user.password).await?;
    let role = stored_role(user.deployment_admin, &user.roles);
    // A deployment admin is listed as admin of the first account too, as V22 lists existing admins.
    let roles = if user.deployment_admin { vec![(AccountId::FIRST, AdminRole::Admin)] } else { user.roles.clone() };
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let id = store::admins::insert_admin(&tx, user.username, &hash, role, created_by)
        .await?
        .ok_or_else(|| AccountError::Exists(user.username.to_owned()))?;
    store::admins::set_roles(&tx, id, &roles).await?;
    store::audit::record(
        &tx,
        None,
        created_by,
        "create",
        "admin",
        user.username,
        &serde_json::json!({ "role": role.as_str(), "roles": roles_json(&roles) }),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

fn roles_json(roles: &[(AccountId, AdminRole)]) -> serde_json::Value {
    roles.iter().map(|(a, r)| (a.get().to_string(), serde_json::Value::from(r.as_str()))).collect()
}

/// Replaces a user's roles per account (a deployment admin's act); when anything changed, ends
/// the user's sessions (the trigger on `admin_roles`) and is audited. `None` when there is no
/// such user.
pub async fn set_roles(
    pool: &Pool,
    username: &str,
    roles: &[(AccountId, AdminRole)],
    by: &str,
) -> Result<Option<()>, AccountError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(row) = store::admins::find_by_username(&tx, username).await? else { return Ok(None) };
    if !store::admins::set_roles(&tx, row.id, roles).await? {
        return Ok(Some(()));
    }
    if row.role != AdminRole::Admin {
        store::admins::set_role(&tx, row.id, stored_role(false, roles)).await?;
    }
    store::audit::record(
        &tx,
        None,
        by,
        "set_roles",
        "admin",
        username,
        &serde_json::json!({ "roles": roles_json(roles) }),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(()))
}

/// What a signed-in user holds: every account as admin for a deployment admin, else the accounts
/// listed in `admin_roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdings {
    pub deployment_admin: bool,
    pub roles: Vec<(AccountId, AdminRole)>,
}

impl Holdings {
    /// The user's role on `account`, `None` when they do not hold it.
    pub fn role_on(&self, account: AccountId) -> Option<AdminRole> {
        if self.deployment_admin {
            return Some(AdminRole::Admin);
        }
        self.roles.iter().find(|(a, _)| *a == account).map(|(_, r)| *r)
    }

    /// The live accounts the user holds, with their role on each, the first account first.
    pub fn accounts(
        &self,
        registry: &crate::app::accounts::Accounts,
    ) -> Vec<(Arc<crate::app::accounts::LiveAccount>, AdminRole)> {
        registry.all().into_iter().filter_map(|a| self.role_on(a.id).map(|r| (a, r))).collect()
    }
}

/// `TAGCAST_ADMIN_PASSWORD`: creates user `admin` with that password unless an admin exists.
/// Returns whether it created one.
pub async fn ensure_start_admin(pool: &Pool, username: &str, password: &str) -> Result<bool, AccountError> {
    if store::admins::admin_exists(&pool.get().await?).await? {
        return Ok(false);
    }
    let user = NewUser { username, password, deployment_admin: true, roles: Vec::new() };
    match create_admin(pool, &user, admin::SYSTEM_ACTOR).await {
        Ok(_) => Ok(true),
        // Another instance starting at the same moment created it.
        Err(AccountError::Exists(_)) => Ok(false),
        Err(error) => Err(error),
    }
}

/// A signed-in admin user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub username: String,
    pub role: AdminRole,
}

/// What became of a sign-in attempt (login page or HTTP Basic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    Ok(Admin),
    /// Wrong password, unknown or disabled user (indistinguishable on purpose); `locked` when
    /// this failure locked the (username, address) pair.
    Wrong {
        locked: bool,
    },
    /// The pair is locked out; the password was not checked.
    Locked {
        retry_after: Duration,
    },
    /// No password check was free (too many at once, or the per-second cap for unknown names).
    Busy {
        retry_after: Duration,
    },
}

struct Verified {
    password_digest: [u8; 64],
    role: AdminRole,
    at: Instant,
}

/// Checks usernames and passwords against `admins`: remembers recent successes, throttles
/// failures per (username, address) and bounds the argon2id checks running at once.
#[derive(Clone)]
pub struct Authenticator {
    key: Arc<[u8; 32]>,
    verified: Arc<Mutex<HashMap<String, Verified>>>,
    throttle: Arc<LoginThrottle>,
    gate: Arc<PasswordGate>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new(GateSettings::default(), PasswordMetrics::default())
    }
}

impl Authenticator {
    pub fn new(gate: GateSettings, metrics: PasswordMetrics) -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self {
            key: Arc::new(key),
            verified: Arc::default(),
            throttle: Arc::default(),
            gate: Arc::new(PasswordGate::new(gate, metrics)),
        }
    }

    fn digest(&self, password: &str) -> [u8; 64] {
        let mut hasher = Blake2b512::new();
        hasher.update(*self.key);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    /// Signs `username` in from `ip` (the client address, see [`crate::web::client_addr`]) when the
    /// password is theirs, the account is enabled, the pair is not locked out and a check is free.
    ///
    /// # Errors
    /// The database failed.
    pub async fn sign_in(
        &self,
        pool: &Pool,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<SignIn, AccountError> {
        // Reserved before anything is checked: parallel attempts count as they start.
        let attempt = match self.throttle.reserve(username, ip) {
            Ok(attempt) => attempt,
            Err(retry_after) => return Ok(SignIn::Locked { retry_after }),
        };
        let digest = self.digest(password);
        {
            let verified = self.verified.lock().expect("no panics while holding the lock");
            if let Some(v) = verified.get(username) {
                if v.at.elapsed() < VERIFIED_FOR && bool::from(v.password_digest.ct_eq(&digest)) {
                    return Ok(SignIn::Ok(Admin { username: username.to_owned(), role: v.role }));
                }
            }
        }
        // The connection goes back before any waiting: a flood of attempts must not hold the pool.
        let row = store::admins::find_by_username(&pool.get().await?, username).await?;
        let known = row.is_some();
        if known {
            let delay = self.throttle.username_delay(username);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
        // An unknown name is hashed too, under the same permit, so it takes as long as a wrong password.
        let phc = row.as_ref().map_or_else(|| DUMMY_HASH.to_owned(), |r| r.password_hash.clone());
        let password_owned = password.to_owned();
        let matches = match self.gate.run(known, move || verify_hash(&password_owned, &phc)).await {
            Ok(matches) => matches,
            Err(busy) => return Ok(SignIn::Busy { retry_after: busy.retry_after }),
        };
        let row = match row {
            Some(row) if matches && !row.disabled => row,
            _ => return Ok(SignIn::Wrong { locked: attempt.failed(known) }),
        };
        attempt.succeeded();
        self.verified
            .lock()
            .expect("no panics while holding the lock")
            .insert(username.to_owned(), Verified { password_digest: digest, role: row.role, at: Instant::now() });
        Ok(SignIn::Ok(Admin { username: row.username, role: row.role }))
    }

    /// Forgets what was verified for `username` (password changed, user disabled).
    pub fn forget(&self, username: &str) {
        self.verified.lock().expect("no panics while holding the lock").remove(username);
    }

    /// How many password checks run now (tests read it while attacking).
    pub fn checks_running(&self) -> i64 {
        self.gate.running()
    }
}

/// The hash of a random password, verified against when the username is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0gqBoUtvFJZy2mH3vc0hmf9y1kLwVPFGH2zIQvVcZ1o";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash_so_unknown_names_cost_a_full_check() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("parses");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert!(!verify_hash("anything", DUMMY_HASH));
    }

    #[tokio::test]
    async fn hashes_verify_their_password_only() {
        let phc = hash_password("correct horse").await.expect("hashes");
        assert!(verify_hash("correct horse", &phc));
        assert!(!verify_hash("correct horsf", &phc));
    }
}
