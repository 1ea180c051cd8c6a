//! Load generator of bench/auth/run.sh (issue 15 point 1): wrong passwords with random usernames
//! from many connections, half by HTTP Basic on `/api/v1`, half by the login form (with its CSRF
//! token), while one correct sign-in is timed. Prints one `key=value` line per figure.
//!
//!   bench_auth <base URL> <idle user> <user> <password> [attempts] [connections]
//!
//! `idle user` signs in before the flood (the baseline), `user` during it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn csrf_of(body: &str) -> Option<String> {
    let start = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

/// A client with its own cookie jar and connection, signed-out, holding the login form's token.
async fn login_form(base: &str) -> Result<(reqwest::Client, String), Error> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()?;
    let page = http.get(format!("{base}/admin/login")).send().await?.text().await?;
    let csrf = csrf_of(&page).ok_or("no CSRF token on the login page")?;
    Ok((http, csrf))
}

#[derive(Default)]
struct Counts {
    unauthorized: AtomicUsize,
    too_many: AtomicUsize,
    other: AtomicUsize,
}

impl Counts {
    fn add(&self, status: u16) {
        match status {
            401 => &self.unauthorized,
            429 => &self.too_many,
            _ => &self.other,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

async fn attacker(base: String, next: Arc<AtomicUsize>, total: usize, counts: Arc<Counts>) -> Result<(), Error> {
    let (http, csrf) = login_form(&base).await?;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return Ok(());
        }
        let username = format!("guess-{:016x}", rand::thread_rng().r#gen::<u64>());
        let status = if i % 2 == 0 {
            http.get(format!("{base}/api/v1/tags")).basic_auth(&username, Some("wrong password")).send().await?.status()
        } else {
            let form = [("username", username.as_str()), ("password", "wrong password"), ("csrf", csrf.as_str())];
            http.post(format!("{base}/admin/login")).form(&form).send().await?.status()
        };
        counts.add(status.as_u16());
    }
}

/// What a person signing in waited: the login page, the form post, the board, and the attempts.
struct SignInTimes {
    page: Duration,
    post: Duration,
    board: Duration,
    attempts: usize,
}

/// Signs in as a person would, retrying after `Retry-After` when told to.
async fn real_sign_in(base: &str, user: &str, password: &str) -> Result<SignInTimes, Error> {
    let started = Instant::now();
    let (http, csrf) = login_form(base).await?;
    let page = started.elapsed();
    for attempt in 1..=10 {
        let form = [("username", user), ("password", password), ("csrf", csrf.as_str())];
        let posted = Instant::now();
        let response = http.post(format!("{base}/admin/login")).form(&form).send().await?;
        match response.status().as_u16() {
            303 => {
                let post = posted.elapsed();
                let shown = Instant::now();
                let board = http.get(format!("{base}/admin")).send().await?.status();
                if board != 200 {
                    return Err(format!("signed in, but the board answered {board}").into());
                }
                return Ok(SignInTimes { page, post, board: shown.elapsed(), attempts: attempt });
            }
            429 => {
                let wait =
                    response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            other => return Err(format!("the correct sign-in answered {other}").into()),
        }
    }
    Err("the correct sign-in was refused ten times".into())
}

fn print_times(name: &str, t: &SignInTimes) {
    println!(
        "{name}_ms: login page {} + form post {} + board {} = {} ({} attempt(s))",
        t.page.as_millis(),
        t.post.as_millis(),
        t.board.as_millis(),
        (t.page + t.post + t.board).as_millis(),
        t.attempts
    );
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, idle_user, user, password, rest @ ..] = args.as_slice() else {
        return Err("usage: bench_auth <base URL> <idle user> <user> <password> [attempts] [connections]".into());
    };
    // Two users with one password: the second one's check is not in the verified-password memory.
    let idle = real_sign_in(base, idle_user, password).await?;
    print_times("idle_sign_in", &idle);
    let total: usize = rest.first().map_or(Ok(2000), |v| v.parse())?;
    let connections: usize = rest.get(1).map_or(Ok(64), |v| v.parse())?;
    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let attackers: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(attacker(base.clone(), Arc::clone(&next), total, Arc::clone(&counts))))
        .collect();
    // Once a tenth of the flood is sent (it lasts well under a second when most is refused).
    while next.load(Ordering::Relaxed) < total / 10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let sent_before = next.load(Ordering::Relaxed).min(total);
    let sign_in = real_sign_in(base, user, password).await;
    let sent_after = next.load(Ordering::Relaxed).min(total);
    for attacker in attackers {
        attacker.await??;
    }
    let elapsed = started.elapsed();
    println!("attempts={total}");
    println!("connections={connections}");
    println!("attack_secs={:.1}", elapsed.as_secs_f64());
    println!("answered_401={}", counts.unauthorized.load(Ordering::Relaxed));
    println!("answered_429={}", counts.too_many.load(Ordering::Relaxed));
    println!("answered_other={}", counts.other.load(Ordering::Relaxed));
    match sign_in {
        Ok(times) => {
            println!("correct_sign_in=ok");
            print_times("correct_sign_in", &times);
            println!("attack_attempts_sent_during_sign_in={}", sent_after - sent_before);
        }
        Err(error) => println!("correct_sign_in=failed ({error})"),
    }
    Ok(())
}
