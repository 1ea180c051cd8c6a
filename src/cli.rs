//! The command line (CONTRACT.md §1). Commands arrive with their issues.

use clap::{Parser, Subcommand};

/// tagcast: tag WeChat followers from what they do and reach the right ones.
#[derive(Debug, Parser)]
#[command(name = "tagcast", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pending migrations, then serve HTTP and run the background workers.
    Serve,
    /// Run pending migrations and exit.
    Migrate {
        /// Also drop what only the previous release needed (run once every instance runs this
        /// release; a second account can be created only after it). See docs/deploy.md §5.
        #[arg(long)]
        finish: bool,
    },
    /// Serve the stateful mock of the WeChat API (for tests and trying tagcast without an account).
    MockWechat(MockWechatArgs),
    /// Check or apply a playbook: tags, rules and quizzes declared in a TOML file.
    #[command(subcommand)]
    Playbook(PlaybookCommand),
    /// Import an account's followers and their WeChat tags (resumes an interrupted import).
    Sync {
        /// The account's name (see the console's 公众号 page); the first account when absent.
        #[arg(long)]
        account: Option<String>,
    },
}

/// Which accounts a playbook is applied to or checked against.
#[derive(Debug, Clone, clap::Args)]
pub struct PlaybookAccounts {
    /// An account's name; repeat to apply the same file to several accounts as a template (each
    /// gets its own copy). The first account when neither this nor `--all-accounts` is given.
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,
    /// Every account of the deployment.
    #[arg(long, conflicts_with = "accounts")]
    pub all_accounts: bool,
}

/// `tagcast playbook ...`
#[derive(Debug, Subcommand)]
pub enum PlaybookCommand {
    /// Report every problem of a playbook (`FILE:LINE: message`) without changing anything.
    Check {
        #[command(flatten)]
        accounts: PlaybookAccounts,
        /// The playbook (TOML).
        file: std::path::PathBuf,
    },
    /// Run pending migrations, then create or update what the playbook declares in each account
    /// (one transaction per account); prints each change.
    Apply {
        #[command(flatten)]
        accounts: PlaybookAccounts,
        /// The playbook (TOML).
        file: std::path::PathBuf,
    },
}

/// Options of `tagcast mock-wechat`; the account options read the same variables as `serve`.
#[derive(Debug, clap::Args)]
pub struct MockWechatArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub bind: std::net::SocketAddr,
    /// The AppID the mock accepts.
    #[arg(long, env = "WECHAT_APPID", default_value = "wxmock0000000001")]
    pub appid: String,
    /// The AppSecret the mock accepts.
    #[arg(long, env = "WECHAT_APPSECRET", default_value = "mocksecret", hide_env_values = true)]
    pub secret: String,
    /// Play a subscription account (订阅号) instead of a service account.
    #[arg(long)]
    pub subscription: bool,
    /// tagcast's callback URL, where MASSSENDJOBFINISH events are pushed (e.g. http://127.0.0.1:8080/wechat).
    #[arg(long)]
    pub callback: Option<String>,
    /// Token the pushes are signed with.
    #[arg(long, env = "WECHAT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// EncodingAESKey: when given, pushes go in safe mode.
    #[arg(long, env = "WECHAT_ENCODING_AES_KEY", hide_env_values = true)]
    pub aes_key: Option<String>,
    /// The account's original id (ToUserName of pushes).
    #[arg(long, default_value = "gh_mockaccount")]
    pub account_id: String,
    /// Generated followers to start with.
    #[arg(long, default_value_t = 0)]
    pub seed: usize,
}
