//! The rules, quizzes and tag index every batch is matched against, one copy per account, held
//! in memory and reloaded only when `config_version` says another request (or another process)
//! changed them. The version is one counter for the deployment: a change in any account reloads
//! each account's copy the next time a push of that account comes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
use crate::domain::quiz::QuizSpec;
use crate::domain::rule::RuleSet;
use crate::store;

/// One consistent copy of one account's configuration.
#[derive(Debug, Default)]
pub struct Loaded {
    pub version: i64,
    pub rules: RuleSet,
    pub quizzes: HashMap<String, QuizSpec>,
    /// path → (tag id, mirrored on WeChat)
    pub tags: HashMap<String, (i64, bool)>,
    /// Tags with `when`, parsed, in id order.
    pub dynamic: Vec<crate::app::audience::DynamicTag>,
    /// The classifier that tags followers by what they write, once trained.
    pub intents: Option<crate::app::intents::IntentModel>,
}

/// Each account's configuration, as of the version it was read at.
pub type PerAccount = HashMap<AccountId, Arc<Loaded>>;

/// Shared by the writer tasks of one process.
#[derive(Debug, Default)]
pub struct ConfigCache {
    loaded: RwLock<PerAccount>,
    classifiers: crate::app::intents::ClassifierCache,
}

impl ConfigCache {
    /// The configuration of each of `accounts` as held now, with the version it was read at,
    /// without asking the database; `None` when an account's is missing or the copies were read
    /// at different versions. A decision made on it is stored only if the version is still
    /// current.
    pub fn cached(&self, accounts: &[AccountId]) -> Option<(i64, PerAccount)> {
        let loaded = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut version = None;
        let mut current = PerAccount::with_capacity(accounts.len());
        for account in accounts {
            let copy = loaded.get(account)?;
            match version {
                None => version = Some(copy.version),
                Some(v) if v != copy.version => return None,
                Some(_) => {}
            }
            current.insert(*account, Arc::clone(copy));
        }
        Some((version?, current))
    }

    /// Drops every copy: the next decision reads the configuration again.
    pub fn forget(&self) {
        self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// The current configuration of each of `accounts`: one primary-key read, plus a reload of
    /// the accounts whose copy is older.
    ///
    /// # Errors
    /// The database failed.
    pub async fn current(
        &self,
        client: &impl GenericClient,
        accounts: &[AccountId],
    ) -> Result<PerAccount, tokio_postgres::Error> {
        let version = store::tags::get_config_version(client).await?;
        let mut current = PerAccount::with_capacity(accounts.len());
        for &account in accounts {
            let cached = self
                .loaded
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&account)
                .filter(|loaded| loaded.version == version)
                .cloned();
            let loaded = match cached {
                Some(loaded) => loaded,
                None => {
                    let loaded = Arc::new(load(client, account, version, &self.classifiers).await?);
                    self.loaded
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(account, Arc::clone(&loaded));
                    tracing::info!(config.version = version, %account, "reloaded rules, quizzes and tags");
                    loaded
                }
            };
            current.insert(account, loaded);
        }
        Ok(current)
    }
}

async fn load(
    client: &impl GenericClient,
    account: AccountId,
    version: i64,
    classifiers: &crate::app::intents::ClassifierCache,
) -> Result<Loaded, tokio_postgres::Error> {
    let tags = store::tags::tag_index(client, account).await?;
    let own: HashSet<i64> = tags.values().map(|(id, _)| *id).collect();
    let mut dynamic = crate::app::audience::load_dynamic_tags(client, account).await?;
    dynamic.retain(|tag| own.contains(&tag.id));
    Ok(Loaded {
        version,
        rules: RuleSet::new(store::rules::list_rules(client, account).await?),
        quizzes: store::quizzes::list_quizzes(client, account).await?,
        tags,
        dynamic,
        intents: crate::app::intents::load_model_cached(client, account, classifiers).await?,
    })
}
