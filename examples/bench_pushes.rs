//! Generates safe-mode (encrypted) text pushes for `bench/callback`: wrk's Lua cannot do AES, so
//! the ciphertexts are made here, with tagcast's own `MsgCrypt`, and the Lua script replays them.
//!
//! Each line is one distinct text message (its own sender and `MsgId`), written as
//!
//! ```text
//! <openid> <Encrypt>                                        (default: Lua signs each request)
//! <openid> <Encrypt> <timestamp> <nonce> <signature> <msg_signature>   (--presign TOKEN)
//! ```
//!
//! fields separated by one space (base64 has none). With `--presign` the signatures are computed
//! here with `timestamp` = now, so the file must be used within tagcast's replay window (600 s).
//!
//! Usage: `bench_pushes --out FILE --count N --tag T [--presign TOKEN] [--content TEXT]`; key and appid come from
//! `WECHAT_ENCODING_AES_KEY` / `WECHAT_APPID` (the bench's values by default). `--tag` must differ
//! between files replayed against the same database: senders and MsgIds are derived from it.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Parser;
use tagcast::wechat::crypto::MsgCrypt;
use tagcast::wechat::signature;

const DEFAULT_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const DEFAULT_APPID: &str = "wxbench000000001";
const ACCOUNT: &str = "gh_benchaccount";

#[derive(Parser)]
struct Args {
    /// Where to write the pushes, one per line.
    #[arg(long)]
    out: PathBuf,
    /// How many pushes.
    #[arg(long, default_value_t = 300_000)]
    count: u64,
    /// 1 to 99999; makes senders and MsgIds distinct from other files' (and from the Lua
    /// script's, which uses its own tags).
    #[arg(long)]
    tag: u32,
    /// Also compute `signature` and `msg_signature` with this token (timestamp = now).
    #[arg(long)]
    presign: Option<String>,
    /// The text every message carries (e.g. a keyword with an auto-reply rule); default
    /// `bench safe-mode message <n>`, which matches no rule.
    #[arg(long)]
    content: Option<String>,
    #[arg(long, env = "WECHAT_ENCODING_AES_KEY", default_value = DEFAULT_KEY)]
    key: String,
    #[arg(long, env = "WECHAT_APPID", default_value = DEFAULT_APPID)]
    appid: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!((1..=99_999).contains(&args.tag), "--tag must be 1..=99999");
    let crypt = MsgCrypt::new(&args.key, &args.appid).map_err(|e| anyhow::anyhow!("bad key: {e}"))?;
    let now = chrono::Utc::now().timestamp();
    let ts = now.to_string();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&args.out)?);
    for n in 0..args.count {
        // Same shapes as the Lua script's: 28-character openid, MsgId = tag then 12 digits.
        let openid = format!("oBnch{:05}{:018}", args.tag, n);
        let msg_id = format!("{}{:012}", args.tag, n);
        let content = match &args.content {
            Some(text) => text.clone(),
            None => format!("bench safe-mode message {n}"),
        };
        let xml = format!(
            "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
             <CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        );
        let encrypt = crypt.encrypt(xml.as_bytes());
        match &args.presign {
            None => writeln!(out, "{openid} {encrypt}")?,
            Some(token) => {
                let nonce = format!("{}{n}", args.tag);
                let sig = signature::sign(&[token, &ts, &nonce]);
                let msg_sig = signature::sign(&[token, &ts, &nonce, &encrypt]);
                writeln!(out, "{openid} {encrypt} {ts} {nonce} {sig} {msg_sig}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
