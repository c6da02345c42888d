//! CloudAlbum's composition: the resources of one stage.
//!
//! [`StageModel::build`] turns a validated stage file into resources of the
//! vocabulary in [`super::resources`], whose cross-references are typed
//! [`Handle`]s; [`super::synth`] turns the model into a template. The names the
//! app reads back (environment, table keys, prefixes, outputs) come from the
//! `contract` crate. What differs on an emulator endpoint is asked of
//! [`crate::emulator`], never decided here.

use contract::{env, prefix, table};

use crate::emulator;
use crate::stage::{Stage, StageConfig};
use crate::template::intrinsic::{Expr, Handle, LogicalId, Pseudo, Sub};
use crate::template::resources::{
    ApiAccount, ApiDeployment, ApiMethod, ApiResource, ApiStage, Bucket, BucketPolicy, CorsRule,
    Effect, Function, HasHandle, KeyAttribute, LambdaPermission, LogGroup, MethodTarget, Output,
    Parameter, Resource, RestApi, Role, StageModel, Statement, Table, Tags, Throttling, UserPool,
    UserPoolClient,
};
use crate::template::synth::{Template, resource_json, synthesize, synthesize_only};

/// Logical ids. Stable forever: renaming one replaces the resource.
pub mod ids {
    use contract::outputs;

    use crate::template::intrinsic::LogicalId;

    pub const CODE_BUCKET: LogicalId = LogicalId::new("CodeBucket");
    pub const CODE_KEY: LogicalId = LogicalId::new("CodeKey");
    pub const STATIC_ASSETS: LogicalId = LogicalId::new("StaticAssets");
    pub const BUCKET: LogicalId = LogicalId::new("PhotoBucket");
    pub const BUCKET_POLICY: LogicalId = LogicalId::new("PhotoBucketPolicy");
    pub const TABLE: LogicalId = LogicalId::new("PhotoTable");
    pub const USER_POOL: LogicalId = LogicalId::new("UserPool");
    pub const USER_POOL_CLIENT: LogicalId = LogicalId::new("UserPoolClient");
    pub const LOG_GROUP: LogicalId = LogicalId::new("AppLogGroup");
    pub const ROLE: LogicalId = LogicalId::new("AppRole");
    pub const FUNCTION: LogicalId = LogicalId::new("AppFunction");
    pub const API: LogicalId = LogicalId::new("Api");
    pub const API_PROXY_RESOURCE: LogicalId = LogicalId::new("ApiProxyResource");
    pub const API_ROOT_METHOD: LogicalId = LogicalId::new("ApiRootMethod");
    pub const API_PROXY_METHOD: LogicalId = LogicalId::new("ApiProxyMethod");
    pub const API_DEPLOYMENT: LogicalId = LogicalId::new("ApiDeployment");
    pub const API_STAGE: LogicalId = LogicalId::new("ApiStage");
    pub const API_PERMISSION: LogicalId = LogicalId::new("ApiInvokePermission");
    pub const API_ACCESS_LOGS: LogicalId = LogicalId::new("ApiAccessLogGroup");
    pub const API_LOGS_ROLE: LogicalId = LogicalId::new("ApiGatewayLogsRole");
    pub const API_ACCOUNT: LogicalId = LogicalId::new("ApiGatewayAccount");

    pub const OUT_API_URL: LogicalId = LogicalId::new(outputs::API_URL);
    pub const OUT_STATIC_URL: LogicalId = LogicalId::new(outputs::STATIC_URL);
    pub const OUT_BUCKET_NAME: LogicalId = LogicalId::new(outputs::BUCKET_NAME);
    pub const OUT_TABLE_NAME: LogicalId = LogicalId::new(outputs::TABLE_NAME);
    pub const OUT_USER_POOL_ID: LogicalId = LogicalId::new(outputs::USER_POOL_ID);
    pub const OUT_USER_POOL_CLIENT_ID: LogicalId = LogicalId::new(outputs::USER_POOL_CLIENT_ID);
    pub const OUT_FUNCTION_NAME: LogicalId = LogicalId::new(outputs::FUNCTION_NAME);
}

/// Where the stage is deployed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Real AWS.
    Aws,
    /// An AWS-compatible endpoint (the local emulator), e.g. `http://127.0.0.1:4566`.
    Endpoint(String),
}

impl Target {
    /// `--endpoint-url` wins over the stage file's `endpoint_url`; neither means AWS.
    pub fn of(stage: &Stage, endpoint_override: Option<&str>) -> Self {
        endpoint_override
            .map(|url| url.trim_end_matches('/').to_owned())
            .or_else(|| {
                stage
                    .config
                    .endpoint_url
                    .as_ref()
                    .map(|url| url.as_str().trim_end_matches('/').to_owned())
            })
            .map_or(Self::Aws, Self::Endpoint)
    }
}

/// The template of `stage` deployed to `target`.
pub fn stage_template(stage: &Stage, target: &Target) -> Template {
    synthesize(&StageModel::build(stage, target))
}

/// A resource a retained stage keeps after `down` (`retain_data: true`), and
/// how CloudFormation finds it again to import it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    pub id: LogicalId,
    pub resource_type: &'static str,
    /// The key of `ResourcesToImport`'s identifier: the physical id.
    pub identifier_key: &'static str,
}

/// What survives `down` of a retained stage: the users' data and the users.
pub const RETAINED: [Retained; 3] = [
    Retained {
        id: ids::TABLE,
        resource_type: "AWS::DynamoDB::Table",
        identifier_key: "TableName",
    },
    Retained {
        id: ids::BUCKET,
        resource_type: "AWS::S3::Bucket",
        identifier_key: "BucketName",
    },
    Retained {
        id: ids::USER_POOL,
        resource_type: "AWS::Cognito::UserPool",
        identifier_key: "UserPoolId",
    },
];

/// The template that re-adopts a retained stage's survivors into a new stack
/// (an `IMPORT` change set): the [`RETAINED`] resources as the stage's full
/// template declares them, and nothing else.
pub fn import_template(stage: &Stage, target: &Target) -> Template {
    let ids: Vec<LogicalId> = RETAINED.iter().map(|r| r.id).collect();
    synthesize_only(&StageModel::build(stage, target), &ids)
}

/// `arn:${AWS::Partition}:<service>:${AWS::Region}:${AWS::AccountId}:` as a `Sub` prefix.
fn regional_arn(service: &str) -> Sub {
    Sub::new()
        .lit("arn:")
        .pseudo(Pseudo::Partition)
        .lit(format!(":{service}:"))
        .pseudo(Pseudo::Region)
        .lit(":")
        .pseudo(Pseudo::AccountId)
        .lit(":")
}

/// How long a retained stage keeps overwritten or deleted photo versions.
pub const NONCURRENT_VERSION_DAYS: u32 = 30;

/// What every builder below needs to know about the stage.
struct Ctx<'a> {
    config: &'a StageConfig,
    stage: &'a str,
    stack: String,
    target: &'a Target,
    tags: Tags,
}

impl StageModel {
    /// The resources of `stage` deployed to `target`.
    pub fn build(stage: &Stage, target: &Target) -> Self {
        let ctx = Ctx {
            config: &stage.config,
            stage: stage.name.as_str(),
            stack: stage.stack_name(),
            target,
            tags: tags(&stage.config, stage.name.as_str()),
        };
        let (bucket, bucket_policy, table) = data_resources(&ctx);
        let (pool, client) = auth_resources(&ctx);
        let (code_bucket, code_key) = code_parameters();
        let static_assets = static_assets_parameter();
        let app = AppResources::build(
            &ctx,
            Handle::new(code_bucket.id),
            Handle::new(code_key.id),
            AppDeps {
                bucket: bucket.handle(),
                table: table.handle(),
                pool: pool.handle(),
                client: client.handle(),
                static_assets: Handle::new(static_assets.id),
            },
        );
        let api = ApiResources::build(&ctx, app.function.handle());
        let outputs = outputs(
            &ctx,
            &bucket,
            &table,
            &pool,
            &client,
            &app.function,
            &api.api,
        );

        let mut resources = vec![
            Resource::Bucket(bucket),
            Resource::BucketPolicy(bucket_policy),
            Resource::Table(table),
            Resource::UserPool(pool),
            Resource::UserPoolClient(client),
            Resource::LogGroup(app.log_group),
            Resource::Role(app.role),
            Resource::Function(app.function),
        ];
        resources.extend(api.into_resources());
        Self {
            description: format!(
                "CloudAlbum stage `{}` ({}): photo album on Lambda, API Gateway, S3, DynamoDB and Cognito. Generated by `deployer`; do not edit.",
                ctx.stage, ctx.stack
            ),
            parameters: vec![code_bucket, code_key, static_assets],
            resources,
            outputs,
        }
    }
}

fn code_parameters() -> (Parameter, Parameter) {
    (
        Parameter {
            id: ids::CODE_BUCKET,
            description: "Bucket holding the function's code zip (the deployer's artifacts bucket)",
        },
        Parameter {
            id: ids::CODE_KEY,
            description: "Key of the function's code zip: content-addressed by its SHA-256",
        },
    )
}

/// The versioned names of the static files (`contract::assets::Manifest`):
/// computed by the deployer from the bytes it uploads, a parameter so the
/// template stays the same for the same stage.
fn static_assets_parameter() -> Parameter {
    Parameter {
        id: ids::STATIC_ASSETS,
        description: "Versioned names of the static files: <path>=<content hash>, comma-separated",
    }
}

/// The photo bucket (with its TLS-only policy) and the photo table.
fn data_resources(ctx: &Ctx<'_>) -> (Bucket, BucketPolicy, Table) {
    let config = ctx.config;
    let bucket = Bucket {
        id: ids::BUCKET,
        name: config.bucket.name.as_ref().map(|n| n.as_str().to_owned()),
        cors: CorsRule {
            allowed_origins: strings(&config.bucket.cors_allowed_origins),
            allowed_methods: config
                .bucket
                .cors_allowed_methods
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            allowed_headers: strings(&config.bucket.cors_allowed_headers),
            exposed_headers: vec!["ETag".to_owned()],
            max_age_s: config.bucket.cors_max_age.get(),
        },
        retain: config.retain_data,
        // A retained stage keeps every photo's earlier versions for a month:
        // an app bug that overwrites or deletes one can be undone.
        noncurrent_versions_days: config.retain_data.then_some(NONCURRENT_VERSION_DAYS),
        // An upload the app never claimed (the browser gave up, the claim failed)
        // is not a photo: it goes after a day instead of staying forever.
        expire_prefixes: vec![(prefix::STAGING, contract::defaults::STAGING_EXPIRY_DAYS)],
        tags: ctx.tags.clone(),
    };
    let bucket_h = bucket.handle();
    let bucket_policy = BucketPolicy {
        id: ids::BUCKET_POLICY,
        bucket: bucket_h,
        statements: vec![Statement {
            sid: "DenyInsecureTransport",
            effect: Effect::Deny,
            principal: Some(Expr::str("*")),
            actions: vec![
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:ListBucket",
            ],
            resources: vec![
                bucket_h.arn().into(),
                Sub::new().var(bucket_h.arn()).lit("/*").build(),
            ],
            condition: Some(Expr::map([(
                "Bool",
                Expr::map([("aws:SecureTransport", Expr::str("false"))]),
            )])),
        }],
    };
    let key = |name| KeyAttribute { name, kind: "S" };
    let table = Table {
        id: ids::TABLE,
        partition: key(table::PARTITION_KEY),
        sort: key(table::SORT_KEY),
        // No index: the album, search and map all `Query` the user's own
        // partition; an index nothing queries only costs capacity.
        indexes: Vec::new(),
        read_capacity: config.table.read_capacity.get(),
        write_capacity: config.table.write_capacity.get(),
        point_in_time_recovery: config
            .table
            .point_in_time_recovery
            .unwrap_or(config.retain_data),
        retain: config.retain_data,
        deletion_protection: config.retain_data,
        tags: ctx.tags.clone(),
    };
    (bucket, bucket_policy, table)
}

/// The user pool and the web app's client. No hosted-UI domain: the app has
/// its own forms.
fn auth_resources(ctx: &Ctx<'_>) -> (UserPool, UserPoolClient) {
    let pool = UserPool {
        id: ids::USER_POOL,
        name: ctx.stack.clone(),
        password_min_length: 8,
        // Photos are keyed by the user's `sub`: a bucket that outlives its
        // pool is data nobody can reach, so the pool is retained with them.
        retain: ctx.config.retain_data,
        tags: ctx.tags.clone(),
    };
    let client = UserPoolClient {
        id: ids::USER_POOL_CLIENT,
        pool: pool.handle(),
        name: format!("{}-web", ctx.stack),
    };
    (pool, client)
}

/// What the function is given access to.
#[derive(Clone, Copy)]
struct AppDeps {
    bucket: Handle<Bucket>,
    table: Handle<Table>,
    pool: Handle<UserPool>,
    client: Handle<UserPoolClient>,
    static_assets: Handle<Parameter>,
}

/// The function, its role and its log group.
struct AppResources {
    log_group: LogGroup,
    role: Role,
    function: Function,
}

impl AppResources {
    fn build(
        ctx: &Ctx<'_>,
        code_bucket: Handle<Parameter>,
        code_key: Handle<Parameter>,
        deps: AppDeps,
    ) -> Self {
        let function_name = ctx.stack.clone();
        let log_group = LogGroup {
            id: ids::LOG_GROUP,
            name: format!("/aws/lambda/{function_name}"),
            retention_days: ctx.config.log_retention_days.get(),
            tags: ctx.tags.clone(),
        };
        let role = Role {
            id: ids::ROLE,
            trusted_service: "lambda.amazonaws.com",
            policy_name: "cloudalbum-app",
            statements: app_statements(deps.table, deps.bucket, deps.pool, log_group.handle()),
            managed_policies: Vec::new(),
            retain: false,
            tags: ctx.tags.clone(),
        };
        let function = Function {
            id: ids::FUNCTION,
            name: function_name,
            role: role.handle(),
            code_bucket,
            code_key,
            architecture: ctx.config.function.architecture.as_str(),
            memory_mb: ctx.config.function.memory_mb.get(),
            timeout_s: ctx.config.function.timeout_s.get(),
            environment: environment(ctx, &deps),
            log_group: log_group.handle(),
            tags: ctx.tags.clone(),
        };
        Self {
            log_group,
            role,
            function,
        }
    }
}

/// The REST API in front of the function: `/` and `/{proxy+}`, one stage.
struct ApiResources {
    api: RestApi,
    proxy: ApiResource,
    root_method: ApiMethod,
    proxy_method: ApiMethod,
    deployment: ApiDeployment,
    stage: ApiStage,
    permission: LambdaPermission,
    access_logs: Option<AccessLogs>,
}

/// Where the stage's access logs go, and what lets API Gateway write them.
struct AccessLogs {
    log_group: LogGroup,
    role: Role,
    account: ApiAccount,
}

impl AccessLogs {
    fn build(ctx: &Ctx<'_>) -> Self {
        let role = Role {
            id: ids::API_LOGS_ROLE,
            trusted_service: "apigateway.amazonaws.com",
            policy_name: "apigateway-logs",
            statements: Vec::new(),
            managed_policies: vec![
                Sub::new()
                    .lit("arn:")
                    .pseudo(Pseudo::Partition)
                    .lit(":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
                    .build(),
            ],
            // The region's API Gateway settings keep naming this role after
            // the stack is gone; deleting it would break every other stage's
            // logs in the account.
            retain: true,
            tags: ctx.tags.clone(),
        };
        Self {
            log_group: LogGroup {
                id: ids::API_ACCESS_LOGS,
                name: format!("/aws/apigateway/{}/access", ctx.stack),
                retention_days: ctx.config.log_retention_days.get(),
                tags: ctx.tags.clone(),
            },
            account: ApiAccount {
                id: ids::API_ACCOUNT,
                cloudwatch_role: role.handle(),
            },
            role,
        }
    }
}

impl ApiResources {
    fn build(ctx: &Ctx<'_>, function: Handle<Function>) -> Self {
        let api = RestApi {
            id: ids::API,
            name: ctx.stack.clone(),
            binary_media_types: vec!["image/*", "multipart/form-data", "application/octet-stream"],
            tags: ctx.tags.clone(),
        };
        let api_h = api.handle();
        let proxy = ApiResource {
            id: ids::API_PROXY_RESOURCE,
            api: api_h,
            path_part: "{proxy+}",
        };
        let root_method = ApiMethod {
            id: ids::API_ROOT_METHOD,
            api: api_h,
            target: MethodTarget::Root,
            function,
        };
        let proxy_method = ApiMethod {
            id: ids::API_PROXY_METHOD,
            api: api_h,
            target: MethodTarget::Resource(proxy.handle()),
            function,
        };
        let deployment = ApiDeployment {
            id: deployment_id(&[
                Resource::RestApi(api.clone()),
                Resource::ApiResource(proxy.clone()),
                Resource::ApiMethod(root_method.clone()),
                Resource::ApiMethod(proxy_method.clone()),
            ]),
            api: api_h,
            methods: vec![root_method.handle(), proxy_method.handle()],
        };
        let access_logs = ctx.config.api_access_logs().then(|| AccessLogs::build(ctx));
        let stage = ApiStage {
            id: ids::API_STAGE,
            api: api_h,
            deployment: deployment.handle(),
            name: ctx.stage.to_owned(),
            throttling: ctx.config.api_throttling().then(|| Throttling {
                rate: ctx.config.api.rate_limit.get(),
                burst: ctx.config.api.burst_limit.get(),
            }),
            access_log: access_logs.as_ref().map(|a| a.log_group.handle()),
            depends_on: access_logs.iter().map(|a| a.account.id).collect(),
            tags: ctx.tags.clone(),
        };
        let permission = LambdaPermission {
            id: ids::API_PERMISSION,
            function,
            // Only this API's stage may invoke the function, any method and path.
            source_arn: regional_arn("execute-api")
                .var(api_h.api_id())
                .lit(format!("/{}/*/*", ctx.stage))
                .build(),
        };
        Self {
            api,
            proxy,
            root_method,
            proxy_method,
            deployment,
            stage,
            permission,
            access_logs,
        }
    }

    fn into_resources(self) -> Vec<Resource> {
        let mut resources = vec![
            Resource::RestApi(self.api),
            Resource::ApiResource(self.proxy),
            Resource::ApiMethod(self.root_method),
            Resource::ApiMethod(self.proxy_method),
            Resource::ApiDeployment(self.deployment),
            Resource::ApiStage(self.stage),
            Resource::LambdaPermission(self.permission),
        ];
        if let Some(logs) = self.access_logs {
            resources.extend([
                Resource::LogGroup(logs.log_group),
                Resource::Role(logs.role),
                Resource::ApiAccount(logs.account),
            ]);
        }
        resources
    }
}

/// A deployment is an immutable snapshot of the API (its resources, methods,
/// integrations and binary media types): its id carries a hash of what it
/// snapshots, so a changed API gets a new deployment and the stage moves to it.
fn deployment_id(snapshot: &[Resource]) -> LogicalId {
    let text = snapshot.iter().fold(String::new(), |mut text, r| {
        use std::fmt::Write as _;
        let _ = writeln!(text, "{} {}", r.id(), resource_json(r));
        text
    });
    ids::API_DEPLOYMENT.with_content_hash(text.as_bytes())
}

fn outputs(
    ctx: &Ctx<'_>,
    bucket: &Bucket,
    table: &Table,
    pool: &UserPool,
    client: &UserPoolClient,
    function: &Function,
    api: &RestApi,
) -> Vec<Output> {
    let output = |id, description, value| Output {
        id,
        description,
        value,
    };
    vec![
        output(
            ids::OUT_API_URL,
            "URL of the app",
            api_url(ctx.target, api.handle(), ctx.stage),
        ),
        output(
            ids::OUT_STATIC_URL,
            "Base URL of the public static assets",
            static_url(ctx.target, bucket.handle()),
        ),
        output(
            ids::OUT_BUCKET_NAME,
            "Bucket of photos (private) and static assets (public-read)",
            bucket.handle().name().into(),
        ),
        output(
            ids::OUT_TABLE_NAME,
            "DynamoDB table of photos",
            table.handle().name().into(),
        ),
        output(
            ids::OUT_USER_POOL_ID,
            "Cognito user pool",
            pool.handle().pool_id().into(),
        ),
        output(
            ids::OUT_USER_POOL_CLIENT_ID,
            "Cognito app client of the web app",
            client.handle().client_id().into(),
        ),
        output(
            ids::OUT_FUNCTION_NAME,
            "Lambda function serving the app",
            function.handle().name().into(),
        ),
    ]
}

fn strings<T: AsRef<str>>(items: &[T]) -> Vec<String> {
    items.iter().map(|i| i.as_ref().to_owned()).collect()
}

/// The stage file's tags plus two that say which stage a resource belongs to.
fn tags(config: &StageConfig, stage: &str) -> Tags {
    let mut tags: Tags = config
        .tags
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
        .collect();
    for (key, value) in [
        ("deployer:app", config.app.as_str()),
        ("deployer:stage", stage),
    ] {
        if !tags.iter().any(|(k, _)| k == key) {
            tags.push((key.to_owned(), value.to_owned()));
        }
    }
    tags.sort();
    tags
}

/// Least privilege for the app: named actions on known ARNs only.
fn app_statements(
    table: Handle<Table>,
    bucket: Handle<Bucket>,
    pool: Handle<UserPool>,
    log_group: Handle<LogGroup>,
) -> Vec<Statement> {
    let allow = |sid, actions, resources| Statement {
        sid,
        effect: Effect::Allow,
        principal: None,
        actions,
        resources,
        condition: None,
    };
    vec![
        allow(
            "PhotoTable",
            vec![
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
            ],
            vec![
                table.arn().into(),
                Sub::new().var(table.arn()).lit("/index/*").build(),
            ],
        ),
        allow(
            "PhotoObjects",
            vec!["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            vec![
                Sub::new()
                    .var(bucket.arn())
                    .lit(format!("/{}*", prefix::PHOTOS))
                    .build(),
                Sub::new()
                    .var(bucket.arn())
                    .lit(format!("/{}*", prefix::STAGING))
                    .build(),
            ],
        ),
        // The app never lists, but without `s3:ListBucket` S3 answers a
        // `HeadObject` on a missing key with 403 instead of 404.
        Statement {
            condition: Some(Expr::map([(
                "StringLike",
                Expr::map([("s3:prefix", Expr::str(format!("{}*", prefix::PHOTOS)))]),
            )])),
            ..allow(
                "ListOwnPhotos",
                vec!["s3:ListBucket"],
                vec![bucket.arn().into()],
            )
        },
        allow(
            "UserPoolClientSecret",
            vec!["cognito-idp:DescribeUserPoolClient"],
            vec![pool.arn().into()],
        ),
        allow(
            "OwnLogs",
            vec!["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![log_group.arn().into()],
        ),
    ]
}

/// The function's settings; the app reads them at start-up.
fn environment(ctx: &Ctx<'_>, deps: &AppDeps) -> Vec<(&'static str, Expr)> {
    let config = ctx.config;
    let mut env = vec![
        (env::STAGE, Expr::str(ctx.stage)),
        (env::TABLE_NAME, deps.table.name().into()),
        (env::BUCKET_NAME, deps.bucket.name().into()),
        (env::USER_POOL_ID, deps.pool.pool_id().into()),
        (env::USER_POOL_CLIENT_ID, deps.client.client_id().into()),
        (env::COGNITO_ISSUER, cognito_issuer(deps.pool)),
        (env::STATIC_URL, static_url(ctx.target, deps.bucket)),
        (env::STATIC_ASSETS, deps.static_assets.value().into()),
        (
            env::THUMBNAIL_WIDTH,
            Expr::str(config.thumbnail.width.to_string()),
        ),
        (
            env::THUMBNAIL_HEIGHT,
            Expr::str(config.thumbnail.height.to_string()),
        ),
        // What image processing budgets for (Lambda's own
        // `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` says the same; a local run has only this).
        (
            env::MEMORY_MB,
            Expr::str(config.function.memory_mb.get().to_string()),
        ),
        (
            env::MAX_UPLOAD_BYTES,
            Expr::str((u64::from(config.photos.max_upload_mb.get()) * contract::MB).to_string()),
        ),
        // API Gateway REST events carry the stage in the path; routes don't.
        (env::IGNORE_STAGE_IN_PATH, Expr::str("true")),
    ];
    if let Target::Endpoint(url) = ctx.target {
        env.extend(emulator::function_environment(url, deps.pool));
    }
    env
}

/// The token issuer, built with `Fn::Sub` (`GetAtt UserPool.ProviderURL` is not
/// supported by the emulator, and this form is equally right on AWS).
fn cognito_issuer(pool: Handle<UserPool>) -> Expr {
    Sub::new()
        .lit("https://cognito-idp.")
        .pseudo(Pseudo::Region)
        .lit(".")
        .pseudo(Pseudo::UrlSuffix)
        .lit("/")
        .var(pool.pool_id())
        .build()
}

fn api_url(target: &Target, api: Handle<RestApi>, stage: &str) -> Expr {
    match target {
        Target::Aws => Sub::new()
            .lit("https://")
            .var(api.api_id())
            .lit(".execute-api.")
            .pseudo(Pseudo::Region)
            .lit(".")
            .pseudo(Pseudo::UrlSuffix)
            .lit(format!("/{stage}/"))
            .build(),
        Target::Endpoint(url) => emulator::api_url(url, api, stage),
    }
}

fn static_url(target: &Target, bucket: Handle<Bucket>) -> Expr {
    match target {
        Target::Aws => Sub::new()
            .lit("https://")
            .var(bucket.name())
            .lit(".s3.")
            .pseudo(Pseudo::Region)
            .lit(".")
            .pseudo(Pseudo::UrlSuffix)
            .lit(format!("/{}", prefix::STATIC))
            .build(),
        Target::Endpoint(url) => emulator::static_url(url, bucket),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{StageConfig, StageName};
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn stage(text: &str) -> Stage {
        Stage {
            name: StageName::parse("dev").unwrap(),
            path: PathBuf::from("stacks/dev.yaml"),
            config: StageConfig::parse(text, &PathBuf::from("stacks/dev.yaml")).unwrap(),
        }
    }

    const DEV: &str =
        "app: cloudalbum\nregion: ap-southeast-1\ntable: { read_capacity: 7, write_capacity: 9 }\n";

    #[test]
    fn the_import_template_holds_the_retained_resources_as_the_full_template_does() {
        let retained = stage(&format!("{DEV}retain_data: true\n"));
        let full = stage_template(&retained, &Target::Aws);
        let import = import_template(&retained, &Target::Aws);
        let resources = import.as_json()["Resources"].as_object().unwrap();
        let ids: Vec<&str> = resources.keys().map(String::as_str).collect();
        assert_eq!(ids, ["PhotoBucket", "PhotoTable", "UserPool"]);
        for r in RETAINED {
            let id = r.id.to_string();
            // Identical to the full template, so the update that follows
            // the import changes nothing about them.
            assert_eq!(resources[&id], full.as_json()["Resources"][&id], "{id}");
            assert_eq!(resources[&id]["Type"], r.resource_type, "{id}");
            // CloudFormation imports nothing without a DeletionPolicy.
            assert_eq!(resources[&id]["DeletionPolicy"], "RetainExceptOnCreate");
        }
        // An import may add nothing else: no parameters, no outputs, and no
        // reference to a resource it does not hold.
        assert!(import.as_json().get("Parameters").is_none());
        assert!(import.as_json().get("Outputs").is_none());
        assert!(
            import.referenced_ids().is_empty(),
            "{:?}",
            import.referenced_ids()
        );
        assert_eq!(
            import.body(),
            import_template(&retained, &Target::Aws).body()
        );
    }

    #[test]
    fn every_reference_points_at_a_declared_resource_or_parameter() {
        let model = StageModel::build(&stage(DEV), &Target::Aws);
        let declared: BTreeSet<String> = model
            .resources
            .iter()
            .map(Resource::id)
            .chain(model.parameters.iter().map(|p| p.id))
            .map(|id| id.to_string())
            .collect();
        assert_eq!(
            declared.len(),
            model.resources.len() + model.parameters.len()
        );
        let synthesized = crate::template::synth::synthesize(&model);
        for id in synthesized.referenced_ids() {
            assert!(
                declared.contains(&id),
                "{id} is referenced but not declared"
            );
        }
    }

    #[test]
    fn no_wildcard_actions_and_no_wildcard_resources_in_the_app_role() {
        let model = StageModel::build(&stage(DEV), &Target::Aws);
        let role = model
            .resources
            .iter()
            .find_map(|r| match r {
                Resource::Role(role) => Some(role),
                _ => None,
            })
            .unwrap();
        for statement in &role.statements {
            assert_eq!(statement.effect, Effect::Allow);
            for action in &statement.actions {
                assert!(!action.contains('*'), "{action}");
            }
            for resource in &statement.resources {
                assert_ne!(resource, &Expr::str("*"));
                assert!(!resource.targets().is_empty(), "{resource:?} names no ARN");
            }
        }
    }

    #[test]
    fn capacity_is_a_literal_number_from_the_stage_file() {
        let model = StageModel::build(&stage(DEV), &Target::Aws);
        let table = model
            .resources
            .iter()
            .find_map(|r| match r {
                Resource::Table(t) => Some(t),
                _ => None,
            })
            .unwrap();
        assert_eq!((table.read_capacity, table.write_capacity), (7, 9));
    }

    #[test]
    fn endpoint_environment_only_when_targeting_an_endpoint() {
        let aws = StageModel::build(&stage(DEV), &Target::Aws);
        let local = StageModel::build(
            &stage(DEV),
            &Target::Endpoint("http://127.0.0.1:4566".to_owned()),
        );
        let env_names = |model: &StageModel| -> Vec<&'static str> {
            model
                .resources
                .iter()
                .find_map(|r| match r {
                    Resource::Function(f) => Some(f.environment.iter().map(|(k, _)| *k).collect()),
                    _ => None,
                })
                .unwrap()
        };
        assert!(!env_names(&aws).contains(&env::AWS_ENDPOINT_URL));
        assert!(env_names(&local).contains(&env::AWS_ENDPOINT_URL));
        assert!(env_names(&local).contains(&env::COGNITO_JWKS_URL));
    }

    #[test]
    fn emulator_api_url_uses_the_execute_api_localhost_host() {
        let api = Handle::<RestApi>::new(ids::API);
        assert_eq!(
            emulator::api_url("http://127.0.0.1:4566", api, "local").to_json(),
            serde_json::json!({"Fn::Sub": "http://${Api}.execute-api.localhost:4566/local/"})
        );
        assert_eq!(
            emulator::api_url("http://emu.internal:80", api, "local").to_json(),
            serde_json::json!({"Fn::Sub": "http://emu.internal:80/_aws/execute-api/${Api}/local/"})
        );
    }

    fn deployment_of(model: &StageModel) -> String {
        model
            .resources
            .iter()
            .find_map(|r| match r {
                Resource::ApiDeployment(d) => Some(d.id.to_string()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn the_api_deployment_id_changes_when_the_api_does() {
        let model = StageModel::build(&stage(DEV), &Target::Aws);
        let id = deployment_of(&model);
        assert!(id.starts_with("ApiDeployment") && id.len() == 23, "{id}");
        // Same API, same id: an unrelated change (capacity) keeps it.
        let capacity = StageModel::build(
            &stage(
                "app: cloudalbum\nregion: ap-southeast-1\ntable: { read_capacity: 8, write_capacity: 9 }\n",
            ),
            &Target::Aws,
        );
        assert_eq!(deployment_of(&capacity), id);
        // The stage points at the deployment with that id.
        let template = crate::template::synth::synthesize(&model);
        assert_eq!(
            template.as_json()["Resources"]["ApiStage"]["Properties"]["DeploymentId"],
            serde_json::json!({ "Ref": id })
        );
        // A changed API (binary media types, a method) is a new deployment.
        let api: Vec<Resource> = model
            .resources
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Resource::RestApi(_) | Resource::ApiResource(_) | Resource::ApiMethod(_)
                )
            })
            .cloned()
            .collect();
        assert_eq!(deployment_id(&api).to_string(), id);
        let mut more_types = api.clone();
        for resource in &mut more_types {
            if let Resource::RestApi(api) = resource {
                api.binary_media_types.push("application/pdf");
            }
        }
        assert_ne!(deployment_id(&more_types).to_string(), id);
        let mut other_path = api.clone();
        for resource in &mut other_path {
            if let Resource::ApiResource(r) = resource {
                r.path_part = "{any+}";
            }
        }
        assert_ne!(deployment_id(&other_path).to_string(), id);
        assert_ne!(deployment_id(&api[..3]).to_string(), id, "a method removed");
        // Another function behind the API (a new integration URI) too.
        let other = StageModel::build(
            &stage("app: photos\nregion: ap-southeast-1\n"),
            &Target::Aws,
        );
        assert_ne!(deployment_of(&other), id);
    }

    #[test]
    fn names_derived_from_the_longest_app_and_stage_obey_each_services_rules() {
        use crate::stage::{MAX_APP_NAME, MAX_STAGE_NAME};
        let app = format!("a{}", "b".repeat(MAX_APP_NAME - 1));
        let mut s = stage(&format!("app: {app}\nregion: ap-southeast-1\n"));
        s.name = StageName::parse(&"s".repeat(MAX_STAGE_NAME)).unwrap();
        let model = StageModel::build(&s, &Target::Aws);
        let stack = s.stack_name();
        // CloudFormation: 1-128, a letter first, then letters, digits, hyphens.
        assert!(stack.len() <= 128 && stack.starts_with(|c: char| c.is_ascii_alphabetic()));
        assert!(stack.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        for resource in &model.resources {
            match resource {
                // Lambda: 1-64 of letters, digits, hyphens, underscores.
                Resource::Function(f) => assert!(f.name.len() <= 64, "{}", f.name),
                // CloudWatch Logs: up to 512.
                Resource::LogGroup(g) => assert!(g.name.len() <= 512, "{}", g.name),
                // Cognito: pool and client names up to 128.
                Resource::UserPool(p) => assert!(p.name.len() <= 128, "{}", p.name),
                Resource::UserPoolClient(c) => assert!(c.name.len() <= 128, "{}", c.name),
                // API Gateway names: up to 1024; stage names: letters, digits, `-`, `_`, up to 128.
                Resource::RestApi(a) => assert!(a.name.len() <= 1024, "{}", a.name),
                Resource::ApiStage(st) => assert!(st.name.len() <= 128, "{}", st.name),
                // No role name is set: CloudFormation generates one within IAM's 64.
                _ => {}
            }
        }
        assert!(
            StageModel::build(&s, &Target::Aws)
                .resources
                .iter()
                .any(|r| matches!(r, Resource::Function(f) if f.name.len() == 64))
        );
    }

    #[test]
    fn tags_merge_stage_file_and_deployer_tags_sorted() {
        let s = stage("app: cloudalbum\nregion: us-east-1\ntags: { team: album }\n");
        assert_eq!(
            tags(&s.config, "dev"),
            vec![
                ("deployer:app".to_owned(), "cloudalbum".to_owned()),
                ("deployer:stage".to_owned(), "dev".to_owned()),
                ("team".to_owned(), "album".to_owned()),
            ]
        );
    }
}
