//! The durable ceiling for `bench/callback`: the least any WeChat callback that never loses a push
//! must do, and nothing else. Every figure of tagcast's callback is read as a ratio to this one,
//! measured in the same sitting on the same Postgres.
//!
//! Per push: check `signature` (and in safe mode, `encrypt_type=aes`, `msg_signature` over the
//! `<Encrypt>` text, then AES-decrypt it with tagcast's own `MsgCrypt`); pull out `FromUserName`
//! and the dedupe key (`m:<MsgId>`, or `e:<FromUserName>:<CreateTime>:<Event>` for events) with a
//! plain tag scan; store one row; answer `success` only once that row is committed. No replies,
//! no followers, no rules: a real service needs those, so tagcast can only approach this figure.
//!
//! Storage is group commit: handlers send their row down a channel; one or two writer tasks each
//! take everything queued (up to `MAX_BATCH`) and store it with one multi-row
//! `INSERT ... ON CONFLICT (key) DO NOTHING` in autocommit (one round trip, one WAL flush per
//! batch, `synchronous_commit` as the server has it: on), then wake the handlers.
//!
//! Usage: `durable_ceiling [ADDR]` (default 127.0.0.1:18082). Environment: `DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/tagcast_bench`), `WECHAT_TOKEN`,
//! `WECHAT_ENCODING_AES_KEY`, `WECHAT_APPID` (defaults: bench/callback/run.sh's values),
//! `CEILING_WRITERS` (default 2). Creates its table `ceiling_events` if missing.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use tagcast::wechat::crypto::MsgCrypt;
use tagcast::wechat::signature;
use tokio::sync::{Mutex, mpsc, oneshot};

const MAX_BATCH: usize = 1000;

/// One push waiting for its commit: (dedupe key, openid, who to tell).
type Pending = (String, String, oneshot::Sender<bool>);

struct Ceiling {
    token: String,
    crypt: MsgCrypt,
    queue: mpsc::UnboundedSender<Pending>,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// The text of the first `<tag>...</tag>`, CDATA unwrapped. A scan, not a parser: WeChat's pushes
/// are flat and each field appears once, which is all a dedupe key needs.
fn field<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = xml[start..].find(&format!("</{tag}>"))?;
    let text = &xml[start..start + len];
    Some(text.strip_prefix("<![CDATA[").and_then(|t| t.strip_suffix("]]>")).unwrap_or(text))
}

async fn wechat(
    state: web::Data<Ceiling>,
    query: web::Query<HashMap<String, String>>,
    body: web::Bytes,
) -> HttpResponse {
    let q = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
    let (ts, nonce) = (q("timestamp"), q("nonce"));
    if !signature::verify(&state.token, ts, nonce, q("signature")) {
        return HttpResponse::Forbidden().finish();
    }
    let Ok(body) = std::str::from_utf8(&body) else { return HttpResponse::BadRequest().finish() };
    // Safe mode: the signature over the ciphertext is checked before the AES code sees it.
    let plain;
    let xml = if q("encrypt_type") == "aes" {
        let Some(encrypt) = field(body, "Encrypt") else { return HttpResponse::BadRequest().finish() };
        if !signature::verify_msg(&state.token, ts, nonce, encrypt, q("msg_signature")) {
            return HttpResponse::Forbidden().finish();
        }
        let Ok(bytes) = state.crypt.decrypt(encrypt) else { return HttpResponse::BadRequest().finish() };
        let Ok(text) = String::from_utf8(bytes) else { return HttpResponse::BadRequest().finish() };
        plain = text;
        plain.as_str()
    } else {
        body
    };
    let Some(from) = field(xml, "FromUserName") else { return HttpResponse::BadRequest().finish() };
    // The same keys tagcast uses, so a WeChat retry is recognised the same way.
    let key = match field(xml, "MsgId") {
        Some(id) => format!("m:{id}"),
        None => match (field(xml, "CreateTime"), field(xml, "Event")) {
            (Some(t), Some(e)) => format!("e:{from}:{t}:{e}"),
            _ => return HttpResponse::BadRequest().finish(),
        },
    };
    let (done, committed) = oneshot::channel();
    if state.queue.send((key, from.to_owned(), done)).is_err() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    // Durable before it is answered: WeChat treats "success" as delivered and never retries.
    match committed.await {
        Ok(true) => HttpResponse::Ok().content_type("text/plain").body("success"),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// A writer: waits for one push, takes whatever else is queued (the pushes that arrived while the
/// previous batch was committing), stores them in one statement, answers them all.
async fn writer(db_url: String, queue: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    // unnest of two arrays: one prepared statement serves every batch size.
    let insert = client
        .prepare(
            "INSERT INTO ceiling_events (key, openid) SELECT * FROM unnest($1::text[], $2::text[]) \
             ON CONFLICT (key) DO NOTHING",
        )
        .await?;
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            // Only one writer collects at a time; the other is committing meanwhile.
            let mut rx = queue.lock().await;
            if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return Ok(()); // every sender is gone: shutting down
            }
        }
        let (keys, openids): (Vec<&str>, Vec<&str>) = batch.iter().map(|(k, o, _)| (k.as_str(), o.as_str())).unzip();
        let ok = client.execute(&insert, &[&keys, &openids]).await.is_ok();
        for (_, _, done) in batch.drain(..) {
            let _ = done.send(ok);
        }
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bind = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18082".to_owned());
    let db_url = env_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagcast_bench");
    let writers: usize = env_or("CEILING_WRITERS", "2").parse()?;
    let key = env_or("WECHAT_ENCODING_AES_KEY", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR");
    let crypt = MsgCrypt::new(&key, &env_or("WECHAT_APPID", "wxbench000000001"))
        .map_err(|e| anyhow::anyhow!("WECHAT_ENCODING_AES_KEY: {e}"))?;
    let (setup, conn) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    setup
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS ceiling_events (key text PRIMARY KEY, openid text NOT NULL, \
             received_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    drop(setup);

    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..writers.max(1) {
        let (url, rx) = (db_url.clone(), rx.clone());
        tokio::spawn(async move {
            if let Err(e) = writer(url, rx).await {
                eprintln!("durable_ceiling: writer stopped: {e}");
                std::process::exit(1);
            }
        });
    }
    let state = web::Data::new(Ceiling { token: env_or("WECHAT_TOKEN", "benchtoken"), crypt, queue: tx });
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route("/wechat", web::post().to(wechat))
            .route("/healthz", web::get().to(healthz))
    })
    .bind(&bind)?
    .run()
    .await?;
    Ok(())
}
