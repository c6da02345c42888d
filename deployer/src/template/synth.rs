//! Model → CloudFormation template. Pure: no I/O, no clock, no randomness, so
//! identical inputs give byte-identical output.

use serde_json::{Map, Value, json};

use crate::template::intrinsic::{Expr, LogicalId, Pseudo, Sub};
use crate::template::resources::{
    ApiDeployment, ApiMethod, ApiResource, ApiStage, Bucket, BucketPolicy, Effect, Function,
    LambdaPermission, LogGroup, MethodTarget, Resource, RestApi, Role, StageModel, Statement,
    Table, Tags, UserPool, UserPoolClient,
};

/// CloudFormation's limit for a template passed inline as `TemplateBody`.
pub const INLINE_TEMPLATE_LIMIT: usize = 51_200;

/// A synthesized template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Value);

/// Output formats of `deployer synth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("cannot render the template as {format}: {message}")]
    Render {
        format: &'static str,
        message: String,
    },
}

impl Template {
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// The template as text in `format`, ending with a newline.
    pub fn render(&self, format: Format) -> Result<String, SynthError> {
        match format {
            Format::Yaml => serde_norway::to_string(&self.0).map_err(|e| SynthError::Render {
                format: "YAML",
                message: e.to_string(),
            }),
            Format::Json => serde_json::to_string_pretty(&self.0)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| SynthError::Render {
                    format: "JSON",
                    message: e.to_string(),
                }),
        }
    }

    /// The compact JSON body sent to CloudFormation.
    pub fn body(&self) -> String {
        self.0.to_string()
    }

    /// Whether the body fits CloudFormation's inline `TemplateBody` limit.
    pub fn fits_inline(&self) -> bool {
        self.body().len() <= INLINE_TEMPLATE_LIMIT
    }

    /// Every logical id the template refers to (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `DependsOn`).
    pub fn referenced_ids(&self) -> Vec<String> {
        fn walk(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (key, v) in map {
                        match (key.as_str(), v) {
                            ("Ref", Value::String(id)) if !id.starts_with("AWS::") => {
                                out.push(id.clone());
                            }
                            ("Fn::GetAtt", Value::Array(parts)) => {
                                out.extend(
                                    parts.first().and_then(Value::as_str).map(str::to_owned),
                                );
                            }
                            ("Fn::Sub", Value::String(text)) => out.extend(sub_variables(text)),
                            ("DependsOn", Value::Array(ids)) => {
                                out.extend(ids.iter().filter_map(Value::as_str).map(str::to_owned));
                            }
                            _ => walk(v, out),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &mut out);
        out
    }
}

/// Logical ids named by `${Id}` or `${Id.Attr}` inside an `Fn::Sub` string.
fn sub_variables(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .filter(|rest| !rest.starts_with('!'))
        .filter_map(|rest| rest.split_once('}'))
        .map(|(var, _)| var.split('.').next().unwrap_or(var).to_owned())
        .filter(|var| !var.starts_with("AWS::"))
        .collect()
}

/// The template for `model`.
pub fn synthesize(model: &StageModel) -> Template {
    let mut parameters = Map::new();
    for parameter in &model.parameters {
        parameters.insert(
            parameter.id.to_string(),
            json!({
                "Type": "String",
                "Description": parameter.description,
                "MinLength": 1,
            }),
        );
    }

    let mut resources = Map::new();
    for resource in &model.resources {
        resources.insert(resource.id().to_string(), resource_json(resource));
    }

    let mut outputs = Map::new();
    for output in &model.outputs {
        outputs.insert(
            output.id.to_string(),
            json!({ "Description": output.description, "Value": output.value.to_json() }),
        );
    }

    Template(json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": model.description,
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": outputs,
    }))
}

/// The template of an `IMPORT` into a new stack: only the resources `ids` of
/// `model`, exactly as [`synthesize`] writes them (policies included), with
/// no parameters and no outputs (an import may add nothing else). Each must
/// stand alone: a reference to another resource would not resolve.
pub fn synthesize_only(model: &StageModel, ids: &[LogicalId]) -> Template {
    let mut resources = Map::new();
    for resource in model.resources.iter().filter(|r| ids.contains(&r.id())) {
        resources.insert(resource.id().to_string(), resource_json(resource));
    }
    Template(json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": model.description,
        "Resources": resources,
    }))
}

/// One resource: `Type`, then policies and `DependsOn` where any, then `Properties`.
pub fn resource_json(resource: &Resource) -> Value {
    let (kind, properties, extra) = match resource {
        Resource::Bucket(r) => ("AWS::S3::Bucket", bucket(r), retention(r.retain)),
        Resource::BucketPolicy(r) => ("AWS::S3::BucketPolicy", bucket_policy(r), Vec::new()),
        Resource::Table(r) => ("AWS::DynamoDB::Table", table(r), retention(r.retain)),
        Resource::UserPool(r) => ("AWS::Cognito::UserPool", user_pool(r), retention(r.retain)),
        Resource::UserPoolClient(r) => (
            "AWS::Cognito::UserPoolClient",
            user_pool_client(r),
            Vec::new(),
        ),
        Resource::LogGroup(r) => ("AWS::Logs::LogGroup", log_group(r), Vec::new()),
        Resource::Role(r) => (
            "AWS::IAM::Role",
            role(r),
            if r.retain {
                retention(true)
            } else {
                Vec::new()
            },
        ),
        Resource::Function(r) => ("AWS::Lambda::Function", function(r), Vec::new()),
        Resource::RestApi(r) => ("AWS::ApiGateway::RestApi", rest_api(r), Vec::new()),
        Resource::ApiResource(r) => ("AWS::ApiGateway::Resource", api_resource(r), Vec::new()),
        Resource::ApiMethod(r) => ("AWS::ApiGateway::Method", api_method(r), Vec::new()),
        Resource::ApiDeployment(r) => (
            "AWS::ApiGateway::Deployment",
            api_deployment(r),
            depends_on(r.methods.iter().map(crate::template::intrinsic::Handle::id)),
        ),
        Resource::ApiStage(r) => (
            "AWS::ApiGateway::Stage",
            api_stage(r),
            if r.depends_on.is_empty() {
                Vec::new()
            } else {
                depends_on(r.depends_on.iter().copied())
            },
        ),
        Resource::ApiAccount(r) => (
            "AWS::ApiGateway::Account",
            Expr::map([("CloudWatchRoleArn", r.cloudwatch_role.arn().into())]),
            Vec::new(),
        ),
        Resource::LambdaPermission(r) => {
            ("AWS::Lambda::Permission", lambda_permission(r), Vec::new())
        }
    };
    let mut out = Map::new();
    out.insert("Type".to_owned(), Value::String(kind.to_owned()));
    for (key, value) in extra {
        out.insert(key.to_owned(), value);
    }
    out.insert("Properties".to_owned(), properties.to_json());
    Value::Object(out)
}

/// `DeletionPolicy` and `UpdateReplacePolicy`: data survives `down` where asked.
/// `DeletionPolicy` and `UpdateReplacePolicy`: data survives `down` where
/// asked. `RetainExceptOnCreate`: a failed first create leaves nothing behind.
fn retention(retain: bool) -> Vec<(&'static str, Value)> {
    if retain {
        vec![
            ("DeletionPolicy", json!("RetainExceptOnCreate")),
            ("UpdateReplacePolicy", json!("Retain")),
        ]
    } else {
        vec![
            ("DeletionPolicy", json!("Delete")),
            ("UpdateReplacePolicy", json!("Delete")),
        ]
    }
}

fn depends_on(ids: impl Iterator<Item = LogicalId>) -> Vec<(&'static str, Value)> {
    let ids: Vec<Value> = ids.map(|id| json!(id.to_string())).collect();
    vec![("DependsOn", Value::Array(ids))]
}

fn tag_list(tags: &Tags) -> Expr {
    Expr::list(
        tags.iter()
            .map(|(k, v)| Expr::map([("Key", Expr::str(k)), ("Value", Expr::str(v))])),
    )
}

fn tag_map(tags: &Tags) -> Expr {
    Expr::map(tags.iter().map(|(k, v)| (k.clone(), Expr::str(v))))
}

fn bucket(b: &Bucket) -> Expr {
    let mut props = Vec::new();
    if let Some(name) = &b.name {
        props.push(("BucketName", Expr::str(name)));
    }
    props.extend([
        (
            "BucketEncryption",
            Expr::map([(
                "ServerSideEncryptionConfiguration",
                Expr::list([Expr::map([(
                    "ServerSideEncryptionByDefault",
                    Expr::map([("SSEAlgorithm", Expr::str("AES256"))]),
                )])]),
            )]),
        ),
        (
            "CorsConfiguration",
            Expr::map([(
                "CorsRules",
                Expr::list([Expr::map([
                    ("AllowedHeaders", Expr::strings(&b.cors.allowed_headers)),
                    ("AllowedMethods", Expr::strings(&b.cors.allowed_methods)),
                    ("AllowedOrigins", Expr::strings(&b.cors.allowed_origins)),
                    ("ExposedHeaders", Expr::strings(&b.cors.exposed_headers)),
                    ("MaxAge", b.cors.max_age_s.into()),
                ])]),
            )]),
        ),
        (
            "LifecycleConfiguration",
            Expr::map([("Rules", Expr::list(lifecycle_rules(b)))]),
        ),
        // ACLs enabled (owner-preferred) so `static/` objects can be public-read…
        (
            "OwnershipControls",
            Expr::map([(
                "Rules",
                Expr::list([Expr::map([(
                    "ObjectOwnership",
                    Expr::str("BucketOwnerPreferred"),
                )])]),
            )]),
        ),
        // …while bucket policies can never make the bucket (and its photos) public.
        (
            "PublicAccessBlockConfiguration",
            Expr::map([
                ("BlockPublicAcls", false.into()),
                ("BlockPublicPolicy", true.into()),
                ("IgnorePublicAcls", false.into()),
                ("RestrictPublicBuckets", true.into()),
            ]),
        ),
        ("Tags", tag_list(&b.tags)),
    ]);
    if b.noncurrent_versions_days.is_some() {
        props.push((
            "VersioningConfiguration",
            Expr::map([("Status", Expr::str("Enabled"))]),
        ));
    }
    Expr::map(props)
}

fn lifecycle_rules(b: &Bucket) -> Vec<Expr> {
    let mut rules = vec![Expr::map([
        ("Id", Expr::str("AbortIncompleteUploads")),
        ("Status", Expr::str("Enabled")),
        (
            "AbortIncompleteMultipartUpload",
            Expr::map([("DaysAfterInitiation", 7u32.into())]),
        ),
    ])];
    for (prefix, days) in &b.expire_prefixes {
        rules.push(Expr::map([
            (
                "Id",
                Expr::str(format!("Expire-{}", prefix.trim_end_matches('/'))),
            ),
            ("Status", Expr::str("Enabled")),
            ("Prefix", Expr::str(*prefix)),
            ("ExpirationInDays", (*days).into()),
        ]));
    }
    if let Some(days) = b.noncurrent_versions_days {
        // An overwritten or deleted photo can be brought back for this long.
        rules.push(Expr::map([
            ("Id", Expr::str("ExpireOldVersions")),
            ("Status", Expr::str("Enabled")),
            (
                "NoncurrentVersionExpiration",
                Expr::map([("NoncurrentDays", days.into())]),
            ),
            ("ExpiredObjectDeleteMarker", true.into()),
        ]));
    }
    rules
}

fn statement(s: &Statement) -> Expr {
    let mut entries = vec![
        ("Sid", Expr::str(s.sid)),
        (
            "Effect",
            Expr::str(match s.effect {
                Effect::Allow => "Allow",
                Effect::Deny => "Deny",
            }),
        ),
    ];
    if let Some(principal) = &s.principal {
        entries.push(("Principal", principal.clone()));
    }
    entries.push(("Action", Expr::strings(&s.actions)));
    // A trust policy names no resource.
    if !s.resources.is_empty() {
        entries.push(("Resource", Expr::list(s.resources.iter().cloned())));
    }
    if let Some(condition) = &s.condition {
        entries.push(("Condition", condition.clone()));
    }
    Expr::map(entries)
}

fn policy_document(statements: &[Statement]) -> Expr {
    Expr::map([
        ("Version", Expr::str("2012-10-17")),
        ("Statement", Expr::list(statements.iter().map(statement))),
    ])
}

fn bucket_policy(p: &BucketPolicy) -> Expr {
    Expr::map([
        ("Bucket", p.bucket.name().into()),
        ("PolicyDocument", policy_document(&p.statements)),
    ])
}

fn table(t: &Table) -> Expr {
    let throughput = || {
        Expr::map([
            ("ReadCapacityUnits", t.read_capacity.into()),
            ("WriteCapacityUnits", t.write_capacity.into()),
        ])
    };
    // Every attribute used in a key, once, in order of first use.
    let mut attributes: Vec<(&str, &str)> = Vec::new();
    for key in [&t.partition, &t.sort]
        .into_iter()
        .chain(t.indexes.iter().flat_map(|i| [&i.partition, &i.sort]))
    {
        if !attributes.iter().any(|(name, _)| *name == key.name) {
            attributes.push((key.name, key.kind));
        }
    }
    let key_schema = |hash: &str, range: &str| {
        Expr::list([
            Expr::map([
                ("AttributeName", Expr::str(hash)),
                ("KeyType", Expr::str("HASH")),
            ]),
            Expr::map([
                ("AttributeName", Expr::str(range)),
                ("KeyType", Expr::str("RANGE")),
            ]),
        ])
    };
    let mut properties = vec![
        (
            "AttributeDefinitions",
            Expr::list(attributes.iter().map(|(name, kind)| {
                Expr::map([
                    ("AttributeName", Expr::str(*name)),
                    ("AttributeType", Expr::str(*kind)),
                ])
            })),
        ),
        ("BillingMode", Expr::str("PROVISIONED")),
        ("DeletionProtectionEnabled", t.deletion_protection.into()),
    ];
    if !t.indexes.is_empty() {
        properties.push((
            "GlobalSecondaryIndexes",
            Expr::list(t.indexes.iter().map(|index| {
                Expr::map([
                    ("IndexName", Expr::str(index.name)),
                    (
                        "KeySchema",
                        key_schema(index.partition.name, index.sort.name),
                    ),
                    (
                        "Projection",
                        Expr::map([("ProjectionType", Expr::str("ALL"))]),
                    ),
                    ("ProvisionedThroughput", throughput()),
                ])
            })),
        ));
    }
    properties.extend([
        ("KeySchema", key_schema(t.partition.name, t.sort.name)),
        (
            "PointInTimeRecoverySpecification",
            Expr::map([(
                "PointInTimeRecoveryEnabled",
                t.point_in_time_recovery.into(),
            )]),
        ),
        ("ProvisionedThroughput", throughput()),
        ("SSESpecification", Expr::map([("SSEEnabled", true.into())])),
        ("Tags", tag_list(&t.tags)),
    ]);
    Expr::map(properties)
}

fn user_pool(p: &UserPool) -> Expr {
    Expr::map([
        (
            "AccountRecoverySetting",
            Expr::map([(
                "RecoveryMechanisms",
                Expr::list([Expr::map([
                    ("Name", Expr::str("verified_email")),
                    ("Priority", 1u32.into()),
                ])]),
            )]),
        ),
        ("AutoVerifiedAttributes", Expr::strings(["email"])),
        (
            "DeletionProtection",
            Expr::str(if p.retain { "ACTIVE" } else { "INACTIVE" }),
        ),
        (
            "Policies",
            Expr::map([(
                "PasswordPolicy",
                Expr::map([
                    ("MinimumLength", p.password_min_length.into()),
                    ("RequireLowercase", true.into()),
                    ("RequireNumbers", true.into()),
                    ("RequireSymbols", false.into()),
                    ("RequireUppercase", true.into()),
                    ("TemporaryPasswordValidityDays", 7u32.into()),
                ]),
            )]),
        ),
        (
            "Schema",
            Expr::list([
                Expr::map([
                    ("AttributeDataType", Expr::str("String")),
                    ("Mutable", true.into()),
                    ("Name", Expr::str("email")),
                    ("Required", true.into()),
                ]),
                Expr::map([
                    ("AttributeDataType", Expr::str("String")),
                    ("Mutable", true.into()),
                    ("Name", Expr::str("name")),
                    ("Required", true.into()),
                ]),
            ]),
        ),
        ("UsernameAttributes", Expr::strings(["email"])),
        (
            "UsernameConfiguration",
            Expr::map([("CaseSensitive", false.into())]),
        ),
        ("UserPoolName", Expr::str(&p.name)),
        ("UserPoolTags", tag_map(&p.tags)),
    ])
}

fn user_pool_client(c: &UserPoolClient) -> Expr {
    Expr::map([
        ("ClientName", Expr::str(&c.name)),
        (
            "ExplicitAuthFlows",
            Expr::strings(["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]),
        ),
        ("GenerateSecret", true.into()),
        ("PreventUserExistenceErrors", Expr::str("ENABLED")),
        ("EnableTokenRevocation", true.into()),
        (
            "ReadAttributes",
            Expr::strings(["email", "email_verified", "name"]),
        ),
        ("WriteAttributes", Expr::strings(["email", "name"])),
        ("UserPoolId", c.pool.pool_id().into()),
    ])
}

fn log_group(g: &LogGroup) -> Expr {
    Expr::map([
        ("LogGroupName", Expr::str(&g.name)),
        ("RetentionInDays", g.retention_days.into()),
        ("Tags", tag_list(&g.tags)),
    ])
}

fn role(r: &Role) -> Expr {
    let trust = [Statement {
        sid: if r.trusted_service.starts_with("lambda.") {
            "LambdaAssumeRole"
        } else {
            "ServiceAssumeRole"
        },
        effect: Effect::Allow,
        principal: Some(Expr::map([("Service", Expr::strings([r.trusted_service]))])),
        actions: vec!["sts:AssumeRole"],
        resources: Vec::new(),
        condition: None,
    }];
    let mut props = vec![("AssumeRolePolicyDocument", policy_document(&trust))];
    if !r.managed_policies.is_empty() {
        props.push(("ManagedPolicyArns", Expr::list(r.managed_policies.clone())));
    }
    if !r.statements.is_empty() {
        props.push((
            "Policies",
            Expr::list([Expr::map([
                ("PolicyDocument", policy_document(&r.statements)),
                ("PolicyName", Expr::str(r.policy_name)),
            ])]),
        ));
    }
    props.push(("Tags", tag_list(&r.tags)));
    Expr::map(props)
}

fn function(f: &Function) -> Expr {
    Expr::map([
        ("Architectures", Expr::strings([f.architecture])),
        (
            "Code",
            Expr::map([
                ("S3Bucket", f.code_bucket.value().into()),
                ("S3Key", f.code_key.value().into()),
            ]),
        ),
        (
            "Environment",
            Expr::map([(
                "Variables",
                Expr::map(f.environment.iter().map(|(k, v)| (*k, v.clone()))),
            )]),
        ),
        ("FunctionName", Expr::str(&f.name)),
        ("Handler", Expr::str("bootstrap")),
        (
            "LoggingConfig",
            Expr::map([
                ("LogFormat", Expr::str("Text")),
                ("LogGroup", f.log_group.name().into()),
            ]),
        ),
        ("MemorySize", f.memory_mb.into()),
        ("Role", f.role.arn().into()),
        ("Runtime", Expr::str("provided.al2023")),
        ("Tags", tag_list(&f.tags)),
        ("Timeout", f.timeout_s.into()),
    ])
}

fn rest_api(a: &RestApi) -> Expr {
    Expr::map([
        ("BinaryMediaTypes", Expr::strings(&a.binary_media_types)),
        (
            "EndpointConfiguration",
            Expr::map([("Types", Expr::strings(["REGIONAL"]))]),
        ),
        ("Name", Expr::str(&a.name)),
        ("Tags", tag_list(&a.tags)),
    ])
}

fn api_resource(r: &ApiResource) -> Expr {
    Expr::map([
        ("ParentId", r.api.root_resource_id().into()),
        ("PathPart", Expr::str(r.path_part)),
        ("RestApiId", r.api.api_id().into()),
    ])
}

fn api_method(m: &ApiMethod) -> Expr {
    let resource_id: Expr = match m.target {
        MethodTarget::Root => m.api.root_resource_id().into(),
        MethodTarget::Resource(resource) => resource.resource_id().into(),
    };
    let uri = Sub::new()
        .lit("arn:")
        .pseudo(Pseudo::Partition)
        .lit(":apigateway:")
        .pseudo(Pseudo::Region)
        .lit(":lambda:path/2015-03-31/functions/")
        .var(m.function.arn())
        .lit("/invocations")
        .build();
    Expr::map([
        ("AuthorizationType", Expr::str("NONE")),
        ("HttpMethod", Expr::str("ANY")),
        (
            "Integration",
            Expr::map([
                ("IntegrationHttpMethod", Expr::str("POST")),
                ("Type", Expr::str("AWS_PROXY")),
                ("Uri", uri),
            ]),
        ),
        ("ResourceId", resource_id),
        ("RestApiId", m.api.api_id().into()),
    ])
}

fn api_deployment(d: &ApiDeployment) -> Expr {
    Expr::map([
        (
            "Description",
            Expr::str("CloudAlbum API (proxy to the app function)"),
        ),
        ("RestApiId", d.api.api_id().into()),
    ])
}

/// What an access log line holds: who, what, how it went, how long it took.
const ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","time":"$context.requestTime","method":"$context.httpMethod","path":"$context.path","status":"$context.status","bytes":"$context.responseLength","latencyMs":"$context.responseLatency","integrationLatencyMs":"$context.integrationLatency","integrationError":"$context.integration.error","userAgent":"$context.identity.userAgent"}"#;

fn api_stage(s: &ApiStage) -> Expr {
    let mut props = Vec::new();
    if let Some(log_group) = s.access_log {
        props.push((
            "AccessLogSetting",
            Expr::map([
                ("DestinationArn", log_group.arn().into()),
                ("Format", Expr::str(ACCESS_LOG_FORMAT)),
            ]),
        ));
    }
    props.push(("DeploymentId", s.deployment.deployment_id().into()));
    if let Some(t) = s.throttling {
        props.push((
            "MethodSettings",
            Expr::list([Expr::map([
                ("HttpMethod", Expr::str("*")),
                ("ResourcePath", Expr::str("/*")),
                ("ThrottlingBurstLimit", t.burst.into()),
                ("ThrottlingRateLimit", t.rate.into()),
            ])]),
        ));
    }
    props.extend([
        ("RestApiId", s.api.api_id().into()),
        ("StageName", Expr::str(&s.name)),
        ("Tags", tag_list(&s.tags)),
    ]);
    Expr::map(props)
}

fn lambda_permission(p: &LambdaPermission) -> Expr {
    Expr::map([
        ("Action", Expr::str("lambda:InvokeFunction")),
        ("FunctionName", p.function.arn().into()),
        ("Principal", Expr::str("apigateway.amazonaws.com")),
        ("SourceArn", p.source_arn.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_variables_skip_pseudo_parameters_and_escapes() {
        assert_eq!(
            sub_variables("arn:${AWS::Partition}:x:${Table.Arn}/${!literal}/${Api}"),
            vec!["Table".to_owned(), "Api".to_owned()]
        );
    }
}
