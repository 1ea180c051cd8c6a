//! 预测: the purchase model (issue 21) as the operator sees it — the latest run's verdict in plain
//! words, its figures beside the RFM baseline's on the same held-out week, the reliability chart,
//! what drives the score, every run as a history, and 立即重新训练. Scores are offered for tags
//! and segments (`score(purchase_7d) >= 0.6`) only while the latest finished run is trusted.

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde_json::Value;

use super::high_potential::HighPotentialView;
use super::{audit, refused, show_time};
use crate::app::predictions::PURCHASE_MODEL;
use crate::store;
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Empty, Layout, render, see_other};

/// Runs listed in the history.
const HISTORY: i64 = 30;

pub struct RunView {
    pub started: String,
    pub requested_by: String,
    pub status: &'static str,
    pub verdict: &'static str,
    pub verdict_class: &'static str,
    pub message: String,
    pub model_auc: String,
    pub baseline_auc: String,
    pub scored: i32,
}

/// One line of the model-against-baseline table.
pub struct FigureRow {
    pub name: &'static str,
    pub hint: &'static str,
    pub model: String,
    pub baseline: String,
}

pub struct BinView {
    pub predicted: String,
    pub observed: String,
    pub count: u64,
    /// Bar widths in percent of the chart.
    pub predicted_width: u32,
    pub observed_width: u32,
}

#[derive(Template)]
#[template(path = "admin/predictions/index.html")]
struct PredictionsPage {
    layout: Layout,
    may_train: bool,
    waiting: bool,
    latest: Option<RunView>,
    figures: Vec<FigureRow>,
    bins: Vec<BinView>,
    drivers: Vec<(String, &'static str)>,
    trusted: bool,
    scored: i64,
    expected: String,
    history: Vec<RunView>,
    hp: HighPotentialView,
}

fn number(v: &Value, digits: usize) -> String {
    v.as_f64().map_or_else(|| "—".to_owned(), |n| format!("{n:.digits$}"))
}

fn run_view(run: &store::predictions::RunRow) -> RunView {
    let (verdict, verdict_class) = match run.verdict.as_deref() {
        Some("trusted") => ("可信", "good"),
        Some("not_better_than_baseline") => ("不如基线", "warn"),
        Some("too_little_history") => ("数据不足", "warn"),
        _ => ("—", ""),
    };
    let status = match run.status.as_str() {
        "running" => "训练中",
        "done" => "完成",
        _ => "失败",
    };
    let message = match (&run.verdict_zh, &run.error) {
        (Some(message), _) => message.clone(),
        (None, Some(_)) => "这次训练出错了，系统会自动重试；如果一直失败，请联系技术人员查看日志。".to_owned(),
        (None, None) => "正在训练，请稍后刷新。".to_owned(),
    };
    RunView {
        started: show_time(run.started_at),
        requested_by: if run.requested_by == "system" { "每日自动".to_owned() } else { run.requested_by.clone() },
        status,
        verdict,
        verdict_class,
        message,
        model_auc: number(&run.figures["model"]["auc"], 3),
        baseline_auc: number(&run.figures["baseline"]["auc"], 3),
        scored: run.scored,
    }
}

fn figure_rows(figures: &Value) -> Vec<FigureRow> {
    let (m, b) = (&figures["model"], &figures["baseline"]);
    if m.is_null() {
        return Vec::new();
    }
    // (name, hint, field of the metrics, how shown: decimals, or None for a percentage)
    const ROWS: [(&str, &str, &str, Option<usize>); 4] = [
        (
            "AUC",
            "随机挑一位下单的和一位没下单的粉丝，模型给前者更高分的概率；0.5 等于瞎猜，越接近 1 越好",
            "auc",
            Some(3),
        ),
        ("前 10% 的下单比例", "得分最高的 10% 粉丝中，随后 7 天真的下单的比例", "precision_top10", None),
        ("前 10% 的提升倍数", "上一行除以全体粉丝的下单比例：比随机挑人好几倍", "lift_top10", Some(1)),
        ("Brier 分数", "预测概率与实际结果的平均平方差，越小越好", "brier", Some(4)),
    ];
    let show = |v: &Value, digits: Option<usize>| match digits {
        Some(digits) => number(v, digits),
        None => v.as_f64().map_or_else(|| "—".to_owned(), |n| format!("{:.1}%", n * 100.0)),
    };
    ROWS.iter()
        .map(|&(name, hint, field, digits)| FigureRow {
            name,
            hint,
            model: show(&m[field], digits),
            baseline: show(&b[field], digits),
        })
        .collect()
}

fn bins(figures: &Value) -> Vec<BinView> {
    let Some(bins) = figures["model"]["reliability"].as_array() else { return Vec::new() };
    let top = bins
        .iter()
        .flat_map(|b| [b["predicted"].as_f64().unwrap_or(0.0), b["observed"].as_f64().unwrap_or(0.0)])
        .fold(0.0_f64, f64::max)
        .max(0.01);
    bins.iter()
        .filter(|b| b["count"].as_u64().unwrap_or(0) > 0)
        .map(|b| {
            let (p, o) = (b["predicted"].as_f64().unwrap_or(0.0), b["observed"].as_f64().unwrap_or(0.0));
            BinView {
                predicted: format!("{:.1}%", p * 100.0),
                observed: format!("{:.1}%", o * 100.0),
                count: b["count"].as_u64().unwrap_or(0),
                predicted_width: ((p / top) * 100.0).round() as u32,
                observed_width: ((o / top) * 100.0).round() as u32,
            }
        })
        .collect()
}

pub async fn predictions_page(user: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AdminError> {
    let status = crate::app::high_potential::status(&pool.get().await?, user.account).await?;
    page(&user, &pool, HighPotentialView::saved(&status)).await
}

/// The page with the 高潜力客户 section `hp` (as saved, or as typed before a refusal).
pub(super) async fn page(user: &AdminUser, pool: &Pool, hp: HighPotentialView) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let runs = store::predictions::list_runs(&client, user.account, PURCHASE_MODEL, HISTORY).await?;
    let latest_done = runs.iter().find(|r| r.status == "done");
    let trusted = latest_done.is_some_and(|r| r.verdict.as_deref() == Some("trusted"));
    let (scored, expected) = store::predictions::score_totals(&client, user.account, PURCHASE_MODEL).await?;
    // A run still "running" hours later died with its worker: it no longer holds the button.
    let stuck_after = chrono::Utc::now() - chrono::TimeDelta::hours(2);
    let waiting = store::jobs::is_pending(&client, user.account, crate::domain::job::JobKind::TrainPredictions).await?
        || runs.first().is_some_and(|r| r.status == "running" && r.started_at > stuck_after);
    let drivers = latest_done
        .and_then(|r| r.figures["weights"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|w| {
            let up = w["weight"].as_f64().unwrap_or(0.0) >= 0.0;
            (
                w["feature"].as_str().unwrap_or_default().to_owned(),
                if up { "越多越可能下单" } else { "越多越不可能下单" },
            )
        })
        .collect();
    render(&PredictionsPage {
        layout: user.layout("predictions"),
        may_train: user.role.may_approve(),
        waiting,
        latest: latest_done.map(run_view),
        figures: latest_done.map(|r| figure_rows(&r.figures)).unwrap_or_default(),
        bins: latest_done.map(|r| bins(&r.figures)).unwrap_or_default(),
        drivers,
        trusted,
        scored,
        expected: format!("{expected:.0}"),
        history: runs.iter().map(run_view).collect(),
        hp,
    })
}

/// 立即重新训练: queues a run (admins and approvers: it takes a core for minutes on a large account).
pub async fn train_now(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_approve())?;
    let queued = crate::app::predictions::queue_run(&pool.get().await?, user.account, &user.username).await?;
    if queued {
        audit(&pool, &user, "train", "prediction", PURCHASE_MODEL, serde_json::json!({})).await?;
        user.flash("已开始重新训练：训练在后台进行，通常几分钟内完成，完成后刷新本页查看成绩。");
    } else {
        user.flash("已有一次训练在排队或进行中，请等它完成后再试。");
    }
    Ok(see_other("/admin/predictions"))
}

/// 启用/保存 高潜力客户 (the section's form); a refused form shows this page again with why.
pub async fn save_high_potential(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    match super::high_potential::save(&user, &pool, pairs).await? {
        Ok(saved) => Ok(saved),
        Err(view) => refused(page(&user, &pool, view).await),
    }
}
