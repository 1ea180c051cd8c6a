//! The 预测 page's 高潜力客户 section: the definition in plain words, its parameters in a form,
//! and 启用/保存 while the latest run is trusted. Any signed-in role may save it: it is a dynamic
//! tag's condition, which operators edit on the 标签 page too; retraining stays with admins and
//! approvers because it takes a core for minutes.

use actix_web::HttpResponse;
use deadpool_postgres::Pool;

use super::audit;
use crate::app::high_potential::{self, SaveError, Saved, Status};
use crate::domain::predict::high_potential::{Definition, IntentJoin, MAX_DAYS, TAG_PATH};
use crate::web::admin::{AdminError, AdminUser, see_other};

/// One intent tag's checkbox.
pub struct IntentBox {
    pub path: String,
    pub checked: bool,
}

/// The section as the template shows it.
pub struct HighPotentialView {
    pub trusted: bool,
    pub enabled: bool,
    pub members: i64,
    /// The definition saved, in a sentence; or why the tag's condition is no longer it.
    pub described: String,
    /// The tag's `when` was edited on the 标签 page: saving here replaces it.
    pub hand_edited: Option<String>,
    pub probability: String,
    pub days: String,
    pub required: bool,
    pub intents: Vec<IntentBox>,
    pub error: Option<String>,
    pub max_days: u32,
    pub path: &'static str,
}

impl HighPotentialView {
    /// The section for `status`, its form filled with `shown` (the saved definition, or what the
    /// operator typed before a refusal).
    fn new(status: &Status, shown: &Form, error: Option<String>) -> Self {
        let saved = status.definition.clone();
        let hand_edited = match (&status.tag, &saved) {
            (Some(tag), None) => tag.when_expr.clone().or_else(|| Some("（没有条件）".to_owned())),
            _ => None,
        };
        let described = saved.as_ref().map_or_else(|| Definition::default().describe_zh(), Definition::describe_zh);
        let mut intents: Vec<IntentBox> = status
            .intent_tags
            .iter()
            .map(|path| IntentBox { path: path.clone(), checked: shown.intents.contains(path) })
            .collect();
        // A chosen intent tag that was since deleted still shows, checked, so saving says so.
        for path in &shown.intents {
            if !status.intent_tags.contains(path) {
                intents.push(IntentBox { path: path.clone(), checked: true });
            }
        }
        Self {
            trusted: status.trusted,
            enabled: status.tag.is_some(),
            members: status.tag.as_ref().map_or(0, |t| t.members),
            described,
            hand_edited,
            probability: shown.probability.clone(),
            days: shown.days.clone(),
            required: shown.join == "required",
            intents,
            error,
            max_days: MAX_DAYS,
            path: TAG_PATH,
        }
    }

    /// The section with the saved definition (or the defaults) in the form.
    pub fn saved(status: &Status) -> Self {
        let def = status.definition.clone().unwrap_or_default();
        let form = Form {
            probability: def.probability_text(),
            days: def.days.to_string(),
            intents: def.intents.iter().map(|p| p.as_str().to_owned()).collect(),
            join: if def.join == IntentJoin::Required { "required" } else { "either" }.to_owned(),
        };
        Self::new(status, &form, None)
    }
}

/// The form's fields (repeated `intent` checkboxes, so read from the pairs).
#[derive(Default)]
struct Form {
    probability: String,
    days: String,
    intents: Vec<String>,
    join: String,
}

impl Form {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "probability" => form.probability = value,
                "days" => form.days = value,
                "intent" => form.intents.push(value),
                "join" => form.join = value,
                _ => {}
            }
        }
        form
    }
}

/// 启用/保存 高潜力客户: the redirect once saved, or (`Err`) the section to show again with why
/// it was refused; the 预测 page renders it.
pub(super) async fn save(
    user: &AdminUser,
    pool: &Pool,
    pairs: Vec<(String, String)>,
) -> Result<Result<HttpResponse, HighPotentialView>, AdminError> {
    let form = Form::from_pairs(pairs);
    let outcome = match Definition::from_form(&form.probability, &form.days, &form.intents, &form.join) {
        Ok(definition) => high_potential::save(pool, user.account, &definition, &user.username).await,
        Err(message) => return refuse(user, pool, &form, message).await,
    };
    let saved = match outcome {
        Ok(saved) => saved,
        Err(error @ (SaveError::NotTrusted | SaveError::UnknownIntent(_) | SaveError::Tagging(_))) => {
            return refuse(user, pool, &form, error.to_string()).await;
        }
        Err(SaveError::Pool(error)) => return Err(error.into()),
        Err(SaveError::Query(error)) => return Err(error.into()),
    };
    match &saved {
        Saved::Created { when, .. } => {
            let detail = serde_json::json!({ "when": when });
            audit(pool, user, "create", "tag", TAG_PATH, detail).await?;
            user.flash(format!(
                "已启用「{TAG_PATH}」：正在计算哪些粉丝符合，通常一两分钟内完成，之后每 5 分钟自动更新。"
            ));
        }
        Saved::Updated { id, from, when } => {
            let detail = serde_json::json!({ "path": TAG_PATH, "when_from": from, "when": when });
            audit(pool, user, "update", "tag", &id.to_string(), detail).await?;
            user.flash(format!("已保存「{TAG_PATH}」的新定义：正在重新计算，通常一两分钟内完成。"));
        }
        Saved::Unchanged => user.flash("定义没有变化，无需保存。"),
    }
    Ok(Ok(see_other("/admin/predictions#high-potential")))
}

async fn refuse(
    user: &AdminUser,
    pool: &Pool,
    form: &Form,
    message: String,
) -> Result<Result<HttpResponse, HighPotentialView>, AdminError> {
    let status = high_potential::status(&pool.get().await?, user.account).await?;
    Ok(Err(HighPotentialView::new(&status, form, Some(message))))
}
