//! Short links in a campaign's messages and the clicks on them.

use deadpool_postgres::Pool;

use super::{CampaignError, Invalid};
use crate::domain::clock::Clock;
use crate::store;

/// Creates a short link `/r/{code}` to `url` for a message of `account`'s campaign;
/// `article_idx` (1..=8) says which article of a multi-article send it sits in, so its clicks
/// count for that article.
///
/// # Errors
/// An unknown campaign (or another account's), a URL that is not http(s), an article index out
/// of 1..=8, or the database.
pub async fn create_link(
    pool: &Pool,
    account: crate::domain::account::AccountId,
    campaign_id: i64,
    url: &str,
    article_idx: Option<i32>,
) -> Result<String, CampaignError> {
    if article_idx.is_some_and(|i| !(1..=8).contains(&i)) {
        return Err(Invalid::ArticleIdx.into());
    }
    let parsed = url::Url::parse(url).map_err(|e| CampaignError::from(Invalid::Url(e)))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Invalid::UrlNotHttp.into());
    }
    let client = pool.get().await?;
    store::campaigns::get_campaign(&client, account, campaign_id).await?.ok_or(CampaignError::NotFound)?;
    loop {
        // 8 base62 characters: short in a message, far too many to guess.
        let code: String = {
            use rand::Rng as _;
            const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
            let mut rng = rand::thread_rng();
            (0..8).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
        };
        if store::campaigns::insert_link(&client, &code, campaign_id, parsed.as_str(), article_idx).await? {
            return Ok(code);
        }
    }
}

/// Records a click on a short link (attributed when `openid` is known) and returns where it goes.
///
/// # Errors
/// The database.
pub async fn record_click(
    pool: &Pool,
    clock: &Clock,
    code: &str,
    openid: Option<&str>,
) -> Result<Option<String>, CampaignError> {
    let client = pool.get().await?;
    let Some((campaign_id, url, _)) = store::campaigns::get_link(&client, code).await? else { return Ok(None) };
    store::campaigns::insert_click(&client, code, campaign_id, openid, clock.now()).await?;
    Ok(Some(url))
}
