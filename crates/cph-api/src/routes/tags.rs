//! Tag routes (resource type `cph-server`).

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody, Q};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cph_service::tags::{InstancesInput, MatchInput, TagFilterInput, TagInput, tag_action};
use cph_wire as w;

fn tag((key, value): (String, String)) -> w::Tag {
    w::Tag { key, value }
}

pub async fn list_project_tags(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, resource_type)): Path<(String, String)>,
    Q(q): Q<w::ListProjectTagsQuery>,
) -> ApiResult<Json<w::ListProjectTagsResponse>> {
    let (keys, total) = st
        .service
        .list_project_tags(
            &ctx.caller,
            &resource_type,
            q.offset.as_deref(),
            q.limit.as_deref(),
        )
        .await?;
    Ok(Json(w::ListProjectTagsResponse {
        tags: keys
            .into_iter()
            .map(|k| w::Tags {
                key: k.key,
                values: k.values,
            })
            .collect(),
        total_count: Some(total as i32),
    }))
}

pub async fn list_resource_tags(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, resource_type, resource_id)): Path<(String, String, String)>,
) -> ApiResult<Json<w::ListResourceTagsResponse>> {
    let tags = st
        .service
        .list_resource_tags(&ctx.caller, &resource_type, &resource_id)
        .await?;
    Ok(Json(w::ListResourceTagsResponse {
        tags: tags.into_iter().map(tag).collect(),
    }))
}

pub async fn list_resource_instances(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, resource_type)): Path<(String, String)>,
    JsonBody(b): JsonBody<w::ListResourceInstancesRequestBody>,
) -> ApiResult<Json<w::ListResourceInstancesResponse>> {
    let input = InstancesInput {
        action: b.action,
        offset: b.offset,
        limit: b.limit,
        without_any_tag: b.without_any_tag,
        tags: b.tags.map(|ts| {
            ts.into_iter()
                .map(|t| TagFilterInput {
                    key: t.key,
                    values: t.values,
                })
                .collect()
        }),
        matches: b.matches.map(|ms| {
            ms.into_iter()
                .map(|m| MatchInput {
                    key: m.key,
                    value: m.value,
                })
                .collect()
        }),
    };
    let r = st
        .service
        .list_resource_instances(&ctx.caller, &resource_type, &input)
        .await?;
    Ok(Json(w::ListResourceInstancesResponse {
        resources: r
            .resources
            .into_iter()
            .map(|res| w::Resource {
                resource_id: res.resource_id,
                resource_detail: None,
                resource_name: res.resource_name,
                tags: res.tags.into_iter().map(tag).collect(),
            })
            .collect(),
        total_count: r.total_count as i32,
    }))
}

/// BatchCreateTags and BatchDeleteTags share this route; `action` tells them apart, and the
/// authorization of the operation it names is checked here. Both answer 204 without a body.
pub async fn tags_action(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, resource_type, resource_id)): Path<(String, String, String)>,
    JsonBody(b): JsonBody<w::TagsActionBody>,
) -> ApiResult<StatusCode> {
    let action = tag_action(b.action.as_deref())?;
    st.service
        .authorize(&ctx.caller, crate::ops::action_of(action.operation()))
        .await?;
    let tags: Option<Vec<TagInput>> = b.tags.map(|ts| {
        ts.into_iter()
            .map(|t| TagInput {
                key: t.key,
                value: t.value,
            })
            .collect()
    });
    st.service
        .apply_tags(
            &ctx.caller,
            &resource_type,
            &resource_id,
            action,
            tags.as_deref(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use crate::extract::parse_json;
    use cph_service::ServiceError;
    use cph_wire as w;

    fn code<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        match parse_json::<T>(body.as_bytes()) {
            Err(crate::error::ApiError(ServiceError::Api { code, .. })) => code,
            other => panic!("expected a documented error for {body}, got {other:?}"),
        }
    }

    #[test]
    fn malformed_bodies_get_the_code_of_their_field() {
        type Inst = w::ListResourceInstancesRequestBody;
        type Act = w::TagsActionBody;
        assert_eq!(code::<Inst>(r#"{"action":1}"#), "CPS.0047");
        assert_eq!(code::<Inst>(r#"{"offset":1}"#), "CPS.0002");
        assert_eq!(code::<Inst>(r#"{"limit":1}"#), "CPS.0002");
        assert_eq!(code::<Inst>(r#"{"tags":{}}"#), "CPS.0303");
        assert_eq!(code::<Inst>(r#"{"tags":[{"key":1}]}"#), "CPS.0303");
        assert_eq!(code::<Inst>(r#"{"tags":[{"values":"v"}]}"#), "CPS.0315");
        assert_eq!(code::<Inst>(r#"{"matches":{}}"#), "CPS.0311");
        assert_eq!(code::<Inst>(r#"{"matches":[{"key":1}]}"#), "CPS.0313");
        assert_eq!(code::<Inst>(r#"{"matches":[{"value":[]}]}"#), "CPS.0314");
        assert_eq!(code::<Act>(r#"{"action":"create","tags":"x"}"#), "CPS.0303");
        assert_eq!(code::<Act>(r#"{"tags":[{"value":1}]}"#), "CPS.0303");
        assert!(
            parse_json::<Inst>(br#"{"action":"count","tags":[{"key":"k","values":[]}]}"#).is_ok()
        );
    }
}
