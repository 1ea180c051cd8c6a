//! The rules, quizzes and tag index every batch is matched against, held in memory and reloaded
//! only when `config_version` says another request (or another process) changed them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use deadpool_postgres::GenericClient;

use crate::domain::quiz::QuizSpec;
use crate::domain::rule::RuleSet;
use crate::store;

/// One consistent copy of the configuration.
#[derive(Debug, Default)]
pub struct Loaded {
    pub version: i64,
    pub rules: RuleSet,
    pub quizzes: HashMap<String, QuizSpec>,
    /// path → (tag id, mirrored on WeChat)
    pub tags: HashMap<String, (i64, bool)>,
    /// Tags with `when`, parsed, in id order.
    pub dynamic: Vec<crate::app::audience::DynamicTag>,
}

/// Shared by the writer tasks of one process.
#[derive(Debug, Default)]
pub struct ConfigCache {
    loaded: RwLock<Arc<Loaded>>,
}

impl ConfigCache {
    /// The current configuration: one primary-key read, plus a reload when it changed.
    ///
    /// # Errors
    /// The database failed.
    pub async fn current(&self, client: &impl GenericClient) -> Result<Arc<Loaded>, tokio_postgres::Error> {
        let version = store::tags::get_config_version(client).await?;
        let cached = Arc::clone(&self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner));
        if cached.version == version {
            return Ok(cached);
        }
        let loaded = Arc::new(Loaded {
            version,
            rules: RuleSet::new(store::rules::list_rules(client).await?),
            quizzes: store::quizzes::list_quizzes(client).await?,
            tags: store::tags::tag_index(client).await?,
            dynamic: crate::app::audience::load_dynamic_tags(client, crate::domain::account::AccountId::UNSCOPED)
                .await?,
        });
        *self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&loaded);
        tracing::info!(config.version = version, "reloaded rules, quizzes and tags");
        Ok(loaded)
    }
}
