//! `GET /openapi.json`: an OpenAPI 3.1 document of the whole API, assembled from the operation
//! table (`cph_wire::ops::OPERATIONS`: method, path, authorization action) and the wire types'
//! derived schemas, so the document and the served contract come from the same code.

use std::sync::LazyLock;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    RefOr, Required, ResponseBuilder, Schema,
};
use utoipa::{IntoParams, ToSchema};

type Params = fn() -> Vec<utoipa::openapi::path::Parameter>;

/// Per operation: (SDK name, request body schema, query parameters, response schema).
struct Shape {
    op: &'static str,
    body: Option<&'static str>,
    query: Option<Params>,
    response: Option<&'static str>,
}

fn q<T: IntoParams>() -> Vec<utoipa::openapi::path::Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

macro_rules! shapes {
    ($( $op:literal => body: $body:tt, query: $query:tt, response: $resp:tt; )*) => {
        fn shapes() -> Vec<Shape> {
            vec![$( Shape { op: $op, body: shapes!(@name $body), query: shapes!(@query $query), response: shapes!(@name $resp) } ),*]
        }
        fn register(c: ComponentsBuilder) -> ComponentsBuilder {
            let mut c = c;
            $( c = shapes!(@reg c, $body); c = shapes!(@reg c, $resp); )*
            c
        }
    };
    (@name -) => { None };
    (@name $t:ident) => { Some(<cph_wire::$t as NameStatic>::name_static()) };
    (@query -) => { None };
    (@query $t:ident) => { Some(q::<cph_wire::$t> as Params) };
    (@reg $c:ident, -) => { $c };
    (@reg $c:ident, $t:ident) => { with_deps::<cph_wire::$t>($c) };
}

trait NameStatic {
    fn name_static() -> &'static str;
}
impl<T: ToSchema> NameStatic for T {
    fn name_static() -> &'static str {
        Box::leak(T::name().into_owned().into_boxed_str())
    }
}

fn with_deps<T: ToSchema>(c: ComponentsBuilder) -> ComponentsBuilder {
    let mut deps: Vec<(String, RefOr<Schema>)> = Vec::new();
    T::schemas(&mut deps);
    c.schema_from::<T>().schemas_from_iter(deps)
}

shapes! {
    "ListCloudPhoneServers" => body: -, query: ListCloudPhoneServersQuery, response: ListCloudPhoneServersResponse;
    "ShowCloudPhoneServerDetail" => body: -, query: -, response: ShowCloudPhoneServerDetailResponse;
    "CreateNet2CloudPhoneServer" => body: CreateNet2CloudPhoneServerRequestBody, query: -, response: CreateNet2CloudPhoneServerResponse;
    "RestartCloudPhoneServer" => body: RestartCloudPhoneServerRequestBody, query: -, response: ServerJobsResponse;
    "ChangeCloudPhoneServer" => body: ChangeCloudPhoneServerRequestBody, query: -, response: ChangeCloudPhoneServerResponse;
    "ChangeCloudPhoneServerModel" => body: ChangeCloudPhoneServerModelRequestBody, query: -, response: ChangeCloudPhoneServerModelResponse;
    "UpdateServerName" => body: UpdateServerNameRequestBody, query: -, response: UpdateServerNameResponse;
    "UpdateKeypair" => body: UpdateKeypairRequestBody, query: -, response: ServerJobsResponse;
    "PushShareFiles" => body: PushShareFilesRequestBody, query: -, response: ServerJobsResponse;
    "DeleteShareFiles" => body: DeleteShareFilesRequestBody, query: -, response: ServerJobsResponse;
    "ListShareFiles" => body: -, query: ListShareFilesQuery, response: ServerJobsResponse;
    "PushShareApps" => body: PushShareAppsRequestBody, query: -, response: ServerJobsResponse;
    "DeleteShareApps" => body: DeleteShareAppsRequestBody, query: -, response: ServerJobsResponse;
    "ShowBandwidthDetail" => body: -, query: ShowBandwidthDetailQuery, response: ShowBandwidthDetailResponse;
    "UpdateBandwidth" => body: UpdateBandwidthRequestBody, query: -, response: UpdateBandwidthResponse;
    "ListCloudPhones" => body: -, query: ListCloudPhonesQuery, response: ListCloudPhonesResponse;
    "ShowCloudPhoneDetail" => body: -, query: -, response: ShowCloudPhoneDetailResponse;
    "ResetCloudPhone" => body: ResetCloudPhoneRequestBody, query: -, response: PhoneJobsResponse;
    "RestartCloudPhone" => body: RestartCloudPhoneRequestBody, query: -, response: PhoneJobsResponse;
    "StopCloudPhone" => body: StopCloudPhoneRequestBody, query: -, response: PhoneJobsResponse;
    "UpdatePhoneName" => body: UpdatePhoneNameRequestBody, query: -, response: UpdatePhoneNameResponse;
    "UpdateCloudPhoneProperty" => body: UpdateCloudPhonePropertyRequestBody, query: -, response: PhoneJobsResponse;
    "BatchExportCloudPhoneData" => body: BatchExportCloudPhoneDataRequestBody, query: -, response: PhoneJobsResponse;
    "BatchImportCloudPhoneData" => body: BatchImportCloudPhoneDataRequestBody, query: -, response: PhoneJobsResponse;
    "ImportTraffic" => body: ImportTrafficRequestBody, query: -, response: PhoneJobsResponse;
    "BatchShowPhoneConnectInfos" => body: ConnectionRequestBody, query: -, response: BatchShowPhoneConnectInfosResponse;
    "ListCloudPhoneServerModels" => body: -, query: ListCloudPhoneServerModelsQuery, response: ListCloudPhoneServerModelsResponse;
    "ListCloudPhoneModels" => body: -, query: ListCloudPhoneModelsQuery, response: ListCloudPhoneModelsResponse;
    "ListCloudPhoneImages" => body: -, query: ListCloudPhoneImagesQuery, response: ListCloudPhoneImagesResponse;
    "ShowJob" => body: -, query: -, response: ShowJobResponse;
    "ListJobs" => body: -, query: ListJobsQuery, response: ListJobsResponse;
    "ListEncodeServers" => body: -, query: ListEncodeServersQuery, response: ListEncodeServersResponse;
    "RestartEncodeServer" => body: RestartEncodeServerRequestBody, query: -, response: RestartEncodeServerResponse;
    "PushFile" => body: PushFileRequestBody, query: -, response: PhoneJobsResponse;
    "InstallApk" => body: InstallApkRequestBody, query: -, response: PhoneJobsResponse;
    "UninstallApk" => body: UninstallApkRequestBody, query: -, response: PhoneJobsResponse;
    "RunShellCommand" => body: RunShellCommandRequestBody, query: -, response: PhoneJobsResponse;
    "RunSyncCommand" => body: RunSyncCommandRequestBody, query: -, response: RunSyncCommandResponse;
    "ListProjectTags" => body: -, query: ListProjectTagsQuery, response: ListProjectTagsResponse;
    "ListResourceTags" => body: -, query: -, response: ListResourceTagsResponse;
    "ListResourceInstances" => body: ListResourceInstancesRequestBody, query: -, response: ListResourceInstancesResponse;
    "BatchCreateTags" => body: BatchCreateTagsRequestBody, query: -, response: -;
    "BatchDeleteTags" => body: BatchDeleteTagsRequestBody, query: -, response: -;
    "KeystoneCreateUserTokenByPassword" => body: KeystoneCreateUserTokenByPasswordRequestBody, query: KeystoneCreateTokenQuery, response: KeystoneCreateUserTokenByPasswordResponse;
    "KeystoneListProjects" => body: -, query: KeystoneListProjectsQuery, response: KeystoneListProjectsResponse;
    "CreateVpc" => body: CreateVpcRequestBody, query: -, response: VpcResponse;
    "ListVpcs" => body: -, query: ListVpcsQuery, response: ListVpcsResponse;
    "ShowVpc" => body: -, query: -, response: VpcResponse;
    "DeleteVpc" => body: -, query: -, response: -;
    "CreateSubnet" => body: CreateSubnetRequestBody, query: -, response: SubnetResponse;
    "ListSubnets" => body: -, query: ListSubnetsQuery, response: ListSubnetsResponse;
    "ShowSubnet" => body: -, query: -, response: SubnetResponse;
    "DeleteSubnet" => body: -, query: -, response: -;
    "NovaCreateKeypair" => body: NovaCreateKeypairRequestBody, query: -, response: NovaCreateKeypairResponse;
    "NovaListKeypairs" => body: -, query: NovaListKeypairsQuery, response: NovaListKeypairsResponse;
    "NovaShowKeypair" => body: -, query: -, response: NovaShowKeypairResponse;
    "NovaDeleteKeypair" => body: -, query: -, response: -;
}

fn schema_ref(name: &str) -> Ref {
    Ref::from_schema_name(name)
}

fn build() -> OpenApi {
    let shapes = shapes();
    let mut paths = PathsBuilder::new();
    // Several operations share one method and path (told apart by body): merge them.
    let mut grouped: Vec<(&str, &str, Vec<&cph_wire::ops::OpInfo>)> = Vec::new();
    for op in cph_wire::ops::OPERATIONS {
        match grouped
            .iter_mut()
            .find(|(m, p, _)| *m == op.method && *p == op.path)
        {
            Some(g) => g.2.push(op),
            None => grouped.push((op.method, op.path, vec![op])),
        }
    }
    for (method, path, ops) in grouped {
        let first = ops[0];
        let shape = shapes.iter().find(|s| s.op == first.name);
        let names: Vec<&str> = ops.iter().map(|o| o.name).collect();
        let actions: Vec<&str> = ops.iter().map(|o| o.action).collect();
        let mut b = OperationBuilder::new()
            .operation_id(Some(names.join("_or_")))
            .summary(Some(names.join(" / ")))
            .description(Some(format!(
                "Authorization action: {}.{}",
                actions.join(", "),
                if ops.len() > 1 {
                    " One route, several operations told apart by the request body."
                } else {
                    ""
                }
            )))
            .tag(path.split('/').nth(3).unwrap_or("api").to_string());
        for seg in path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                b = b.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(
                            utoipa::openapi::ObjectBuilder::new()
                                .schema_type(utoipa::openapi::Type::String),
                        )),
                );
            }
        }
        if let Some(s) = shape {
            if let Some(qf) = s.query {
                for p in qf() {
                    b = b.parameter(p);
                }
            }
            let bodies: Vec<&str> = ops
                .iter()
                .filter_map(|o| shapes.iter().find(|s| s.op == o.name).and_then(|s| s.body))
                .collect();
            if let Some(body) = bodies.first() {
                b = b.request_body(Some(
                    RequestBodyBuilder::new()
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(schema_ref(body))).build(),
                        )
                        .build(),
                ));
            }
            let ok = match s.response {
                Some(r) => ResponseBuilder::new()
                    .description("OK")
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(schema_ref(r))).build(),
                    )
                    .build(),
                None => ResponseBuilder::new().description("No Content").build(),
            };
            let code = if s.response.is_some() { "200" } else { "204" };
            b = b.response(code, ok);
        }
        b = b.response(
            "default",
            ResponseBuilder::new()
                .description(
                    "Error: {error_code, error_msg, request_id}; the id is also in X-Request-Id.",
                )
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(schema_ref("ErrorBody")))
                        .build(),
                )
                .build(),
        );
        let m = match method {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            _ => HttpMethod::Delete,
        };
        paths = paths.path(path, PathItem::new(m, b.build()));
    }
    let components =
        register(ComponentsBuilder::new().schema_from::<cph_wire::ErrorBody>()).build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Cloud Phone Host API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Wire-compatible with the Huawei Cloud CPH API (reference v18). Requests are signed \
                     with SDK-HMAC-SHA256 (AK/SK) or carry an X-Auth-Token from POST /v3/auth/tokens.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

static DOC: LazyLock<String> = LazyLock::new(|| build().to_json().unwrap_or_else(|_| "{}".into()));

/// The document as JSON.
pub fn document() -> &'static str {
    &DOC
}

pub async fn serve() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_shape_and_every_ref_resolves() {
        let shapes = shapes();
        for op in cph_wire::ops::OPERATIONS {
            assert!(
                shapes.iter().any(|s| s.op == op.name),
                "no shape for {}",
                op.name
            );
        }
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let text = document();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(
                schemas.contains_key(name),
                "dangling schema reference {name}"
            );
        }
        assert!(doc["paths"]["/v1/{project_id}/cloud-phone/phones"]["get"].is_object());
        let params = doc["paths"]["/v1/{project_id}/cloud-phone/phones"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "limit" && p["in"] == "query")
        );
    }
}
