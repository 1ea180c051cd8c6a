//! How the admin pages fail: every status code of `/admin` is chosen here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

/// Why an admin page could not be shown or a form not accepted. Validation problems are not
/// errors: the page is shown again with the message beside the form.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("not signed in")]
    NotSignedIn,
    #[error("the role may not do this")]
    Forbidden,
    #[error("the form's CSRF token is missing or stale")]
    Csrf,
    #[error("malformed request")]
    BadRequest,
    #[error("the request holds a character the database cannot store")]
    BadCharacters,
    #[error("the form is larger than the admin pages accept")]
    TooLarge,
    #[error("no such page or object")]
    NotFound,
    #[error("the object belongs to another account")]
    OtherAccount,
    #[error("the form was shown for another account than the one now chosen")]
    AccountSwitched,
    #[error("the user holds no account")]
    NoAccount,
    #[error("no database connection")]
    Pool(#[source] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[source] tokio_postgres::Error),
    #[error("rendering the page failed")]
    Render(#[source] askama::Error),
    #[error("internal error")]
    Internal,
}

impl AdminError {
    pub fn pool(error: deadpool_postgres::PoolError) -> Self {
        Self::Pool(error)
    }

    pub fn query(error: tokio_postgres::Error) -> Self {
        Self::Query(error)
    }
}

impl From<deadpool_postgres::PoolError> for AdminError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::Pool(error)
    }
}

impl From<tokio_postgres::Error> for AdminError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Query(error)
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl AdminError {
    /// A NUL (or other byte PostgreSQL's text refuses) reached a statement from a field, a query
    /// parameter or a path: the input is bad, not the server.
    fn is_unstorable_input(&self) -> bool {
        matches!(self, Self::Query(e) if e.code() == Some(&tokio_postgres::error::SqlState::CHARACTER_NOT_IN_REPERTOIRE))
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        if self.is_unstorable_input() {
            return StatusCode::BAD_REQUEST;
        }
        match self {
            Self::NotSignedIn => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf | Self::OtherAccount | Self::NoAccount => StatusCode::FORBIDDEN,
            Self::BadRequest | Self::BadCharacters => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AccountSwitched => StatusCode::CONFLICT,
            Self::Pool(_) | Self::Query(_) | Self::Render(_) | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let too_large = format!(
            "提交的内容超过 {} KiB，未被接受。请缩短内容（例如把配置文件分成几份分别导入）后重试。",
            super::MAX_FORM_BYTES / 1024
        );
        let bad_characters = (
            "含有无法保存的字符",
            "提交的内容（或网址）含有空字符等无法保存的字符。请删除这些字符（常见于从其他软件复制来的文字）后重试。",
        );
        let (title, message) = match self {
            _ if self.is_unstorable_input() => bad_characters,
            Self::BadCharacters => bad_characters,
            Self::NotSignedIn => {
                return HttpResponse::SeeOther().insert_header(("Location", "/admin/login")).finish();
            }
            Self::Forbidden => ("无权操作", "你的角色不能访问这个页面或执行这个操作。如需权限，请联系管理员。"),
            Self::Csrf => ("表单已过期", "表单的安全令牌无效或已过期。请返回上一页，刷新后再提交。"),
            Self::BadRequest => ("请求无效", "提交的内容无法识别，请返回检查后重试。"),
            Self::TooLarge => ("表单过大", too_large.as_str()),
            Self::NotFound => ("找不到页面", "你要找的页面或对象不存在，可能已被删除。"),
            Self::NoAccount => (
                "没有可用的公众号",
                "你的用户还没有任何公众号的权限，已自动退出登录。请联系部署管理员在「用户」页为你分配公众号和角色，然后重新登录。",
            ),
            Self::AccountSwitched => (
                "公众号已切换",
                "这个页面是在另一个公众号下打开的，之后你（可能在其他窗口）切换了公众号。为避免改错公众号，这次提交没有执行。请重新打开页面，确认页面顶部的公众号后再提交。",
            ),
            Self::OtherAccount => (
                "不属于当前公众号",
                "这个对象属于另一个公众号。如果你在那个公众号有权限，请先在页面顶部切换公众号再打开。",
            ),
            Self::Pool(_) | Self::Query(_) | Self::Render(_) | Self::Internal => {
                tracing::error!(error = ?self, "an admin page failed");
                ("服务器出错", "服务器暂时无法完成请求，请稍后重试；若持续出现，请联系技术人员查看日志。")
            }
        };
        let body = ErrorPage { title, message }.render().unwrap_or_else(|_| title.to_owned());
        HttpResponse::build(self.status_code()).content_type("text/html; charset=utf-8").body(body)
    }
}
