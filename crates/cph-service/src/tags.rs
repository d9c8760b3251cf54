//! Tags of cloud phone servers (reference 5.8): ListProjectTags, ListResourceTags,
//! ListResourceInstances, BatchCreateTags and BatchDeleteTags.
//!
//! The only resource type is `cph-server`; a resource is a server of the caller's project, and a
//! server of another project is reported exactly like one that does not exist (`CPS.0302`).
//!
//! Where the rules come from:
//! - The reference (5.8): key at most 127 characters and not empty, value at most 255
//!   characters, at most 10 keys and 10 values per key in a filter, values of one key OR-ed and
//!   keys AND-ed, `matches` only on `resource_name` and exact, `offset`/`limit` of a filter given
//!   as decimal strings (limit 1..=1000, default 1000; offset >= 0, default 0).
//! - The SDK's field descriptions of the same operations (same vendor, same version) add the
//!   character set of keys and values written on a resource: letters of any script, digits,
//!   spaces and `_ . : = + - @` (the text writes the colon full-width, so both `:` and `：` are
//!   accepted); keys must not start with `_sys_`; values must not be empty nor start or end with
//!   a space.
//! - Where both are silent, Huawei TMS conventions: at most 10 tags per resource (`CPS.0307`);
//!   keys must not start or end with a space either; a key set again overwrites its value; one
//!   request may name a key only once; deleting a tag the resource does not carry (or carries
//!   with another value) is a no-op; `without_any_tag` = `true` ignores the `tags` filter; a
//!   filter's keys and values are checked for length only (filtering never writes).

use crate::validate::{is_valid_id, page_param};
use crate::{Caller, Result, Service, ServiceError};
use cph_store::tags::InstanceFilter;
use std::collections::{BTreeMap, HashSet};

/// The one resource type the API knows.
pub const RESOURCE_TYPE: &str = "cph-server";
/// Tags a resource may carry (TMS convention).
pub const MAX_TAGS_PER_RESOURCE: usize = 10;
/// Tags one create or delete request may name (TMS convention).
pub const MAX_TAGS_PER_REQUEST: usize = 10;
pub const MAX_KEY_CHARS: usize = 127;
pub const MAX_VALUE_CHARS: usize = 255;
/// Keys in the `tags` filter of ListResourceInstances.
pub const MAX_FILTER_KEYS: usize = 10;
/// Values per key in the `tags` filter of ListResourceInstances.
pub const MAX_FILTER_VALUES: usize = 10;
/// Largest page of ListResourceInstances (and its default).
pub const MAX_INSTANCES_LIMIT: i64 = 1000;
/// Largest page of ListProjectTags (and its default).
pub const MAX_PROJECT_TAGS_LIMIT: i64 = 100;
/// Longest `matches` value (TMS convention).
pub const MAX_MATCH_VALUE_CHARS: usize = 255;
/// Prefix of keys reserved to the system.
pub const RESERVED_PREFIX: &str = "_sys_";

/// One tag of a create or delete request, as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagInput {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// One key of the `tags` filter of ListResourceInstances, as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagFilterInput {
    pub key: Option<String>,
    pub values: Option<Vec<String>>,
}

/// One entry of `matches`, as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchInput {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// The body of ListResourceInstances, as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstancesInput {
    pub action: Option<String>,
    pub offset: Option<String>,
    pub limit: Option<String>,
    pub without_any_tag: Option<bool>,
    pub tags: Option<Vec<TagFilterInput>>,
    pub matches: Option<Vec<MatchInput>>,
}

/// What `POST …/tags/action` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagAction {
    Create,
    Delete,
}

impl TagAction {
    /// The SDK operation the action stands for (its authorization action is checked).
    pub fn operation(self) -> &'static str {
        match self {
            TagAction::Create => "BatchCreateTags",
            TagAction::Delete => "BatchDeleteTags",
        }
    }
}

/// A key with the values it has on a project's resources.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValues {
    pub key: String,
    pub values: Vec<String>,
}

/// A server as ListResourceInstances shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedResource {
    pub resource_id: String,
    pub resource_name: String,
    pub tags: Vec<(String, String)>,
}

/// The answer of ListResourceInstances (`resources` is empty for `count`).
#[derive(Debug, Clone, PartialEq)]
pub struct Instances {
    pub resources: Vec<TaggedResource>,
    pub total_count: i64,
}

/// A validated ListResourceInstances request.
#[derive(Debug, Clone, PartialEq)]
pub struct InstancesQuery {
    /// `(offset, limit)` for `filter`; `None` for `count`.
    pub page: Option<(i64, i64)>,
    pub filter: InstanceFilter,
}

fn bad(code: &str, msg: impl Into<String>) -> ServiceError {
    ServiceError::cps_msg(code, msg)
}

/// `action` of `POST …/tags/action`: `create` or `delete` (`CPS.0047`).
pub fn tag_action(action: Option<&str>) -> Result<TagAction> {
    match action {
        Some("create") => Ok(TagAction::Create),
        Some("delete") => Ok(TagAction::Delete),
        Some(a) => Err(bad(
            "CPS.0047",
            format!("Parameter: action '{a}' is invalid; it must be create or delete."),
        )),
        None => Err(bad(
            "CPS.0047",
            "Parameter: action is required (create or delete).",
        )),
    }
}

/// `resource_type` must be `cph-server` (`CPS.0300`).
pub fn check_resource_type(resource_type: &str) -> Result<()> {
    if resource_type == RESOURCE_TYPE {
        Ok(())
    } else {
        Err(bad(
            "CPS.0300",
            format!(
                "Parameter: Invalid resource type '{resource_type}'; only {RESOURCE_TYPE} is supported."
            ),
        ))
    }
}

/// A resource id shaped like a server id (`CPS.0301`).
pub fn check_resource_id(resource_id: &str) -> Result<()> {
    if is_valid_id(resource_id, 64) {
        Ok(())
    } else {
        Err(bad("CPS.0301", "Parameter: Invalid resource id."))
    }
}

/// A character a written key or value may contain.
fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | '：' | '=' | '+' | '-' | '@')
}

fn edge_space(s: &str) -> bool {
    s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace)
}

/// A key written on a resource (`CPS.0304`, `CPS.0306` for the reserved prefix).
pub fn check_key(key: Option<&str>) -> Result<&str> {
    let k = key.ok_or_else(|| bad("CPS.0304", "Parameter: Invalid tag key: key is required."))?;
    let n = k.chars().count();
    if n == 0 {
        return Err(bad(
            "CPS.0304",
            "Parameter: Invalid tag key: key must not be empty.",
        ));
    }
    if n > MAX_KEY_CHARS {
        return Err(bad(
            "CPS.0304",
            format!(
                "Parameter: Invalid tag key: key has {n} characters, at most {MAX_KEY_CHARS} are allowed."
            ),
        ));
    }
    if !k.chars().all(is_tag_char) {
        return Err(bad(
            "CPS.0304",
            format!(
                "Parameter: Invalid tag key '{k}': only letters, digits, spaces and _.:=+-@ are allowed."
            ),
        ));
    }
    if edge_space(k) {
        return Err(bad(
            "CPS.0304",
            format!("Parameter: Invalid tag key '{k}': it must not start or end with a space."),
        ));
    }
    if k.starts_with(RESERVED_PREFIX) {
        return Err(ServiceError::cps("CPS.0306"));
    }
    Ok(k)
}

/// A value written on a resource (`CPS.0305`).
pub fn check_value(value: Option<&str>) -> Result<&str> {
    let v = value.ok_or_else(|| {
        bad(
            "CPS.0305",
            "Parameter: Invalid tag value: value is required.",
        )
    })?;
    let n = v.chars().count();
    if n == 0 {
        return Err(bad(
            "CPS.0305",
            "Parameter: Invalid tag value: value must not be empty.",
        ));
    }
    if n > MAX_VALUE_CHARS {
        return Err(bad(
            "CPS.0305",
            format!(
                "Parameter: Invalid tag value: value has {n} characters, at most {MAX_VALUE_CHARS} are allowed."
            ),
        ));
    }
    if !v.chars().all(is_tag_char) {
        return Err(bad(
            "CPS.0305",
            format!(
                "Parameter: Invalid tag value '{v}': only letters, digits, spaces and _.:=+-@ are allowed."
            ),
        ));
    }
    if edge_space(v) {
        return Err(bad(
            "CPS.0305",
            format!("Parameter: Invalid tag value '{v}': it must not start or end with a space."),
        ));
    }
    Ok(v)
}

/// The tag list of a create or delete request: 1..=10 tags, each valid, no key twice.
/// More than 10 tags is `CPS.0307` for a create (the resource could never hold them) and
/// `CPS.0303` for a delete.
pub fn check_tag_list(
    tags: Option<&[TagInput]>,
    action: TagAction,
) -> Result<Vec<(String, String)>> {
    let tags = tags.ok_or_else(|| bad("CPS.0303", "Parameter: Invalid tags: tags is required."))?;
    if tags.is_empty() {
        return Err(bad(
            "CPS.0303",
            "Parameter: Invalid tags: tags must not be empty.",
        ));
    }
    if tags.len() > MAX_TAGS_PER_REQUEST {
        let msg = format!(
            "Parameter: at most {MAX_TAGS_PER_REQUEST} tags per request, got {}.",
            tags.len()
        );
        return Err(match action {
            TagAction::Create => bad("CPS.0307", msg),
            TagAction::Delete => bad("CPS.0303", msg),
        });
    }
    let mut out = Vec::with_capacity(tags.len());
    let mut keys = HashSet::new();
    for t in tags {
        let k = check_key(t.key.as_deref())?;
        let v = check_value(t.value.as_deref())?;
        out.push((k.to_string(), v.to_string()));
    }
    for (k, _) in &out {
        if !keys.insert(k.as_str()) {
            return Err(bad(
                "CPS.0303",
                format!("Parameter: Invalid tags: key '{k}' appears more than once."),
            ));
        }
    }
    Ok(out)
}

/// Keys a resource carries after a create: the existing ones and the new ones.
/// More than [`MAX_TAGS_PER_RESOURCE`] is `CPS.0307`.
pub fn check_resource_limit(existing: &[String], new: &[(String, String)]) -> Result<()> {
    let mut all: HashSet<&str> = existing.iter().map(String::as_str).collect();
    all.extend(new.iter().map(|(k, _)| k.as_str()));
    if all.len() > MAX_TAGS_PER_RESOURCE {
        return Err(bad(
            "CPS.0307",
            format!(
                "Parameter: The number of created tags has reached the limit: a resource carries at most {MAX_TAGS_PER_RESOURCE} tags ({} after this request).",
                all.len()
            ),
        ));
    }
    Ok(())
}

/// The `tags` filter of ListResourceInstances.
pub fn check_tag_filter(tags: &[TagFilterInput]) -> Result<Vec<(String, Vec<String>)>> {
    if tags.len() > MAX_FILTER_KEYS {
        return Err(bad(
            "CPS.0309",
            format!(
                "Parameter: The number of tag keys has reached the limit: at most {MAX_FILTER_KEYS}, got {}.",
                tags.len()
            ),
        ));
    }
    let mut out: Vec<(String, Vec<String>)> = Vec::with_capacity(tags.len());
    for t in tags {
        let key = t
            .key
            .as_deref()
            .ok_or_else(|| bad("CPS.0304", "Parameter: Invalid tag key: key is required."))?;
        let n = key.chars().count();
        if n == 0 || n > MAX_KEY_CHARS {
            return Err(bad(
                "CPS.0304",
                format!("Parameter: Invalid tag key: a key has 1 to {MAX_KEY_CHARS} characters."),
            ));
        }
        let values = t.values.as_deref().ok_or_else(|| {
            bad(
                "CPS.0315",
                format!("Parameter: Invalid tag values: values of key '{key}' is required (empty means any value)."),
            )
        })?;
        if values.len() > MAX_FILTER_VALUES {
            return Err(bad(
                "CPS.0310",
                format!(
                    "Parameter: The number of tag values has reached the limit: at most {MAX_FILTER_VALUES} per key, got {} for '{key}'.",
                    values.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        for v in values {
            if v.chars().count() > MAX_VALUE_CHARS {
                return Err(bad(
                    "CPS.0305",
                    format!("Parameter: Invalid tag value: at most {MAX_VALUE_CHARS} characters."),
                ));
            }
            if !seen.insert(v.as_str()) {
                return Err(bad(
                    "CPS.0315",
                    format!(
                        "Parameter: Invalid tag values: '{v}' appears more than once for key '{key}'."
                    ),
                ));
            }
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(bad(
                "CPS.0303",
                format!("Parameter: Invalid tags: key '{key}' appears more than once."),
            ));
        }
        out.push((key.to_string(), values.to_vec()));
    }
    Ok(out)
}

/// `matches` of ListResourceInstances: the exact `resource_name`, at most once.
pub fn check_matches(matches: &[MatchInput]) -> Result<Option<String>> {
    let mut name = None;
    for m in matches {
        let (Some(key), Some(value)) = (m.key.as_deref(), m.value.as_deref()) else {
            return Err(bad(
                "CPS.0312",
                "Parameter: Invalid match: key and value are required.",
            ));
        };
        if key != "resource_name" {
            return Err(bad(
                "CPS.0313",
                format!("Parameter: Invalid match key '{key}'; only resource_name is supported."),
            ));
        }
        let n = value.chars().count();
        if n == 0 || n > MAX_MATCH_VALUE_CHARS {
            return Err(bad(
                "CPS.0314",
                format!("Parameter: Invalid match value: 1 to {MAX_MATCH_VALUE_CHARS} characters."),
            ));
        }
        if name.is_some() {
            return Err(bad(
                "CPS.0311",
                "Parameter: Invalid matches: resource_name appears more than once.",
            ));
        }
        name = Some(value.to_string());
    }
    Ok(name)
}

/// The whole body of ListResourceInstances.
pub fn check_instances_query(q: &InstancesInput) -> Result<InstancesQuery> {
    let page = match q.action.as_deref() {
        Some("filter") => Some((
            page_param(q.offset.as_deref(), 0, 0, i64::from(i32::MAX))?,
            page_param(
                q.limit.as_deref(),
                MAX_INSTANCES_LIMIT,
                1,
                MAX_INSTANCES_LIMIT,
            )?,
        )),
        // `offset` and `limit` do not apply to a count.
        Some("count") => None,
        Some(a) => {
            return Err(bad(
                "CPS.0047",
                format!("Parameter: action '{a}' is invalid; it must be filter or count."),
            ));
        }
        None => {
            return Err(bad(
                "CPS.0047",
                "Parameter: action is required (filter or count).",
            ));
        }
    };
    let tags = check_tag_filter(q.tags.as_deref().unwrap_or_default())?;
    let resource_name = check_matches(q.matches.as_deref().unwrap_or_default())?;
    let without_any_tag = q.without_any_tag.unwrap_or(false);
    Ok(InstancesQuery {
        page,
        filter: InstanceFilter {
            resource_name,
            without_any_tag,
            tags: if without_any_tag { Vec::new() } else { tags },
        },
    })
}

/// Groups sorted `(key, value)` pairs by key.
fn group_pairs(pairs: Vec<(String, String)>) -> Vec<KeyValues> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        let vs = by_key.entry(k).or_default();
        if !vs.contains(&v) {
            vs.push(v);
        }
    }
    by_key
        .into_iter()
        .map(|(key, mut values)| {
            values.sort();
            KeyValues { key, values }
        })
        .collect()
}

fn not_found() -> ServiceError {
    ServiceError::cps("CPS.0302")
}

impl Service {
    /// ListProjectTags: every key used on the project's servers with its values, paged by key.
    /// Returns the page and the number of keys.
    pub async fn list_project_tags(
        &self,
        caller: &Caller,
        resource_type: &str,
        offset: Option<&str>,
        limit: Option<&str>,
    ) -> Result<(Vec<KeyValues>, i64)> {
        check_resource_type(resource_type)?;
        let offset = page_param(offset, 0, 0, i64::from(i32::MAX))?;
        let limit = page_param(limit, MAX_PROJECT_TAGS_LIMIT, 1, MAX_PROJECT_TAGS_LIMIT)?;
        let mut c = self.store().read().await?;
        let pairs =
            cph_store::tags::pairs_of_project_servers(&mut c, &caller.project_id, resource_type)
                .await?;
        let all = group_pairs(pairs);
        let total = all.len() as i64;
        let page = all
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        Ok((page, total))
    }

    /// ListResourceTags: the tags of one server of the caller's project, sorted by key.
    pub async fn list_resource_tags(
        &self,
        caller: &Caller,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Vec<(String, String)>> {
        check_resource_type(resource_type)?;
        check_resource_id(resource_id)?;
        let mut c = self.store().read().await?;
        if !cph_store::tags::server_exists(&mut c, &caller.project_id, resource_id).await? {
            return Err(not_found());
        }
        Ok(cph_store::tags::of_resource(&mut c, resource_type, resource_id).await?)
    }

    /// ListResourceInstances: the project's servers that match the filter (`filter`: one page
    /// with their tags; `count`: the total only).
    pub async fn list_resource_instances(
        &self,
        caller: &Caller,
        resource_type: &str,
        input: &InstancesInput,
    ) -> Result<Instances> {
        check_resource_type(resource_type)?;
        let q = check_instances_query(input)?;
        let mut c = self.store().read().await?;
        let (servers, total) = cph_store::tags::find_servers(
            &mut c,
            &caller.project_id,
            resource_type,
            &q.filter,
            q.page,
        )
        .await?;
        let ids: Vec<String> = servers.iter().map(|(id, _)| id.clone()).collect();
        let mut tags: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for t in cph_store::tags::of_resources(&mut c, resource_type, &ids).await? {
            tags.entry(t.resource_id)
                .or_default()
                .push((t.key, t.value));
        }
        let resources = servers
            .into_iter()
            .map(|(id, name)| TaggedResource {
                tags: tags.remove(&id).unwrap_or_default(),
                resource_id: id,
                resource_name: name,
            })
            .collect();
        Ok(Instances {
            resources,
            total_count: total,
        })
    }

    /// BatchCreateTags (`action` = `create`) and BatchDeleteTags (`action` = `delete`): the
    /// whole list is checked first, then written in one transaction. A create sets each key
    /// (overwriting its value) within the limit of tags per resource; a delete removes each
    /// tag the server carries with exactly that value.
    pub async fn apply_tags(
        &self,
        caller: &Caller,
        resource_type: &str,
        resource_id: &str,
        action: TagAction,
        tags: Option<&[TagInput]>,
    ) -> Result<()> {
        check_resource_type(resource_type)?;
        check_resource_id(resource_id)?;
        let tags = check_tag_list(tags, action)?;
        let mut tx = self.store().write().await?;
        if !cph_store::tags::lock_server(&mut tx, &caller.project_id, resource_id).await? {
            return Err(not_found());
        }
        match action {
            TagAction::Create => {
                let existing: Vec<String> =
                    cph_store::tags::of_resource(&mut tx, resource_type, resource_id)
                        .await?
                        .into_iter()
                        .map(|(k, _)| k)
                        .collect();
                check_resource_limit(&existing, &tags)?;
                for (k, v) in &tags {
                    cph_store::tags::upsert(
                        &mut tx,
                        &caller.project_id,
                        resource_type,
                        resource_id,
                        k,
                        v,
                    )
                    .await?;
                }
            }
            TagAction::Delete => {
                for (k, v) in &tags {
                    cph_store::tags::delete(&mut tx, resource_type, resource_id, k, Some(v))
                        .await?;
                }
            }
        }
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(ServiceError::Api { code, .. }) => code,
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    fn t(k: &str, v: &str) -> TagInput {
        TagInput {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    fn f(k: &str, vs: &[&str]) -> TagFilterInput {
        TagFilterInput {
            key: Some(k.into()),
            values: Some(vs.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn m(k: &str, v: &str) -> MatchInput {
        MatchInput {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn resource_type_and_id() {
        assert!(check_resource_type("cph-server").is_ok());
        assert_eq!(code(check_resource_type("cph-phone")), "CPS.0300");
        assert_eq!(code(check_resource_type("")), "CPS.0300");
        assert_eq!(code(check_resource_type("CPH-SERVER")), "CPS.0300");
        assert!(check_resource_id("0123456789abcdef0123456789abcdef").is_ok());
        assert_eq!(code(check_resource_id("a/b")), "CPS.0301");
        assert_eq!(code(check_resource_id("")), "CPS.0301");
        assert_eq!(code(check_resource_id(&"a".repeat(65))), "CPS.0301");
    }

    #[test]
    fn actions() {
        assert_eq!(tag_action(Some("create")).unwrap(), TagAction::Create);
        assert_eq!(tag_action(Some("delete")).unwrap(), TagAction::Delete);
        assert_eq!(code(tag_action(Some("Create"))), "CPS.0047");
        assert_eq!(code(tag_action(Some("update"))), "CPS.0047");
        assert_eq!(code(tag_action(None)), "CPS.0047");
        assert_eq!(TagAction::Create.operation(), "BatchCreateTags");
        assert_eq!(TagAction::Delete.operation(), "BatchDeleteTags");
    }

    #[test]
    fn keys() {
        for ok in [
            "env",
            "a b",
            "k_.:=+-@",
            "键名",
            "ключ",
            "k：1",
            &"k".repeat(127),
        ] {
            assert_eq!(check_key(Some(ok)).unwrap(), ok, "{ok:?}");
        }
        for bad in [
            "",
            " lead",
            "trail ",
            "a/b",
            "a*b",
            "tab\tkey",
            "a,b",
            &"k".repeat(128),
        ] {
            assert_eq!(code(check_key(Some(bad))), "CPS.0304", "{bad:?}");
        }
        assert_eq!(code(check_key(None)), "CPS.0304");
        assert_eq!(code(check_key(Some("_sys_x"))), "CPS.0306");
        assert_eq!(code(check_key(Some("_sys_"))), "CPS.0306");
        // Only the exact prefix is reserved.
        assert!(check_key(Some("_SYS_x")).is_ok());
        assert!(check_key(Some("x_sys_")).is_ok());
        // Length counts characters, not bytes.
        assert!(check_key(Some(&"键".repeat(127))).is_ok());
        assert_eq!(code(check_key(Some(&"键".repeat(128)))), "CPS.0304");
    }

    #[test]
    fn values() {
        for ok in [
            "v",
            "a b",
            "_sys_ok",
            "值=1",
            &"v".repeat(255),
            &"值".repeat(255),
        ] {
            assert!(check_value(Some(ok)).is_ok(), "{ok:?}");
        }
        for bad in ["", " v", "v ", "a/b", "a#b", &"v".repeat(256)] {
            assert_eq!(code(check_value(Some(bad))), "CPS.0305", "{bad:?}");
        }
        assert_eq!(code(check_value(None)), "CPS.0305");
    }

    #[test]
    fn tag_lists() {
        let ok = check_tag_list(Some(&[t("a", "1"), t("b", "2")]), TagAction::Create).unwrap();
        assert_eq!(ok, vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_eq!(code(check_tag_list(None, TagAction::Create)), "CPS.0303");
        assert_eq!(
            code(check_tag_list(Some(&[]), TagAction::Delete)),
            "CPS.0303"
        );
        let dup = [t("a", "1"), t("a", "2")];
        assert_eq!(
            code(check_tag_list(Some(&dup), TagAction::Create)),
            "CPS.0303"
        );
        assert_eq!(
            code(check_tag_list(Some(&dup), TagAction::Delete)),
            "CPS.0303"
        );
        let eleven: Vec<TagInput> = (0..11).map(|i| t(&format!("k{i}"), "v")).collect();
        assert_eq!(
            code(check_tag_list(Some(&eleven), TagAction::Create)),
            "CPS.0307"
        );
        assert_eq!(
            code(check_tag_list(Some(&eleven), TagAction::Delete)),
            "CPS.0303"
        );
        let ten: Vec<TagInput> = (0..10).map(|i| t(&format!("k{i}"), "v")).collect();
        assert_eq!(
            check_tag_list(Some(&ten), TagAction::Create).unwrap().len(),
            10
        );
        // One bad item rejects the whole list, whatever its position.
        let late_bad = [t("a", "1"), t("b", "2"), t("_sys_c", "3")];
        assert_eq!(
            code(check_tag_list(Some(&late_bad), TagAction::Create)),
            "CPS.0306"
        );
        let bad_value = [t("a", "1"), t("b", "")];
        assert_eq!(
            code(check_tag_list(Some(&bad_value), TagAction::Delete)),
            "CPS.0305"
        );
        let no_value = [TagInput {
            key: Some("a".into()),
            value: None,
        }];
        assert_eq!(
            code(check_tag_list(Some(&no_value), TagAction::Create)),
            "CPS.0305"
        );
    }

    #[test]
    fn resource_limit() {
        let existing: Vec<String> = (0..9).map(|i| format!("k{i}")).collect();
        assert!(check_resource_limit(&existing, &[("k9".into(), "v".into())]).is_ok());
        // Overwriting an existing key does not add a tag.
        let mut full = existing.clone();
        full.push("k9".into());
        assert!(check_resource_limit(&full, &[("k0".into(), "new".into())]).is_ok());
        assert_eq!(
            code(check_resource_limit(&full, &[("k10".into(), "v".into())])),
            "CPS.0307"
        );
        assert_eq!(
            code(check_resource_limit(
                &existing,
                &[("x".into(), "v".into()), ("y".into(), "v".into())]
            )),
            "CPS.0307"
        );
    }

    #[test]
    fn tag_filters() {
        let ok = check_tag_filter(&[f("a", &["1", "2"]), f("b", &[])]).unwrap();
        assert_eq!(
            ok[0],
            ("a".to_string(), vec!["1".to_string(), "2".to_string()])
        );
        assert_eq!(ok[1], ("b".to_string(), vec![]));
        let eleven: Vec<TagFilterInput> = (0..11).map(|i| f(&format!("k{i}"), &[])).collect();
        assert_eq!(code(check_tag_filter(&eleven)), "CPS.0309");
        assert!(check_tag_filter(&eleven[..10]).is_ok());
        let vals: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        let vals: Vec<&str> = vals.iter().map(String::as_str).collect();
        assert_eq!(code(check_tag_filter(&[f("a", &vals)])), "CPS.0310");
        assert!(check_tag_filter(&[f("a", &vals[..10])]).is_ok());
        assert_eq!(code(check_tag_filter(&[f("", &[])])), "CPS.0304");
        assert_eq!(
            code(check_tag_filter(&[f(&"k".repeat(128), &[])])),
            "CPS.0304"
        );
        let no_key = TagFilterInput {
            key: None,
            values: Some(vec![]),
        };
        assert_eq!(code(check_tag_filter(&[no_key])), "CPS.0304");
        let no_values = TagFilterInput {
            key: Some("a".into()),
            values: None,
        };
        assert_eq!(code(check_tag_filter(&[no_values])), "CPS.0315");
        assert_eq!(code(check_tag_filter(&[f("a", &["1", "1"])])), "CPS.0315");
        assert_eq!(
            code(check_tag_filter(&[f("a", &[&"v".repeat(256)])])),
            "CPS.0305"
        );
        assert_eq!(
            code(check_tag_filter(&[f("a", &[]), f("a", &["1"])])),
            "CPS.0303"
        );
    }

    #[test]
    fn match_rules() {
        assert_eq!(check_matches(&[]).unwrap(), None);
        assert_eq!(
            check_matches(&[m("resource_name", "srv-1")]).unwrap(),
            Some("srv-1".into())
        );
        assert_eq!(code(check_matches(&[m("server_name", "x")])), "CPS.0313");
        assert_eq!(code(check_matches(&[m("resource_name", "")])), "CPS.0314");
        assert_eq!(
            code(check_matches(&[m("resource_name", &"n".repeat(256))])),
            "CPS.0314"
        );
        let no_value = MatchInput {
            key: Some("resource_name".into()),
            value: None,
        };
        assert_eq!(code(check_matches(&[no_value])), "CPS.0312");
        assert_eq!(code(check_matches(&[MatchInput::default()])), "CPS.0312");
        assert_eq!(
            code(check_matches(&[
                m("resource_name", "a"),
                m("resource_name", "b")
            ])),
            "CPS.0311"
        );
    }

    fn q(action: &str) -> InstancesInput {
        InstancesInput {
            action: Some(action.into()),
            ..Default::default()
        }
    }

    #[test]
    fn instance_queries() {
        let v = check_instances_query(&q("filter")).unwrap();
        assert_eq!(v.page, Some((0, 1000)));
        assert_eq!(v.filter, InstanceFilter::default());
        assert_eq!(check_instances_query(&q("count")).unwrap().page, None);
        assert_eq!(code(check_instances_query(&q("list"))), "CPS.0047");
        assert_eq!(
            code(check_instances_query(&InstancesInput::default())),
            "CPS.0047"
        );
        let page = |o: Option<&str>, l: Option<&str>| InstancesInput {
            offset: o.map(Into::into),
            limit: l.map(Into::into),
            ..q("filter")
        };
        assert_eq!(
            check_instances_query(&page(Some("5"), Some("20")))
                .unwrap()
                .page,
            Some((5, 20))
        );
        assert_eq!(
            check_instances_query(&page(None, Some("1000")))
                .unwrap()
                .page,
            Some((0, 1000))
        );
        for (o, l) in [
            (Some("-1"), None),
            (Some("x"), None),
            (None, Some("0")),
            (None, Some("1001")),
            (None, Some("-5")),
            (None, Some("ten")),
        ] {
            assert_eq!(
                code(check_instances_query(&page(o, l))),
                "CPS.0002",
                "{o:?} {l:?}"
            );
        }
        // A count ignores the paging fields.
        let count = InstancesInput {
            offset: Some("x".into()),
            limit: Some("0".into()),
            ..q("count")
        };
        assert_eq!(check_instances_query(&count).unwrap().page, None);
        // without_any_tag drops the tag conditions, but they are still validated.
        let wat = InstancesInput {
            without_any_tag: Some(true),
            tags: Some(vec![f("a", &["1"])]),
            matches: Some(vec![m("resource_name", "n")]),
            ..q("filter")
        };
        let v = check_instances_query(&wat).unwrap();
        assert!(v.filter.without_any_tag && v.filter.tags.is_empty());
        assert_eq!(v.filter.resource_name.as_deref(), Some("n"));
        let wat_bad = InstancesInput {
            without_any_tag: Some(true),
            tags: Some(vec![f("", &[])]),
            ..q("filter")
        };
        assert_eq!(code(check_instances_query(&wat_bad)), "CPS.0304");
    }

    #[test]
    fn grouping() {
        let g = group_pairs(vec![
            ("b".into(), "2".into()),
            ("a".into(), "z".into()),
            ("a".into(), "y".into()),
            ("a".into(), "y".into()),
        ]);
        assert_eq!(
            g,
            vec![
                KeyValues {
                    key: "a".into(),
                    values: vec!["y".into(), "z".into()]
                },
                KeyValues {
                    key: "b".into(),
                    values: vec!["2".into()]
                },
            ]
        );
    }
}
