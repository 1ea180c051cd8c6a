//! Statistics (数据统计, `datacube`): daily figures the data board shows. Each call takes a date
//! span (a few days at most) ending yesterday at the latest.

use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{ApiClient, WeChatError};

/// New and lost followers per day and source (`getusersummary`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserSummaryRow {
    pub ref_date: String,
    #[serde(default)]
    pub user_source: i64,
    #[serde(default)]
    pub new_user: i64,
    #[serde(default)]
    pub cancel_user: i64,
}

/// Followers in total per day (`getusercumulate`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserCumulateRow {
    pub ref_date: String,
    #[serde(default)]
    pub cumulate_user: i64,
}

/// Messages followers sent per day (`getupstreammsg`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UpstreamMsgRow {
    pub ref_date: String,
    #[serde(default)]
    pub msg_type: i64,
    #[serde(default)]
    pub msg_user: i64,
    #[serde(default)]
    pub msg_count: i64,
}

/// One published content's totals (`getarticletotaldetail`): `msgid` is `<msg_data_id>_<index>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ArticleTotalRow {
    #[serde(default)]
    pub ref_date: Option<String>,
    pub msgid: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail_list: Vec<ArticleDayDetail>,
}

/// One day of an article's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ArticleDayDetail {
    #[serde(default)]
    pub stat_date: Option<String>,
    #[serde(default)]
    pub read_user: i64,
    #[serde(default)]
    pub share_user: i64,
    #[serde(default)]
    pub add_to_fav_user: i64,
}

/// Reads, shares and favourites per content per day (`getarticleread`, `getarticleshare`,
/// the older `getarticlesummary`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "RawArticleDayRow")]
pub struct ArticleDayRow {
    pub ref_date: Option<String>,
    pub msgid: Option<String>,
    pub title: Option<String>,
    pub read_user: i64,
    pub share_user: i64,
    pub add_to_fav_user: i64,
}

/// The two shapes of a row: the older calls put the figures at the top (`int_page_read_user`),
/// the newer `getarticleread` / `getarticleshare` nest them in `detail`.
#[derive(Deserialize)]
struct RawArticleDayRow {
    #[serde(default)]
    ref_date: Option<String>,
    #[serde(default)]
    msgid: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default, alias = "int_page_read_user")]
    read_user: i64,
    #[serde(default)]
    share_user: i64,
    #[serde(default)]
    add_to_fav_user: i64,
    #[serde(default)]
    detail: Option<NestedFigures>,
}

#[derive(Deserialize)]
struct NestedFigures {
    #[serde(default)]
    read_user: Option<i64>,
    #[serde(default)]
    share_user: Option<i64>,
}

impl From<RawArticleDayRow> for ArticleDayRow {
    fn from(raw: RawArticleDayRow) -> Self {
        let detail = raw.detail.unwrap_or(NestedFigures { read_user: None, share_user: None });
        Self {
            ref_date: raw.ref_date,
            msgid: raw.msgid,
            title: raw.title,
            read_user: detail.read_user.unwrap_or(raw.read_user),
            share_user: detail.share_user.unwrap_or(raw.share_user),
            add_to_fav_user: raw.add_to_fav_user,
        }
    }
}

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct ListAnswer<T> {
    #[serde(default = "Vec::new")]
    list: Vec<T>,
}

impl ApiClient {
    async fn datacube<T: DeserializeOwned>(
        &self,
        call: &str,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<T>, WeChatError> {
        let body = json!({ "begin_date": begin.format("%Y-%m-%d").to_string(), "end_date": end.format("%Y-%m-%d").to_string() });
        let answer: ListAnswer<T> = self.post(&format!("/datacube/{call}"), &body).await?;
        Ok(answer.list)
    }

    /// `getusersummary` (span ≤ 7 days).
    ///
    /// # Errors
    /// Any [`WeChatError`]; 61500/61501 for a span WeChat refuses.
    pub async fn user_summary(&self, begin: NaiveDate, end: NaiveDate) -> Result<Vec<UserSummaryRow>, WeChatError> {
        self.datacube("getusersummary", begin, end).await
    }

    /// `getusercumulate` (span ≤ 7 days).
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn user_cumulate(&self, begin: NaiveDate, end: NaiveDate) -> Result<Vec<UserCumulateRow>, WeChatError> {
        self.datacube("getusercumulate", begin, end).await
    }

    /// `getupstreammsg`.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn upstream_messages(
        &self,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<UpstreamMsgRow>, WeChatError> {
        self.datacube("getupstreammsg", begin, end).await
    }

    /// `getarticletotaldetail`: totals per published content.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn article_totals(&self, begin: NaiveDate, end: NaiveDate) -> Result<Vec<ArticleTotalRow>, WeChatError> {
        self.datacube("getarticletotaldetail", begin, end).await
    }

    /// `getarticleread`: reads per content per day.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn article_reads(&self, begin: NaiveDate, end: NaiveDate) -> Result<Vec<ArticleDayRow>, WeChatError> {
        self.datacube("getarticleread", begin, end).await
    }

    /// `getarticleshare`: shares per content per day.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn article_shares(&self, begin: NaiveDate, end: NaiveDate) -> Result<Vec<ArticleDayRow>, WeChatError> {
        self.datacube("getarticleshare", begin, end).await
    }

    /// `getarticlesummary` (older): reads, shares and favourites per content per day.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn article_summaries(&self, begin: NaiveDate, end: NaiveDate) -> Result<Vec<ArticleDayRow>, WeChatError> {
        self.datacube("getarticlesummary", begin, end).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn article_rows_read_the_figures_at_the_top_and_nested_in_detail() {
        let old: ArticleDayRow =
            serde_json::from_str(r#"{"ref_date":"2026-11-01","msgid":"7_1","int_page_read_user":40,"share_user":3}"#)
                .unwrap();
        assert_eq!((old.read_user, old.share_user), (40, 3));
        let reads: ArticleDayRow = serde_json::from_str(
            r#"{"ref_date":"2026-11-01","msgid":"7_1","detail":{"read_user":12,"read_user_source":[]}}"#,
        )
        .unwrap();
        assert_eq!((reads.msgid.as_deref(), reads.read_user), (Some("7_1"), 12));
        let shares: ArticleDayRow =
            serde_json::from_str(r#"{"msgid":"7_1","detail":{"share_user":5,"share_user_source":[]}}"#).unwrap();
        assert_eq!((shares.read_user, shares.share_user), (0, 5));
    }
}
