//! Which account holds an object: a request for an object of another account is refused as
//! forbidden (403), not as missing, whoever asks and however they learnt the id.

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// The kinds of object the API and the pages address by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    Tag,
    Rule,
    Quiz,
    Segment,
    Campaign,
    Follower,
}

impl Owned {
    fn query(self) -> &'static str {
        match self {
            Self::Tag => "SELECT EXISTS (SELECT 1 FROM tags WHERE id = $1::text::bigint AND account_id <> $2)",
            Self::Rule => "SELECT EXISTS (SELECT 1 FROM rules WHERE id = $1::text::bigint AND account_id <> $2)",
            Self::Quiz => "SELECT EXISTS (SELECT 1 FROM quizzes WHERE id = $1 AND account_id <> $2)",
            Self::Segment => "SELECT EXISTS (SELECT 1 FROM segments WHERE id = $1::text::bigint AND account_id <> $2)",
            Self::Campaign => {
                "SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = $1::text::bigint AND account_id <> $2)"
            }
            Self::Follower => "SELECT EXISTS (SELECT 1 FROM followers WHERE openid = $1 AND account_id <> $2)",
        }
    }

    fn numeric(self) -> bool {
        !matches!(self, Self::Quiz | Self::Follower)
    }
}

/// Whether an object `key` of `kind` exists in an account other than `account`.
pub async fn held_by_another_account(
    client: &impl GenericClient,
    kind: Owned,
    key: &str,
    account: AccountId,
) -> Result<bool, tokio_postgres::Error> {
    if kind.numeric() && key.parse::<i64>().is_err() {
        return Ok(false);
    }
    Ok(client.query_one(kind.query(), &[&key, &account.get()]).await?.get(0))
}
