//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of `/api/v1`, generated from the
//! handlers' `#[utoipa::path]` and the request and response types. Served without auth, so
//! tools can read it before they hold a token. A test checks that every call of
//! [`super::routes`] is described.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

use super::{accounts, admins, campaigns, drafts, events, quizzes, quota, rules, segments, tags, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tagcast API",
        description = "Tags, rules, quizzes, followers, orders, segments and campaigns of the WeChat \
            Official Accounts of a deployment. A call works on the account named in the `Tagcast-Account` \
            header (the first account when absent; `404 not_found` for an unknown name, `403 forbidden` \
            for an account the caller holds no role on). Every non-2xx answer is `{\"error\": {\"code\", \"message\"}}`; unknown \
            fields in a body are refused with `400 invalid_request`."
    ),
    paths(
        accounts::list_accounts, accounts::create_account, accounts::update_account,
        admins::create_admin, admins::list_admins, admins::set_roles,
        tags::create_tag, tags::list_tags, tags::get_tag, tags::delete_tag, tags::rename_tag, campaigns::tag_health,
        rules::create_rule, rules::list_rules, rules::delete_rule,
        quizzes::save_quiz, quizzes::list_quizzes,
        users::get_user, users::erase_user,
        events::record_events,
        segments::create_segment, segments::preview_segment, segments::get_segment, segments::list_segment_members,
        campaigns::create_campaign, campaigns::list_campaigns, campaigns::compare_strategies, campaigns::get_campaign,
        campaigns::create_link, campaigns::send_campaign, campaigns::approve_campaign, campaigns::reject_campaign,
        campaigns::cancel_campaign,
        campaigns::preview_campaign,
        quota::get_quota, quota::clear_quota,
        drafts::list_drafts,
    ),
    modifiers(&Common),
    security(("bearer" = []), ("basic" = [])),
)]
pub struct ApiDoc;

/// What every call shares: the two ways in, and the errors any call can answer.
struct Common;

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
        .build()
}

impl utoipa::Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("TAGCAST_API_TOKEN")).build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Basic).description(Some("an admin user")).build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            let has_params = !item.parameters.as_ref().is_none_or(Vec::is_empty);
            for operation in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                operation.parameters.get_or_insert_with(Vec::new).push(account_header());
                let takes_input = has_params
                    || operation.request_body.is_some()
                    || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let responses = &mut operation.responses.responses;
                if takes_input {
                    responses
                        .entry("400".to_owned())
                        .or_insert_with(|| error_response("`invalid_request`: the input is malformed").into());
                }
                responses.entry("401".to_owned()).or_insert_with(|| {
                    error_response(
                        "`unauthorized`, or `locked`: this user failed too often from this address (`Retry-After`)",
                    )
                    .into()
                });
                responses.entry("403".to_owned()).or_insert_with(|| {
                    error_response(
                        "`forbidden`: the caller's role may not do this, or the caller holds no role on the account",
                    )
                    .into()
                });
                responses.entry("404".to_owned()).or_insert_with(|| {
                    error_response("`not_found`: no account has the name given in `Tagcast-Account`").into()
                });
                responses.entry("429".to_owned()).or_insert_with(|| {
                    error_response(
                        "`too_many_requests`: too many password checks at once; retry after `Retry-After` seconds",
                    )
                    .into()
                });
                responses.entry("503".to_owned()).or_insert_with(|| {
                    error_response("`unavailable`: the database is not answering; try again").into()
                });
            }
        }
    }
}

/// `Tagcast-Account`: which account a call works on.
fn account_header() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, Type};
    ParameterBuilder::new()
        .name(super::ACCOUNT_HEADER)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The account's name (see `GET /accounts`); the first account when absent. `GET /accounts` ignores it.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// The description as served; built once.
pub static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serializes"));

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_call_is_described() {
        let document: serde_json::Value = serde_json::from_str(&DOCUMENT).expect("JSON");
        let mut missing = Vec::new();
        for call in super::super::routes() {
            let path = format!("/api/v1{}", call.path);
            let method = call.method.as_str().to_lowercase();
            if document["paths"][&path][&method].is_null() {
                missing.push(format!("{method} {path}"));
            }
        }
        assert!(missing.is_empty(), "not in openapi.json: {missing:?}");
    }

    #[test]
    fn nothing_is_described_that_is_not_served() {
        let document: serde_json::Value = serde_json::from_str(&DOCUMENT).expect("JSON");
        let served: Vec<(String, String)> = super::super::routes()
            .iter()
            .map(|c| (c.method.as_str().to_lowercase(), format!("/api/v1{}", c.path)))
            .collect();
        let paths = document["paths"].as_object().expect("paths");
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys().filter(|k| *k != "parameters") {
                assert!(served.contains(&(method.clone(), path.clone())), "{method} {path} is described, not served");
            }
        }
    }

    #[test]
    fn errors_have_the_contract_shape_and_both_schemes_are_offered() {
        let document: serde_json::Value = serde_json::from_str(&DOCUMENT).expect("JSON");
        let error = &document["components"]["schemas"]["ErrorDetail"];
        assert_eq!(error["required"], serde_json::json!(["code", "message"]));
        let schemes = &document["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["basic"]["scheme"], "basic");
        let unauthorized = &document["paths"]["/api/v1/tags"]["get"]["responses"]["401"];
        assert_eq!(unauthorized["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody");
    }
}
