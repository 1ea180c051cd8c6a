//! `tags` and `follower_tags`: local tags, who carries them, and (through `tag_outbox`) what
//! WeChat must learn. A tag change and its outbox row are written by the same statement batch in
//! the caller's transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
use crate::domain::tag::TagPath;

/// A tag as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub id: i64,
    pub path: String,
    pub description: String,
    pub sensitive: bool,
    pub when_expr: Option<String>,
    pub mirrored: bool,
    pub wechat_tag_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Followers carrying it (only filled by [`list_tags`]).
    pub members: i64,
}

const COLUMNS: &str = "t.id, t.path, t.description, t.sensitive, t.when_expr, t.mirrored, t.wechat_tag_id, t.created_at, t.created_by, t.last_used_at";

fn tag_from_row(row: &tokio_postgres::Row, members: i64) -> TagRow {
    TagRow {
        id: row.get(0),
        path: row.get(1),
        description: row.get(2),
        sensitive: row.get(3),
        when_expr: row.get(4),
        mirrored: row.get(5),
        wechat_tag_id: row.get(6),
        created_at: row.get(7),
        created_by: row.get(8),
        last_used_at: row.get(9),
        members,
    }
}

/// A tag to create.
#[derive(Debug, Clone)]
pub struct NewTag<'a> {
    pub path: &'a TagPath,
    pub description: &'a str,
    pub sensitive: bool,
    pub mirrored: bool,
    pub when_expr: Option<&'a str>,
    pub created_by: &'a str,
}

/// Inserts a tag; `None` when the path exists already.
pub async fn insert_tag(
    client: &impl GenericClient,
    account: AccountId,
    tag: &NewTag<'_>,
) -> Result<Option<TagRow>, tokio_postgres::Error> {
    let sql = format!(
        "INSERT INTO tags AS t (path, description, sensitive, mirrored, when_expr, created_by, account_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account_id, path) DO NOTHING RETURNING {COLUMNS}"
    );
    let row = client
        .query_opt(
            &sql,
            &[
                &tag.path.as_str(),
                &tag.description,
                &tag.sensitive,
                &tag.mirrored,
                &tag.when_expr,
                &tag.created_by,
                &account.get(),
            ],
        )
        .await?;
    if row.is_some() {
        bump_config_version(client).await?;
    }
    Ok(row.map(|r| tag_from_row(&r, 0)))
}

/// Every tag with its member count, by path.
pub async fn list_tags(client: &impl GenericClient, account: AccountId) -> Result<Vec<TagRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, coalesce(m.members, 0) FROM tags t
         LEFT JOIN (SELECT tag_id, count(*) AS members FROM follower_tags GROUP BY tag_id) m ON m.tag_id = t.id
         WHERE t.account_id = $1
         ORDER BY t.path"
    );
    Ok(client.query(&sql, &[&account.get()]).await?.iter().map(|r| tag_from_row(r, r.get(10))).collect())
}

/// Every tag by path, without member counts (`members` is 0): cheap at any number of followers.
pub async fn list_tag_rows(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<TagRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM tags t WHERE t.account_id = $1 ORDER BY t.path");
    Ok(client.query(&sql, &[&account.get()]).await?.iter().map(|r| tag_from_row(r, 0)).collect())
}

/// Followers per tag id, for tags that have any, in every account (a tag id names one account's
/// tag, so whoever lists an account's tags picks its counts from this). A pass over
/// `follower_tags`: callers cache it.
pub async fn count_members_by_tag(client: &impl GenericClient) -> Result<HashMap<i64, i64>, tokio_postgres::Error> {
    // Simulated test followers are not members anyone reaches, so the board's chart leaves them out.
    let rows = client
        .query(
            concat!(
                "SELECT tag_id, count(*) FROM follower_tags WHERE ",
                not_test_follower!("openid"),
                " GROUP BY tag_id"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// One tag by id, with its member count.
pub async fn get_tag(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<Option<TagRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, (SELECT count(*) FROM follower_tags WHERE tag_id = t.id) FROM tags t
         WHERE t.id = $1 AND t.account_id = $2"
    );
    Ok(client.query_opt(&sql, &[&id, &account.get()]).await?.map(|r| tag_from_row(&r, r.get(10))))
}

/// One tag by path, with its member count.
pub async fn get_tag_by_path(
    client: &impl GenericClient,
    account: AccountId,
    path: &TagPath,
) -> Result<Option<TagRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, (SELECT count(*) FROM follower_tags WHERE tag_id = t.id) FROM tags t
         WHERE t.path = $1 AND t.account_id = $2"
    );
    Ok(client.query_opt(&sql, &[&path.as_str(), &account.get()]).await?.map(|r| tag_from_row(&r, r.get(10))))
}

/// (id, path, sensitive, `when`) of the tags with these paths, by path: what approval covers.
pub async fn list_definitions(
    client: &impl GenericClient,
    account: AccountId,
    paths: &[&str],
) -> Result<Vec<(i64, String, bool, Option<String>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, path, sensitive, when_expr FROM tags WHERE path = ANY($1::text[]) AND account_id = $2
             ORDER BY path",
            &[&paths, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}

/// Sets what an operator says about a tag (not where it lives: mirroring needs WeChat calls).
pub async fn update_tag_meta(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
    description: &str,
    sensitive: bool,
    when_expr: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE tags SET description = $2, sensitive = $3, when_expr = $4 WHERE id = $1 AND account_id = $5",
            &[&id, &description, &sensitive, &when_expr, &account.get()],
        )
        .await?;
    bump_config_version(client).await
}

/// Serializes writers of the whole configuration (playbooks) until the transaction ends, so two
/// processes starting with the same `TAGCAST_PLAYBOOK` cannot both insert the same rule.
pub async fn lock_config_writes(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    /// The lock's name: "tagcast" in ASCII, as a number.
    const CONFIG_WRITES: i64 = 0x0074_6167_6361_7374;
    client.execute("SELECT pg_advisory_xact_lock($1)", &[&CONFIG_WRITES]).await?;
    Ok(())
}

/// How many of the account's tags are (to be) mirrored on WeChat.
pub async fn count_mirrored(client: &impl GenericClient, account: AccountId) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT count(*) FROM tags WHERE mirrored AND account_id = $1", &[&account.get()])
        .await?
        .get(0))
}

const LOCK_TAGS: &str = "LOCK TABLE tags IN SHARE ROW EXCLUSIVE MODE";

/// Makes the caller's transaction the only one creating tags until it ends, so two requests
/// cannot both take WeChat's last slot (or the local limit's).
pub async fn lock_tags_for_create(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    client.execute(LOCK_TAGS, &[]).await?;
    Ok(())
}

const COUNT_TAGS: &str = "SELECT count(*) FROM tags WHERE account_id = $1";

/// Every tag of the account, local-only and mirrored.
pub async fn count_tags(client: &impl GenericClient, account: AccountId) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(COUNT_TAGS, &[&account.get()]).await?.get(0))
}

const IS_CONFIGURED: &str = "SELECT EXISTS (SELECT 1 FROM tags WHERE account_id = $1)
                                    OR EXISTS (SELECT 1 FROM rules WHERE account_id = $1)
                                    OR EXISTS (SELECT 1 FROM quizzes WHERE account_id = $1)";

/// Whether the account has any tag, rule or quiz: something an operator made or kept.
pub async fn is_configured(client: &impl GenericClient, account: AccountId) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_one(IS_CONFIGURED, &[&account.get()]).await?.get(0))
}

const TAG_EXISTS: &str = "SELECT 1 FROM tags WHERE path = $1 AND account_id = $2";

/// Whether a tag of the account has this path.
pub async fn tag_exists(
    client: &impl GenericClient,
    account: AccountId,
    path: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_opt(TAG_EXISTS, &[&path, &account.get()]).await?.is_some())
}

// WeChat tag ids are the account's own: another account's tag 100 is another tag.
const COUNT_UNMANAGED_WECHAT_TAGS: &str = "SELECT count(*) FROM wechat_tags w WHERE w.id > 2 AND w.account_id = $1
               AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.wechat_tag_id = w.id AND t.account_id = w.account_id)";

/// WeChat tags made outside tagcast (seen by `sync`), WeChat's reserved ones (ids 0 to 2) left out.
pub async fn count_unmanaged_wechat_tags(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(COUNT_UNMANAGED_WECHAT_TAGS, &[&account.get()]).await?.get(0))
}

/// Deletes a tag with its memberships and pending outbox rows; returns it as it was.
///
/// Deleting the row waits for every transaction that locked the tag to add rows naming it, and
/// once it is gone no statement can lock it again; the trigger of V18 then deletes the rows with
/// a snapshot that sees all of those committed adds.
pub async fn delete_tag(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<Option<TagRow>, tokio_postgres::Error> {
    let sql = format!("DELETE FROM tags t WHERE t.id = $1 AND t.account_id = $2 RETURNING {COLUMNS}");
    let row = client.query_opt(&sql, &[&id, &account.get()]).await?;
    if row.is_some() {
        bump_config_version(client).await?;
    }
    Ok(row.map(|r| tag_from_row(&r, 0)))
}

/// Records the WeChat id of a mirrored tag, once created there.
pub async fn update_wechat_tag_id(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
    wechat_tag_id: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE tags SET wechat_tag_id = $2 WHERE id = $1 AND account_id = $3",
            &[&id, &wechat_tag_id, &account.get()],
        )
        .await?;
    Ok(())
}

/// Ids of the given paths, creating the missing ones (mirrored while WeChat has room, local-only
/// past `mirror_limit`).
pub async fn ensure_tags(
    client: &impl GenericClient,
    account: AccountId,
    paths: &[&TagPath],
    created_by: &str,
    mirror_limit: i64,
) -> Result<HashMap<String, i64>, tokio_postgres::Error> {
    let mut ids = HashMap::new();
    for path in paths {
        if ids.contains_key(path.as_str()) {
            continue;
        }
        let existing = client
            .query_opt("SELECT id FROM tags WHERE path = $1 AND account_id = $2", &[&path.as_str(), &account.get()])
            .await?;
        let id = match existing {
            Some(row) => row.get(0),
            None => {
                let mirrored = count_mirrored(client, account).await? < mirror_limit;
                let tag = NewTag { path, description: "", sensitive: false, mirrored, when_expr: None, created_by };
                match insert_tag(client, account, &tag).await? {
                    Some(row) => row.id,
                    None => client
                        .query_one(
                            "SELECT id FROM tags WHERE path = $1 AND account_id = $2",
                            &[&path.as_str(), &account.get()],
                        )
                        .await?
                        .get(0),
                }
            }
        };
        ids.insert(path.as_str().to_owned(), id);
    }
    Ok(ids)
}

/// The index the engine matches against: path → (id, mirrored).
pub async fn tag_index(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<HashMap<String, (i64, bool)>, tokio_postgres::Error> {
    let rows = client.query("SELECT path, id, mirrored FROM tags WHERE account_id = $1", &[&account.get()]).await?;
    Ok(rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect())
}

/// Marks the rules/quizzes/tags configuration changed, so every process reloads its copy.
pub async fn bump_config_version(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    client.execute("UPDATE config_version SET version = version + 1", &[]).await?;
    Ok(())
}

/// The configuration's version.
pub async fn get_config_version(client: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    let statement = client.prepare_cached("SELECT version FROM config_version").await?;
    Ok(client.query_one(&statement, &[]).await?.get(0))
}

/// One follower's tag being added or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    pub openid: String,
    pub tag_id: i64,
    pub add: bool,
    pub source: String,
}

// One statement, one round trip: the memberships that really change (an add of a tag the
// follower has, or a remove of one they lack, returns nothing), their outbox rows, and the tags'
// `last_used_at`. Only changes of mirrored tags for followers who still follow reach WeChat (it
// drops the tags of those who leave; they are re-sent when the follower returns). `last_used_at`
// moves at most once a minute per tag: every batch touching the same row would otherwise queue
// all concurrent batches behind one row lock until each commits.
//
// `follower_tags` and `tag_outbox` have no foreign key to `tags` (V18): its trigger locked the tag
// once per inserted row. Every statement that adds rows naming a tag locks the tag itself, once,
// with the same `FOR KEY SHARE` (see [`delete_tag`], which waits for it). `touched` reads the tags
// it updates through `live`: Postgres runs the leftover data-modifying CTEs after the main query
// in its own order, and a row this statement has already updated cannot be locked by it any more
// (`live` would skip it, and a remove-only batch would queue nothing for WeChat).
const APPLY: &str = "
    WITH input AS (
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bool[]) AS c(openid, tag_id, source, add)
    ), live AS (
        SELECT id, mirrored, account_id FROM tags WHERE id IN (SELECT tag_id FROM input) FOR KEY SHARE
    ), added AS (
        INSERT INTO follower_tags (openid, tag_id, source)
        SELECT i.openid, i.tag_id, i.source FROM input i JOIN live l ON l.id = i.tag_id WHERE i.add
        ON CONFLICT DO NOTHING
        RETURNING openid, tag_id, true AS add
    ), removed AS (
        DELETE FROM follower_tags f USING input r
        WHERE NOT r.add AND f.openid = r.openid AND f.tag_id = r.tag_id
        RETURNING f.openid, f.tag_id, false AS add
    ), changed AS (
        SELECT * FROM added UNION ALL SELECT * FROM removed
    ), queued AS (
        INSERT INTO tag_outbox (openid, tag_id, add, account_id)
        SELECT c.openid, c.tag_id, c.add, l.account_id FROM changed c JOIN live l ON l.id = c.tag_id AND l.mirrored
        WHERE NOT EXISTS (SELECT 1 FROM followers f
                          WHERE f.account_id = l.account_id AND f.openid = c.openid AND NOT f.subscribed)
        ON CONFLICT (openid, tag_id) DO UPDATE SET
            add = EXCLUDED.add, seq = nextval('tag_outbox_seq'), run_at = now(),
            attempts = 0, last_error = NULL, state = 'pending'
    ), touched AS (
        UPDATE tags SET last_used_at = now()
        WHERE id IN (SELECT l.id FROM live l JOIN changed c ON c.tag_id = l.id)
          AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
    )
    SELECT openid, tag_id FROM changed";

const ENQUEUE: &str = "
    INSERT INTO tag_outbox (openid, tag_id, add, account_id)
    SELECT c.openid, c.tag_id, c.add, t.account_id
    FROM unnest($1::text[], $2::bigint[], $3::bool[]) AS c(openid, tag_id, add)
    JOIN tags t ON t.id = c.tag_id AND t.mirrored
    WHERE NOT EXISTS (SELECT 1 FROM followers f WHERE f.account_id = t.account_id AND f.openid = c.openid AND NOT f.subscribed)
    FOR KEY SHARE OF t
    ON CONFLICT (openid, tag_id) DO UPDATE SET
        add = EXCLUDED.add, seq = nextval('tag_outbox_seq'), run_at = now(),
        attempts = 0, last_error = NULL, state = 'pending'";

/// Applies tag changes (the last word per follower and tag wins) and queues what WeChat must
/// learn. Returns the changes that actually changed something. A tag id belongs to one account:
/// each change is that account's (its follower, its outbox row).
pub async fn apply_tag_changes(
    client: &impl GenericClient,
    changes: &[TagChange],
) -> Result<Vec<TagChange>, tokio_postgres::Error> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut last_word: HashMap<(&str, i64), &TagChange> = HashMap::new();
    for change in changes {
        last_word.insert((change.openid.as_str(), change.tag_id), change);
    }
    let mut words: Vec<&TagChange> = last_word.values().copied().collect();
    // A stable order keeps concurrent batches from locking rows in opposite orders.
    words.sort_by(|a, b| (&a.openid, a.tag_id).cmp(&(&b.openid, b.tag_id)));
    let openids: Vec<&str> = words.iter().map(|c| c.openid.as_str()).collect();
    let tags: Vec<i64> = words.iter().map(|c| c.tag_id).collect();
    let sources: Vec<&str> = words.iter().map(|c| c.source.as_str()).collect();
    let adds: Vec<bool> = words.iter().map(|c| c.add).collect();
    let statement = client.prepare_cached(APPLY).await?;
    let rows = client.query(&statement, &[&openids, &tags, &sources, &adds]).await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let (openid, tag_id): (&str, i64) = (row.get(0), row.get(1));
            last_word.get(&(openid, tag_id)).map(|c| (*c).clone())
        })
        .collect())
}

/// Queues changes for WeChat (mirrored tags of current followers only).
pub async fn enqueue(client: &impl GenericClient, changes: &[TagChange]) -> Result<(), tokio_postgres::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let openids: Vec<&str> = changes.iter().map(|c| c.openid.as_str()).collect();
    let tags: Vec<i64> = changes.iter().map(|c| c.tag_id).collect();
    let adds: Vec<bool> = changes.iter().map(|c| c.add).collect();
    let statement = client.prepare_cached(ENQUEUE).await?;
    client.execute(&statement, &[&openids, &tags, &adds]).await?;
    Ok(())
}

/// The tag paths each follower carries, sorted.
pub async fn list_follower_tag_paths(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[&str],
) -> Result<HashMap<String, Vec<String>>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT f.openid, t.path FROM follower_tags f JOIN tags t ON t.id = f.tag_id AND t.account_id = $2
             WHERE f.openid = ANY($1) ORDER BY f.openid, t.path",
            &[&openids, &account.get()],
        )
        .await?;
    let mut by_openid: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows {
        by_openid.entry(row.get(0)).or_default().push(row.get(1));
    }
    Ok(by_openid)
}

/// Every tag a follower carries, as changes that remove them (for 删除我的标签 and erasure).
pub async fn list_follower_tag_ids(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT f.tag_id FROM follower_tags f JOIN tags t ON t.id = f.tag_id AND t.account_id = $2
             WHERE f.openid = $1 ORDER BY f.tag_id",
            &[&openid, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Re-queues every mirrored tag of followers who came back: WeChat dropped them when they left.
pub async fn requeue_for_returning(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[&str],
) -> Result<(), tokio_postgres::Error> {
    if openids.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "INSERT INTO tag_outbox (openid, tag_id, add, account_id)
             SELECT f.openid, f.tag_id, true, t.account_id FROM follower_tags f
             JOIN tags t ON t.id = f.tag_id AND t.mirrored AND t.account_id = $2
             WHERE f.openid = ANY($1)
             FOR KEY SHARE OF t
             ON CONFLICT (openid, tag_id) DO UPDATE SET add = true, seq = nextval('tag_outbox_seq'), run_at = now(),
                 attempts = 0, last_error = NULL, state = 'pending'",
            &[&openids, &account.get()],
        )
        .await?;
    Ok(())
}

/// Forgets what WeChat holds for followers who left (WeChat drops their tags) and drops their
/// pending changes: nothing can be sent to someone who does not follow.
pub async fn forget_wechat_state(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[&str],
) -> Result<(), tokio_postgres::Error> {
    if openids.is_empty() {
        return Ok(());
    }
    let account = account.get();
    client
        .execute("DELETE FROM follower_wechat_tags WHERE openid = ANY($1) AND account_id = $2", &[&openids, &account])
        .await?;
    client.execute("DELETE FROM tag_outbox WHERE openid = ANY($1) AND account_id = $2", &[&openids, &account]).await?;
    Ok(())
}

/// The tag, its row locked until the caller's transaction ends (a rename or delete of the same
/// tag waits).
pub async fn lock_tag(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<Option<TagRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM tags t WHERE t.id = $1 AND t.account_id = $2 FOR UPDATE");
    Ok(client.query_opt(&sql, &[&id, &account.get()]).await?.map(|r| tag_from_row(&r, 0)))
}

/// Gives a tag a new path; false when another tag has it.
pub async fn update_tag_path(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
    path: &TagPath,
) -> Result<bool, tokio_postgres::Error> {
    let taken = client
        .query_opt(
            "SELECT 1 FROM tags WHERE path = $1 AND id <> $2 AND account_id = $3",
            &[&path.as_str(), &id, &account.get()],
        )
        .await?;
    if taken.is_some() {
        return Ok(false);
    }
    client
        .execute("UPDATE tags SET path = $2 WHERE id = $1 AND account_id = $3", &[&id, &path.as_str(), &account.get()])
        .await?;
    bump_config_version(client).await?;
    Ok(true)
}

/// Dynamic tags whose condition contains `needle` (a cheap filter before parsing): (id, when).
pub async fn list_dynamic_mentioning(
    client: &impl GenericClient,
    account: AccountId,
    needle: &str,
) -> Result<Vec<(i64, String)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, when_expr FROM tags WHERE when_expr IS NOT NULL AND strpos(when_expr, $1) > 0 AND account_id = $2",
            &[&needle, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Rewrites a dynamic tag's condition (same meaning, new text).
pub async fn update_when_expr(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
    when_expr: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute("UPDATE tags SET when_expr = $2 WHERE id = $1 AND account_id = $3", &[&id, &when_expr, &account.get()])
        .await?;
    bump_config_version(client).await
}

/// The name `sync` last saw for a WeChat tag, after tagcast renamed it there.
pub async fn rename_wechat_tag_mirror(
    client: &impl GenericClient,
    account: AccountId,
    wechat_tag_id: i64,
    name: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE wechat_tags SET name = $2 WHERE id = $1 AND account_id = $3",
            &[&wechat_tag_id, &name, &account.get()],
        )
        .await?;
    Ok(())
}

const DELETE_WECHAT_TAG_MIRROR: &str = "DELETE FROM wechat_tags WHERE id = $1 AND account_id = $2";

/// Forgets a WeChat tag deleted there.
pub async fn delete_wechat_tag_mirror(
    client: &impl GenericClient,
    account: AccountId,
    wechat_tag_id: i64,
) -> Result<(), tokio_postgres::Error> {
    client.execute(DELETE_WECHAT_TAG_MIRROR, &[&wechat_tag_id, &account.get()]).await?;
    Ok(())
}

const LIST_MIRRORED_ON_WECHAT: &str =
    "SELECT id, wechat_tag_id FROM tags WHERE mirrored AND wechat_tag_id IS NOT NULL AND account_id = $1 ORDER BY id";

/// Every mirrored tag of the account created on WeChat: `(tag id, WeChat tag id)`, by tag id.
pub async fn list_mirrored_on_wechat(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<(i64, i64)>, tokio_postgres::Error> {
    let rows = client.query(LIST_MIRRORED_ON_WECHAT, &[&account.get()]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

// A simulated test follower is never on WeChat (the outbox discards their changes): leaving
// them out keeps the reconciler from seeing drift on every run.
const LIST_MEMBERS_WECHAT_SHOULD_HAVE: &str = "SELECT ft.openid FROM follower_tags ft
                 JOIN tags t ON t.id = ft.tag_id
                 JOIN followers f ON f.account_id = t.account_id AND f.openid = ft.openid AND f.subscribed
                 WHERE ft.tag_id = $1 AND NOT starts_with(ft.openid, $2)";

/// The members of a tag WeChat should have too: subscribed, and not simulated test followers.
pub async fn list_members_wechat_should_have(
    client: &impl GenericClient,
    tag_id: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows =
        client.query(LIST_MEMBERS_WECHAT_SHOULD_HAVE, &[&tag_id, &crate::domain::follower::TEST_OPENID_PREFIX]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

const CLEAR_WECHAT_TAG_MEMBERS: &str = "DELETE FROM follower_wechat_tags WHERE tag_id = $1 AND account_id = $2";
const INSERT_WECHAT_TAG_MEMBERS: &str = "INSERT INTO follower_wechat_tags (openid, tag_id, account_id)
    SELECT o, $2, $3 FROM unnest($1::text[]) AS o ON CONFLICT DO NOTHING";

/// Replaces the mirror of a WeChat tag's members with what WeChat holds now, in the caller's
/// transaction.
pub async fn replace_wechat_tag_members(
    client: &impl GenericClient,
    account: AccountId,
    wechat_tag_id: i64,
    members: &[&str],
) -> Result<(), tokio_postgres::Error> {
    client.execute(CLEAR_WECHAT_TAG_MEMBERS, &[&wechat_tag_id, &account.get()]).await?;
    client.execute(INSERT_WECHAT_TAG_MEMBERS, &[&members, &wechat_tag_id, &account.get()]).await?;
    Ok(())
}
