//! Delivering the tag outbox: claimed changes are grouped by tag and direction and sent in
//! batchtagging / batchuntagging calls of at most 50 openids, several at a time within the
//! client's pace. A tag is created on WeChat before its first use.
//!
//! Each account's changes go out with its own client, and accounts do not wait for each other: a
//! round claims a share of each account's due changes and delivers every account's share at
//! once, so a backlog on one account cannot take the others' place; an account whose WeChat is
//! down backs off its own changes only, and a delivery that runs long is left running while the
//! next rounds serve the other accounts ([`deliver_due`]).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use super::{JobCtx, Outcome, WorkerError, retry_at};
use crate::app::accounts::LiveAccount;
use crate::domain::account::AccountId;
use crate::store;
use crate::store::outbox::{Failure, OutboxItem};
use crate::wechat::api::{ErrCode, MAX_OPENIDS_PER_BATCH, WeChatError};

/// Changes claimed per round, shared out between the accounts with a WeChat client.
const CLAIM_LIMIT: i64 = 2_000;
/// The least share of a round an account gets, however many accounts there are.
const MIN_PER_ACCOUNT: i64 = 100;
/// How long a round waits for an account's delivery before leaving it to finish on its own.
const ROUND_WAIT: Duration = Duration::from_secs(2);
/// The pause when nothing can be claimed while a delivery still runs.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
/// A claim whose session is still open lapses after this long. A worker that dies loses its
/// claim sooner: with its session (see `store::outbox`).
const LEASE: Duration = Duration::from_secs(60);
/// Batch calls in flight at once (the client's per-API pace still applies).
const CONCURRENT_CALLS: usize = 8;
/// Changes that failed this many times in a row wait out their backoff even when WeChat answers
/// other calls again (the backoff before the 8th attempt is about two minutes).
const PULL_FORWARD_BELOW: i32 = 8;

/// Whether WeChat answered a batch call with success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    Yes,
    No,
}

/// WeChat's own trouble (down, busy, rate-limited) as opposed to something about the change.
fn failure_of(error: &WeChatError) -> Failure {
    // A transport error that is not a timeout or a refused connection still says nothing
    // against the change itself; an HTTP 4xx (not 429) does.
    // A used-up daily quota (45009) is neither: its changes wait for Beijing midnight (see
    // `retry_time`), not for WeChat to answer other calls again.
    if error.quota_resumes_at().is_some() {
        Failure::QuotaWait
    } else if error.is_transient() || matches!(error, WeChatError::Transport(_)) {
        Failure::WeChatTrouble
    } else {
        Failure::OfTheChange
    }
}

/// Why WeChat failed this round for its own trouble, once a tag creation or a call has: the
/// round's tag creations and calls not started yet are rescheduled without being tried (each
/// would spend the client's whole retry budget, seconds apiece, on a WeChat that is down, and a
/// worker asked to stop waits for its round).
#[derive(Default)]
struct RoundTrouble(std::sync::Mutex<Option<String>>);

impl RoundTrouble {
    fn note(&self, failure: Failure, message: impl FnOnce() -> String) {
        if failure == Failure::WeChatTrouble {
            if let Ok(mut trouble) = self.0.lock() {
                trouble.get_or_insert_with(message);
            }
        }
    }

    /// Reschedules `items` unsent if WeChat is known to be in trouble this round; true if so.
    async fn held_back(&self, ctx: &JobCtx, items: &[OutboxItem]) -> Result<bool, WorkerError> {
        let Some(message) = self.0.lock().ok().and_then(|trouble| trouble.clone()) else { return Ok(false) };
        let refs: Vec<&OutboxItem> = items.iter().collect();
        let attempts = items.iter().map(|i| i.attempts).max().unwrap_or(0);
        let client = ctx.pool.get().await?;
        store::outbox::fail(&client, &refs, &message, retry_at(attempts), Failure::WeChatTrouble).await?;
        Ok(true)
    }
}

/// Claims due changes of every account that has a WeChat client and no delivery still running
/// here, and sends each account's with its own client, all accounts at once. The round waits up
/// to [`ROUND_WAIT`] for them; an account whose WeChat is slower than that (an outage spends a
/// call's whole retry budget) goes on in the background and sits out the rounds until it is
/// done, so the others' next changes need not wait for it. With nothing to claim while such a
/// delivery runs, the call waits a moment and answers [`Outcome::Ran`]: work is still in hand.
///
/// # Errors
/// The database failed; WeChat's failures are recorded on the rows.
#[tracing::instrument(skip_all)]
pub async fn deliver_due(ctx: &JobCtx) -> Result<Outcome, WorkerError> {
    // An account without AppID and AppSecret keeps its changes until it has them.
    let accounts: Vec<Arc<LiveAccount>> = ctx.accounts.all().into_iter().filter(|a| a.api.is_some()).collect();
    let (busy, free): (Vec<&Arc<LiveAccount>>, Vec<&Arc<LiveAccount>>) =
        accounts.iter().partition(|a| InFlight::running(a));
    let share = i64::try_from(accounts.len()).unwrap_or(i64::MAX).max(1);
    let per_account = (CLAIM_LIMIT / share).max(MIN_PER_ACCOUNT);
    let free_ids: Vec<AccountId> = free.iter().map(|a| a.id).collect();
    // Held, idle, until every account's share is recorded: the claim lives as long as this
    // session does.
    let claim_session = Arc::new(ctx.pool.get().await?);
    let items = store::outbox::claim_due_per_account(claim_session.as_ref(), &free_ids, per_account, LEASE).await?;
    if items.is_empty() {
        if busy.is_empty() {
            return Ok(Outcome::Idle);
        }
        tokio::time::sleep(BUSY_PAUSE).await;
        return Ok(Outcome::Ran);
    }
    let mut by_account: BTreeMap<AccountId, Vec<OutboxItem>> = BTreeMap::new();
    for item in items {
        by_account.entry(item.account).or_default().push(item);
    }
    let mut deliveries = Vec::with_capacity(by_account.len());
    for (account, items) in by_account {
        let live = free.iter().find(|a| a.id == account).map(|a| Arc::clone(a));
        let guard = live.as_ref().and_then(InFlight::start);
        let ctx = ctx.clone();
        let session = Arc::clone(&claim_session);
        deliveries.push(tokio::spawn(async move {
            let _in_flight = guard;
            let _claim = session;
            match ctx.scoped(account) {
                Ok(scoped) => deliver_for_account(&scoped, items).await,
                Err(error) => {
                    // The account lost its client since the claim: the changes wait for it.
                    let refs: Vec<&OutboxItem> = items.iter().collect();
                    let attempts = items.iter().map(|i| i.attempts).max().unwrap_or(0);
                    let client = ctx.pool.get().await?;
                    let message = error.to_string();
                    store::outbox::fail(&client, &refs, &message, retry_at(attempts), Failure::WeChatTrouble).await?;
                    Ok(())
                }
            }
        }));
    }
    drop(claim_session);
    let deadline = tokio::time::Instant::now() + ROUND_WAIT;
    let mut failed: Option<WorkerError> = None;
    for mut delivery in deliveries {
        match tokio::time::timeout_at(deadline, &mut delivery).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => match &failed {
                None => failed = Some(error),
                Some(_) => tracing::warn!(%error, "delivering an account's tag changes failed"),
            },
            Ok(Err(error)) => tracing::error!(%error, "delivering an account's tag changes panicked"),
            Err(_) => {
                tokio::spawn(async move {
                    if let Ok(Err(error)) = delivery.await {
                        tracing::warn!(%error, "delivering an account's tag changes failed");
                    }
                });
            }
        }
    }
    match failed {
        Some(error) => Err(error),
        None => Ok(Outcome::Ran),
    }
}

/// The accounts whose delivery is running in this process, by their entry in the registry (an
/// entry is one account's client; a changed account gets a new entry).
static IN_FLIGHT: LazyLock<Mutex<Vec<Weak<LiveAccount>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// Marks an account's delivery running until dropped.
struct InFlight(Arc<LiveAccount>);

impl InFlight {
    fn running(account: &Arc<LiveAccount>) -> bool {
        let running = IN_FLIGHT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        running.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(account)))
    }

    fn start(account: &Arc<LiveAccount>) -> Option<Self> {
        let mut running = IN_FLIGHT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        running.retain(|w| w.strong_count() > 0);
        if running.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(account))) {
            return None;
        }
        running.push(Arc::downgrade(account));
        Some(Self(Arc::clone(account)))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut running = IN_FLIGHT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        running.retain(|w| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.0)));
    }
}

/// Sends one account's claimed changes with its client (`ctx` is scoped to the account).
#[tracing::instrument(skip_all, fields(account = %ctx.account, changes = items.len()))]
async fn deliver_for_account(ctx: &JobCtx, items: Vec<OutboxItem>) -> Result<(), WorkerError> {
    // A simulated test follower is not on WeChat: telling WeChat would only earn 40003 and a
    // dead change, and a send by WeChat tag must not count them.
    let (simulated, items): (Vec<OutboxItem>, Vec<OutboxItem>) =
        items.into_iter().partition(|i| crate::domain::follower::is_test_follower(&i.openid));
    if !simulated.is_empty() {
        store::outbox::discard(&ctx.pool.get().await?, &simulated.iter().collect::<Vec<_>>()).await?;
    }
    let mut by_tag: BTreeMap<i64, Vec<OutboxItem>> = BTreeMap::new();
    for item in items {
        by_tag.entry(item.tag_id).or_default().push(item);
    }
    let mut chunks: Vec<(i64, Vec<OutboxItem>)> = Vec::new();
    let trouble = RoundTrouble::default();
    for (_, items) in by_tag {
        let Some(wechat_tag_id) = wechat_tag_for(ctx, &items, &trouble).await? else { continue };
        let (adds, removes): (Vec<_>, Vec<_>) = items.into_iter().partition(|i| i.add);
        for group in [adds, removes] {
            for chunk in group.chunks(MAX_OPENIDS_PER_BATCH) {
                chunks.push((wechat_tag_id, chunk.to_vec()));
            }
        }
    }
    let results: Vec<Result<Answered, WorkerError>> = stream::iter(chunks)
        .map(|(wechat_tag_id, chunk)| send_chunk(ctx, wechat_tag_id, chunk, &trouble))
        .buffer_unordered(CONCURRENT_CALLS)
        .collect()
        .await;
    let answered = results.into_iter().collect::<Result<Vec<Answered>, _>>()?;
    if answered.contains(&Answered::Yes) {
        let client = ctx.pool.get().await?;
        let pulled = store::outbox::pull_forward_after_recovery(&client, ctx.account, PULL_FORWARD_BELOW).await?;
        if pulled > 0 {
            tracing::info!(changes = pulled, "WeChat answers again; changes held back by its trouble are due now");
        }
    }
    Ok(())
}

/// The WeChat id of the items' tag, creating the tag on WeChat first if needed. `None` when it
/// cannot be had now (the items are rescheduled or declared dead).
async fn wechat_tag_for(
    ctx: &JobCtx,
    items: &[OutboxItem],
    trouble: &RoundTrouble,
) -> Result<Option<i64>, WorkerError> {
    let first = &items[0];
    if let Some(id) = first.wechat_tag_id {
        return Ok(Some(id));
    }
    if trouble.held_back(ctx, items).await? {
        return Ok(None);
    }
    let created = match ctx.api.create_tag(&first.path).await {
        Ok(tag) => Ok(tag.id),
        // Created by an earlier attempt that died before recording it, or by hand: adopt it.
        Err(error) if error.code() == Some(ErrCode::TagNameTaken) => match ctx.api.list_tags().await {
            Ok(tags) => tags.into_iter().find(|t| t.name == first.path).map(|t| t.id).ok_or(error),
            Err(list_error) => Err(list_error),
        },
        Err(error) => Err(error),
    };
    let client = ctx.pool.get().await?;
    let refs: Vec<&OutboxItem> = items.iter().collect();
    match created {
        Ok(id) => {
            store::outbox::link_wechat_tag(&client, ctx.account, first.tag_id, id, &first.path).await?;
            tracing::info!(tag.path = %first.path, wechat.tag_id = id, "created the tag on WeChat");
            Ok(Some(id))
        }
        Err(error) => {
            let dead = error.code() == Some(ErrCode::TooManyTags);
            let next = if dead { None } else { retry_time(&error, first.attempts) };
            tracing::warn!(tag.path = %first.path, %error, "cannot create the tag on WeChat");
            let message = format!("creating the WeChat tag: {error}");
            store::outbox::fail(&client, &refs, &message, next, failure_of(&error)).await?;
            trouble.note(failure_of(&error), || message);
            Ok(None)
        }
    }
}

async fn send_chunk(
    ctx: &JobCtx,
    wechat_tag_id: i64,
    chunk: Vec<OutboxItem>,
    trouble: &RoundTrouble,
) -> Result<Answered, WorkerError> {
    if trouble.held_back(ctx, &chunk).await? {
        return Ok(Answered::No);
    }
    let mut outcome = call(ctx, wechat_tag_id, &chunk).await;
    if outcome.as_ref().is_err_and(|e| e.code() == Some(ErrCode::InvalidTagId)) {
        // WeChat may not know a tag for a moment after creating it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        outcome = call(ctx, wechat_tag_id, &chunk).await;
    }
    // Without a connection the claim lapses and the rows are sent again (tagging is idempotent).
    let client = ctx.pool.get().await?;
    let refs: Vec<&OutboxItem> = chunk.iter().collect();
    match outcome {
        Ok(()) => {
            store::outbox::complete(&client, &refs, wechat_tag_id).await?;
            Ok(Answered::Yes)
        }
        Err(error) => match error.code() {
            // Still unknown: the tag was deleted on WeChat behind our back; create it anew next round.
            Some(ErrCode::InvalidTagId) => {
                store::outbox::unlink_wechat_tag(&client, ctx.account, chunk[0].tag_id, wechat_tag_id).await?;
                record_failure(&client, &refs, &error).await?;
                Ok(Answered::No)
            }
            // One bad follower fails the whole call: find them by sending one at a time.
            Some(ErrCode::InvalidOpenId | ErrCode::OpenIdNotOfThisApp | ErrCode::UserTagLimit) if chunk.len() > 1 => {
                let mut answered = Answered::No;
                for item in &chunk {
                    match call(ctx, wechat_tag_id, std::slice::from_ref(item)).await {
                        Ok(()) => {
                            store::outbox::complete(&client, &[item], wechat_tag_id).await?;
                            answered = Answered::Yes;
                        }
                        Err(error) => record_failure(&client, &[item], &error).await?,
                    }
                }
                Ok(answered)
            }
            _ => {
                record_failure(&client, &refs, &error).await?;
                trouble.note(failure_of(&error), || error.to_string());
                Ok(Answered::No)
            }
        },
    }
}

/// When changes refused with `error` are tried again: when the API's daily quota starts over
/// (the client does not call it before; one attempt per used-up day, so a quota never kills a
/// change), else after the usual backoff.
fn retry_time(error: &WeChatError, attempts: i32) -> Option<chrono::DateTime<chrono::Utc>> {
    error.quota_resumes_at().or_else(|| retry_at(attempts))
}

async fn call(ctx: &JobCtx, wechat_tag_id: i64, chunk: &[OutboxItem]) -> Result<(), WeChatError> {
    let openids: Vec<String> = chunk.iter().map(|i| i.openid.clone()).collect();
    if chunk[0].add {
        ctx.api.batch_tag(wechat_tag_id, &openids).await
    } else {
        ctx.api.batch_untag(wechat_tag_id, &openids).await
    }
}

async fn record_failure(
    client: &deadpool_postgres::Client,
    items: &[&OutboxItem],
    error: &WeChatError,
) -> Result<(), tokio_postgres::Error> {
    let permanent = matches!(
        error.code(),
        Some(ErrCode::InvalidOpenId | ErrCode::OpenIdNotOfThisApp | ErrCode::UserTagLimit | ErrCode::NotFollowing)
    );
    let attempts = items.iter().map(|i| i.attempts).max().unwrap_or(0);
    let next = if permanent { None } else { retry_time(error, attempts) };
    tracing::warn!(%error, changes = items.len(), dead = next.is_none(), "WeChat refused tag changes");
    store::outbox::fail(client, items, &error.to_string(), next, failure_of(error)).await
}
