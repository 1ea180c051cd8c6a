//! The tags a campaign's audience names and the subscribed followers a tag, or everyone, reaches.

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// (tag id, path, sensitive, WeChat tag id) of the tags of `account` with these paths.
pub async fn find_tags(
    client: &impl GenericClient,
    account: AccountId,
    paths: &[&str],
) -> Result<Vec<(i64, String, bool, Option<i64>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, path, sensitive, wechat_tag_id FROM tags WHERE path = ANY($1::text[]) AND account_id = $2
             ORDER BY id",
            &[&paths, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}

/// Subscribed members of a tag of `account`, in openid order.
pub async fn list_tag_members(
    client: &impl GenericClient,
    account: AccountId,
    tag_id: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            concat!(
                "SELECT ft.openid FROM follower_tags ft JOIN followers f ON f.openid = ft.openid AND f.account_id = $2 AND f.subscribed
                 WHERE ft.tag_id = $1 AND ",
                not_test_follower!("ft.openid"),
                " ORDER BY ft.openid"
            ),
            &[&tag_id, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Every subscribed follower of `account`, in openid order.
pub async fn list_subscribed(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            concat!(
                "SELECT openid FROM followers WHERE account_id = $1 AND subscribed AND ",
                not_test_follower!("openid"),
                " ORDER BY openid"
            ),
            &[&account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
