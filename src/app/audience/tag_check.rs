//! The unknown-tag check of segment expressions, shared by the console and the JSON API: a
//! segment that names a tag the account lacks would count nobody without a word, so saving or
//! counting one is refused with a suggestion (issue 20). Dynamic tags' `when` and playbooks are
//! not checked here: they may name tags the same change creates.

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
use crate::domain::expr::{self, Expr, UnknownTag};
use crate::store;

/// The tags `expr` (parsed from `text`) names that `account` does not have; empty when all exist.
///
/// # Errors
/// The database.
pub async fn unknown_tags(
    client: &impl GenericClient,
    account: AccountId,
    expr: &Expr,
    text: &str,
) -> Result<Vec<UnknownTag>, tokio_postgres::Error> {
    if expr.tag_paths().is_empty() {
        return Ok(Vec::new());
    }
    let index = store::tags::tag_index(client, account).await?;
    let known: Vec<&str> = index.keys().map(String::as_str).collect();
    Ok(expr::unknown_tags(expr, text, &known))
}
