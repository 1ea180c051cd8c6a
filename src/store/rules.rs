//! `rules`: what the engine matches pushes against.

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
use crate::domain::rule::{Geofence, Rule, RuleSpec, Trigger};
use crate::domain::tag::TagPath;

/// Stores a rule (already validated) and returns its id.
pub async fn insert_rule(
    client: &impl GenericClient,
    account: AccountId,
    spec: &RuleSpec,
    created_by: &str,
) -> Result<i64, tokio_postgres::Error> {
    let add: Vec<&str> = spec.add.iter().map(TagPath::as_str).collect();
    let remove: Vec<&str> = spec.remove.iter().map(TagPath::as_str).collect();
    let row = client
        .query_one(
            "INSERT INTO rules (trigger, key, add_tags, remove_tags, reply, start_quiz, created_by, account_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &spec.on.as_str(),
                &spec.normalized_key(),
                &add,
                &remove,
                &spec.reply,
                &spec.start_quiz,
                &created_by,
                &account.get(),
            ],
        )
        .await?;
    super::tags::bump_config_version(client).await?;
    Ok(row.get(0))
}

/// Whether an identical rule exists (playbooks apply idempotently).
pub async fn find_rule(
    client: &impl GenericClient,
    account: AccountId,
    spec: &RuleSpec,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let add: Vec<&str> = spec.add.iter().map(TagPath::as_str).collect();
    let remove: Vec<&str> = spec.remove.iter().map(TagPath::as_str).collect();
    let row = client
        .query_opt(
            "SELECT id FROM rules WHERE trigger = $1 AND key = $2 AND add_tags = $3 AND remove_tags = $4
               AND reply IS NOT DISTINCT FROM $5 AND start_quiz IS NOT DISTINCT FROM $6 AND account_id = $7 LIMIT 1",
            &[&spec.on.as_str(), &spec.normalized_key(), &add, &remove, &spec.reply, &spec.start_quiz, &account.get()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Every rule; rows that no longer parse (a future trigger, an edited path) are skipped.
pub async fn list_rules(client: &impl GenericClient, account: AccountId) -> Result<Vec<Rule>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, trigger, key, add_tags, remove_tags, reply, start_quiz FROM rules WHERE account_id = $1
             ORDER BY id",
            &[&account.get()],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let on = Trigger::parse(row.get(1))?;
            let key: String = row.get(2);
            let paths = |i: usize| {
                row.get::<_, Vec<String>>(i).iter().map(|p| TagPath::parse(p).ok()).collect::<Option<Vec<_>>>()
            };
            let spec = RuleSpec {
                on,
                key: key.clone(),
                add: paths(3)?,
                remove: paths(4)?,
                reply: row.get(5),
                start_quiz: row.get(6),
            };
            let geofence = if on == Trigger::Location { Some(Geofence::parse(&key).ok()?) } else { None };
            Some(Rule { id: row.get(0), spec, geofence })
        })
        .collect())
}

/// Deletes a rule; false when there was none.
pub async fn delete_rule(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<bool, tokio_postgres::Error> {
    let deleted =
        client.execute("DELETE FROM rules WHERE id = $1 AND account_id = $2", &[&id, &account.get()]).await? > 0;
    if deleted {
        super::tags::bump_config_version(client).await?;
    }
    Ok(deleted)
}

/// Points the rules that add or remove the tag `from` at `to`; how many rules changed.
pub async fn rename_tag_in_rules(
    client: &impl GenericClient,
    account: AccountId,
    from: &str,
    to: &str,
) -> Result<u64, tokio_postgres::Error> {
    let changed = client
        .execute(
            "UPDATE rules SET add_tags = array_replace(add_tags, $1, $2), remove_tags = array_replace(remove_tags, $1, $2)
             WHERE ($1 = ANY(add_tags) OR $1 = ANY(remove_tags)) AND account_id = $3",
            &[&from, &to, &account.get()],
        )
        .await?;
    if changed > 0 {
        super::tags::bump_config_version(client).await?;
    }
    Ok(changed)
}
