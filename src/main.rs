use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use tagcast::app::playbook::PlaybookError;
use tagcast::cli::{Cli, Command, MockWechatArgs, PlaybookAccounts, PlaybookCommand};
use tagcast::config::Settings;
use tagcast::domain::account::AccountId;
use tagcast::startup::Application;

/// Prints an error and its causes on one line, as an operator reads it at start-up. A cause
/// whose words already end the line is not said twice: typed errors keep their cause as the
/// source *and* in their own text (the API shows only the text).
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !line.ends_with(&said) {
            line.push_str(": ");
            line.push_str(&said);
        }
        source = cause.source();
    }
    line
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::MockWechat(args) = cli.command {
        tagcast::telemetry::init();
        return match mock_wechat(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("tagcast: {}", one_line(error.as_ref()));
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("tagcast: {error}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Command::Playbook(_)) {
        tagcast::telemetry::init_stderr();
    } else {
        tagcast::telemetry::init();
    }
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Migrate { finish: false } => {
            tagcast::store::prepare_database(&settings.database_url).await.map_err(Into::into)
        }
        Command::Migrate { finish: true } => {
            tagcast::store::database::finish_upgrade(&settings.database_url).await.map_err(Into::into)
        }
        Command::Serve => serve(settings).await,
        Command::Sync { account } => sync(settings, account).await,
        Command::Playbook(command) => return playbook(settings, command).await,
        Command::MockWechat(_) => unreachable!("handled before settings are read"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tagcast: {}", one_line(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(settings.clone()).await?;
    let base = format!("http://{}:{}", settings.bind.ip(), app.port());
    if let Some(demo) = app.demo() {
        tracing::info!(
            "demo mode (no WECHAT_APPID/WECHAT_APPSECRET set): mock WeChat API at {}; {} generated followers; \
             the callback accepts pushes signed with the token `{}`",
            demo.running.url(),
            tagcast::startup::demo::DEMO_FOLLOWERS,
            tagcast::config::DEMO_TOKEN,
        );
        let login = if settings.admin_password.is_some() {
            "admin / the TAGCAST_ADMIN_PASSWORD you set".to_owned()
        } else {
            format!("{} / {}", tagcast::startup::demo::DEMO_ADMIN_USER, tagcast::startup::demo::DEMO_ADMIN_PASSWORD)
        };
        println!("tagcast demo: admin page {base}/admin  (login: {login})");
    }
    tracing::info!("tagcast listening on {base}; WeChat callback URL: {base}/wechat");
    app.run_until_stopped().await?;
    Ok(())
}

async fn sync(settings: Settings, account: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    const DEMO: &str = "WECHAT_APPID: sync imports from a real account (or a mock-wechat at WECHAT_API_BASE); set WECHAT_APPID and WECHAT_APPSECRET";
    tagcast::store::prepare_database(&settings.database_url).await?;
    let pool = tagcast::store::connect_pool(&settings.database_url, 2).await?;
    // Without --account, the first account's client is built from the environment as before accounts.
    let target = match account {
        None if settings.is_demo() => return Err(DEMO.into()),
        None => None,
        Some(name) => {
            let accounts =
                tagcast::startup::load_accounts(&settings, &pool, tagcast::wechat::api::ApiMetrics::default()).await?;
            let live = accounts.by_name(&name).ok_or_else(|| {
                let known: Vec<String> = accounts.all().iter().map(|a| a.name.clone()).collect();
                format!("--account {name}: no such account (the accounts are: {})", known.join(", "))
            })?;
            if live.from_env && settings.is_demo() {
                return Err(DEMO.into());
            }
            Some(live)
        }
    };
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = |p: &tagcast::app::sync::SyncProgress| {
        let line = match p.phase {
            tagcast::store::sync::SyncPhase::Followers => match p.followers_total {
                Some(total) => format!("followers {}/{total}", p.followers_imported),
                None => format!("followers {}", p.followers_imported),
            },
            _ => format!("followers {} · tags {}/{}", p.followers_imported, p.tags_done, p.tags_total),
        };
        if on_terminal {
            eprint!("\r\x1b[2Ksync: {line}");
        } else {
            eprintln!("sync: {line}");
        }
    };
    let report = match &target {
        None => {
            let api = tagcast::startup::api_client(&settings, &pool).ok_or("WECHAT_APPSECRET: not set")?;
            tagcast::app::sync::run_sync(&pool, &api, progress).await?
        }
        Some(live) => tagcast::app::sync::run(&pool, live, progress).await?,
    };
    if on_terminal {
        eprintln!();
    }
    println!(
        "sync: {} followers and {} tags imported{}; {} no longer following; {} drafts listed",
        report.followers,
        report.tags,
        if report.resumed { " (resumed)" } else { "" },
        report.marked_unsubscribed,
        report.drafts
    );
    Ok(())
}

/// `playbook check` and `playbook apply`: a playbook's problems go to stderr one per line, exit 1.
async fn playbook(settings: Settings, command: PlaybookCommand) -> ExitCode {
    let result = match &command {
        PlaybookCommand::Check { file, accounts } => playbook_check(&settings, file, accounts).await,
        PlaybookCommand::Apply { file, accounts } => playbook_apply(&settings, file, accounts).await,
    };
    let Err(error) = result else { return ExitCode::SUCCESS };
    match error.downcast_ref::<PlaybookError>() {
        Some(PlaybookError::Invalid(problems)) => eprintln!("{problems}"),
        _ => eprintln!("tagcast: {}", one_line(error.as_ref())),
    }
    ExitCode::FAILURE
}

fn print_warnings(file: &str, warnings: &[tagcast::domain::playbook::Problem]) {
    for warning in warnings {
        eprintln!("{file}:{}: warning: {}", warning.line, warning.message);
    }
}

/// Whether the command line names accounts, so the database must be asked which they are.
fn names_accounts(accounts: &PlaybookAccounts) -> bool {
    accounts.all_accounts || !accounts.accounts.is_empty()
}

async fn playbook_check(
    settings: &Settings,
    file: &Path,
    accounts: &PlaybookAccounts,
) -> Result<(), Box<dyn std::error::Error>> {
    let name = file.display().to_string();
    let source = tagcast::app::playbook::read(file)?;
    // Without `--account` the database is asked only for quizzes (and never migrated), as before accounts.
    let targets = if names_accounts(accounts) {
        let pool = tagcast::store::connect_pool(&settings.database_url, 1).await?;
        tagcast::app::accounts::named(&pool, &accounts.accounts, accounts.all_accounts).await?
    } else {
        vec![(AccountId::FIRST, String::new())]
    };
    for (account, account_name) in &targets {
        let checked = tagcast::app::playbook::check(&settings.database_url, *account, &name, &source).await?;
        print_warnings(&name, &checked.warnings);
        if targets.len() > 1 {
            println!("{account_name}: ok: {}", checked.summary());
        } else {
            println!("ok: {}", checked.summary());
        }
    }
    Ok(())
}

/// Applies the file to each account in turn, one transaction each; stops at the first that fails,
/// saying which were applied.
async fn playbook_apply(
    settings: &Settings,
    file: &Path,
    accounts: &PlaybookAccounts,
) -> Result<(), Box<dyn std::error::Error>> {
    let name = file.display().to_string();
    // Read first: a mistyped path should not create or migrate a database.
    let source = tagcast::app::playbook::read(file)?;
    tagcast::store::prepare_database(&settings.database_url).await?;
    let pool = tagcast::store::connect_pool(&settings.database_url, 2).await?;
    let targets = tagcast::app::accounts::named(&pool, &accounts.accounts, accounts.all_accounts).await?;
    let several = targets.len() > 1;
    let mut done: Vec<&str> = Vec::new();
    for (account, account_name) in &targets {
        if several {
            println!("== {account_name}");
        }
        let applied = match tagcast::app::playbook::apply_to(&pool, *account, &name, &source).await {
            Ok(applied) => applied,
            Err(error) => {
                if several {
                    eprintln!(
                        "tagcast: {account_name}: not applied; applied before it: {}",
                        if done.is_empty() { "none".to_owned() } else { done.join(", ") }
                    );
                }
                return Err(error.into());
            }
        };
        print_warnings(&name, &applied.warnings);
        for change in &applied.changes {
            println!("{change}");
        }
        println!("{}", applied.summary());
        done.push(account_name);
    }
    Ok(())
}

async fn mock_wechat(args: MockWechatArgs) -> Result<(), Box<dyn std::error::Error>> {
    use tagcast::mock_wechat::{CallbackTarget, MockAccountType, MockConfig, MockWeChat};
    let mock = MockWeChat::new(MockConfig {
        appid: args.appid,
        secret: args.secret,
        account_type: if args.subscription { MockAccountType::Subscription } else { MockAccountType::Service },
        callback: args.callback.map(|url| CallbackTarget {
            url,
            token: args.token.unwrap_or_else(|| tagcast::config::DEMO_TOKEN.to_owned()),
            encoding_aes_key: args.aes_key,
            account_id: args.account_id,
        }),
    });
    if args.seed > 0 {
        mock.seed_followers(args.seed);
    }
    let listener = std::net::TcpListener::bind(args.bind)?;
    let running = mock.start(listener)?;
    println!("mock WeChat API listening on {} ({} followers)", running.url(), args.seed);
    tokio::signal::ctrl_c().await?;
    running.handle.stop(true).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("the start-up admin could not be created")]
        Context(#[source] Inner),
    }

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("{0}")]
        Wrapped(#[source] Leaf),
        #[error("password: {0}")]
        Prefixed(#[source] Leaf),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("at most 1024 bytes")]
    struct Leaf;

    #[test]
    fn a_cause_already_in_the_text_is_said_once() {
        assert_eq!(
            one_line(&Outer::Context(Inner::Wrapped(Leaf))),
            "the start-up admin could not be created: at most 1024 bytes"
        );
        assert_eq!(
            one_line(&Outer::Context(Inner::Prefixed(Leaf))),
            "the start-up admin could not be created: password: at most 1024 bytes"
        );
    }
}
