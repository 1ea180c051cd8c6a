//! Finishing mass jobs and pushing MASSSENDJOBFINISH (wechat-api.md §9.8) to the callback URL,
//! signed the way WeChat signs pushes (§1, §2.5) and, when the target has an EncodingAESKey,
//! encrypted in safe mode (§2.1-2.3).
//!
//! Each job gets a task on the runtime `start` ran on: sleep the callback delay, mark the job
//! final under the lock, release it, then POST. The query carries `signature`, `timestamp`
//! (wall-clock now, so the receiver's replay window accepts it even after `advance_time`;
//! `CreateTime` in the XML is mock time), `nonce` and `openid` (the `FromUserName`); safe mode
//! adds `encrypt_type=aes` and `msg_signature`. Like WeChat, a push that gets no HTTP 200
//! within 5 s is tried again, 3 attempts in all.
//!
//! This file and `mass.rs` (for the copyright-check item type) are the only ones that use the
//! `wechat` protocol module.

use std::time::Duration;

use crate::wechat;
use crate::wechat::message::{ArticleUrl, Envelope, Inbound, Message};
use rand::Rng;

use super::mass::{self, Finished};
use super::{CallbackTarget, MockWeChat};

/// `FromUserName` of job-finish pushes: WeChat puts the sending admin's openid there.
pub(super) const ADMIN_OPENID: &str = "oMockAdmin000000000000000000";
/// WeChat gives a push this long to be answered.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per push (the first and WeChat's retries).
const ATTEMPTS: u32 = 3;
/// Pause before trying again after a quick non-200 answer.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

impl MockWeChat {
    /// Counts `n` results about to be spawned as pending; call it while the jobs are recorded.
    pub(super) fn count_pending_finishes(&self, n: usize) {
        if n > 0 {
            self.inner.pending.send_modify(|pending| *pending += n);
        }
    }

    /// Spawns the finish of each job the last call created, already counted by
    /// [`Self::count_pending_finishes`].
    pub(super) fn spawn_finishes(&self, msg_ids: Vec<u64>) {
        if msg_ids.is_empty() {
            return;
        }
        let delay = self.state().control.callback_delay;
        for msg_id in msg_ids {
            let mock = self.clone();
            let task = async move {
                mock.finish_job(msg_id, delay).await;
                mock.inner.pending.send_modify(|n| *n = n.saturating_sub(1));
            };
            match self.inner.runtime.get() {
                Some(runtime) => drop(runtime.spawn(task)),
                None => drop(tokio::spawn(task)),
            }
        }
    }

    /// Waits, finalises the job, pushes its result, records how the push went.
    async fn finish_job(&self, msg_id: u64, delay: Duration) {
        tokio::time::sleep(delay).await;
        let (finished, target, appid, create_time) = {
            let mut state = self.state();
            let Some(finished) = mass::finish(&mut state, msg_id) else { return };
            (finished, state.config.callback.clone(), state.config.appid.clone(), state.now())
        };
        let Some(target) = target else { return };
        let xml = finish_xml(&target.account_id, create_time, &finished);
        let (attempts, delivered) = push(&self.inner.http, &target, &appid, &xml).await;
        if !delivered {
            tracing::warn!(mass.msg_id = msg_id, attempts, "mock WeChat could not deliver MASSSENDJOBFINISH");
        }
        mass::record_delivery(&mut self.state(), msg_id, attempts, delivered);
    }
}

/// The MASSSENDJOBFINISH event (§9.8), from the sending admin, with one article URL per article
/// the job published.
pub(super) fn finish_xml(account_id: &str, create_time: i64, job: &Finished) -> String {
    let article_urls =
        (1..).zip(&job.article_urls).map(|(idx, url)| ArticleUrl { idx: Some(idx), url: url.clone() }).collect();
    let body = Inbound::MassSendJobFinish {
        msg_id: job.msg_id,
        status: job.result.clone(),
        total_count: job.total,
        filter_count: job.filter,
        sent_count: job.sent,
        error_count: job.error,
        copyright_check_state: Some(job.check_state),
        copyright_items: job.copyright_items.clone(),
        article_urls,
    };
    Message { to_user: account_id.to_owned(), from_user: ADMIN_OPENID.to_owned(), create_time, body }.to_xml()
}

/// A signed push: the query pairs and the body to POST.
pub(super) struct SignedPush {
    pub query: Vec<(&'static str, String)>,
    pub body: String,
}

/// Signs (and in safe mode encrypts) `xml` for `target`, as WeChat would at `timestamp`.
///
/// # Errors
/// The target's EncodingAESKey is not a valid key.
pub(super) fn sign_push(
    target: &CallbackTarget,
    appid: &str,
    xml: &str,
    timestamp: &str,
    nonce: &str,
) -> Result<SignedPush, wechat::crypto::CryptoError> {
    let mut query = vec![
        ("signature", wechat::signature::sign(&[&target.token, timestamp, nonce])),
        ("timestamp", timestamp.to_owned()),
        ("nonce", nonce.to_owned()),
        ("openid", ADMIN_OPENID.to_owned()),
    ];
    let Some(key) = &target.encoding_aes_key else { return Ok(SignedPush { query, body: xml.to_owned() }) };
    let encrypt = wechat::crypto::MsgCrypt::new(key, appid)?.encrypt(xml.as_bytes());
    query.push(("encrypt_type", "aes".to_owned()));
    query.push(("msg_signature", wechat::signature::sign(&[&target.token, timestamp, nonce, &encrypt])));
    let body = Envelope { to_user: Some(target.account_id.clone()), encrypt: Some(encrypt) }.to_xml();
    Ok(SignedPush { query, body })
}

/// POSTs `xml` to the target until it answers 200, at most [`ATTEMPTS`] times; returns
/// `(attempts, delivered)`. Each attempt is signed afresh (new timestamp and nonce), as
/// WeChat's retries are.
async fn push(http: &reqwest::Client, target: &CallbackTarget, appid: &str, xml: &str) -> (u32, bool) {
    for attempt in 1..=ATTEMPTS {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let nonce = rand::thread_rng().gen_range(100_000_000u32..1_000_000_000).to_string();
        let signed = match sign_push(target, appid, xml, &timestamp, &nonce) {
            Ok(signed) => signed,
            Err(error) => {
                tracing::warn!(error = %error, "mock WeChat has an unusable EncodingAESKey; push not sent");
                return (attempt - 1, false);
            }
        };
        let sent = http
            .post(&target.url)
            .query(&signed.query)
            .header("Content-Type", "text/xml")
            .timeout(ATTEMPT_TIMEOUT)
            .body(signed.body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == reqwest::StatusCode::OK => return (attempt, true),
            Ok(response) => tracing::debug!(status = response.status().as_u16(), attempt, "push refused"),
            // Without the URL: it holds the push's signature.
            Err(error) => tracing::debug!(error = %error.without_url(), attempt, "push failed"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
    (ATTEMPTS, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wechat::message::parse;

    fn finished(article_url: Option<&str>) -> Finished {
        Finished {
            msg_id: 1_000_000_001,
            result: "send success".to_owned(),
            total: 5,
            filter: 4,
            sent: 4,
            error: 0,
            article_urls: article_url.into_iter().map(str::to_owned).collect(),
            copyright_items: Vec::new(),
            check_state: 1,
        }
    }

    #[test]
    fn the_finish_event_parses_as_mass_send_job_finish() {
        let xml = finish_xml("gh_mock", 1_700_000_000, &finished(Some("http://mp.weixin.qq.com/s?a=1&b=2")));
        let message = parse(&xml).unwrap();
        assert_eq!(message.to_user, "gh_mock");
        assert_eq!(message.from_user, ADMIN_OPENID);
        assert_eq!(message.create_time, 1_700_000_000);
        let Inbound::MassSendJobFinish {
            msg_id,
            status,
            total_count,
            filter_count,
            sent_count,
            error_count,
            article_urls,
            ..
        } = message.body
        else {
            panic!("not a MassSendJobFinish: {:?}", message.body)
        };
        assert_eq!((msg_id, status.as_str()), (1_000_000_001, "send success"));
        assert_eq!((total_count, filter_count, sent_count, error_count), (5, 4, 4, 0));
        assert_eq!(article_urls.len(), 1);
        assert_eq!(article_urls[0].url, "http://mp.weixin.qq.com/s?a=1&b=2");
    }

    #[test]
    fn a_job_without_articles_still_parses() {
        let message = parse(&finish_xml("gh_mock", 1, &finished(None))).unwrap();
        assert!(matches!(message.body, Inbound::MassSendJobFinish { ref article_urls, .. } if article_urls.is_empty()));
    }

    #[test]
    fn safe_mode_pushes_verify_and_decrypt() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        let target = CallbackTarget {
            url: "http://127.0.0.1:1/wechat".into(),
            token: "tok".into(),
            encoding_aes_key: Some(key.into()),
            account_id: "gh_mock".into(),
        };
        let signed = sign_push(&target, "wxmock", "<xml>hi</xml>", "1700000000", "123").unwrap();
        let get = |k: &str| signed.query.iter().find(|(name, _)| *name == k).map(|(_, v)| v.as_str()).unwrap();
        assert!(wechat::signature::verify("tok", "1700000000", "123", get("signature")));
        let envelope = wechat::message::parse_envelope(&signed.body).unwrap();
        let encrypt = envelope.encrypt.unwrap();
        assert!(wechat::signature::verify_msg("tok", "1700000000", "123", &encrypt, get("msg_signature")));
        assert_eq!(get("encrypt_type"), "aes");
        let plain = wechat::crypto::MsgCrypt::new(key, "wxmock").unwrap().decrypt(&encrypt).unwrap();
        assert_eq!(plain, b"<xml>hi</xml>");
    }
}
