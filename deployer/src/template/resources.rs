//! The vocabulary of a template: every resource kind a stage can hold, with
//! typed attributes on its handle (`table.arn()`, `bucket.name()`), and the
//! model of a whole stack. [`Resource`] is one enum that synthesis matches
//! exhaustively: a new kind does not compile until synthesis handles it.
//!
//! Nothing here knows about CloudAlbum; [`super::composition`] composes these
//! into the stage's resources.

use crate::template::intrinsic::{Expr, Handle, LogicalId, Reference};

pub type Tags = Vec<(String, String)>;

#[derive(Debug, Clone)]
pub struct Parameter {
    pub id: LogicalId,
    pub description: &'static str,
}

#[derive(Debug, Clone)]
pub struct CorsRule {
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    pub max_age_s: u32,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub id: LogicalId,
    /// Fixed name from the stage file; `None` lets CloudFormation generate one.
    pub name: Option<String>,
    pub cors: CorsRule,
    pub retain: bool,
    /// Keep every version of every object; noncurrent versions expire after
    /// this many days (`None`: no versioning).
    pub noncurrent_versions_days: Option<u32>,
    /// Objects under each prefix expire this many days after they are written.
    pub expire_prefixes: Vec<(&'static str, u32)>,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct BucketPolicy {
    pub id: LogicalId,
    pub bucket: Handle<Bucket>,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
pub struct KeyAttribute {
    pub name: &'static str,
    /// `S`, `N` or `B`.
    pub kind: &'static str,
}

#[derive(Debug, Clone)]
pub struct SecondaryIndex {
    pub name: &'static str,
    pub partition: KeyAttribute,
    pub sort: KeyAttribute,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub id: LogicalId,
    pub partition: KeyAttribute,
    pub sort: KeyAttribute,
    pub indexes: Vec<SecondaryIndex>,
    /// Literal numbers from the stage file (never a `Ref`; see `docs/emulator.md`).
    pub read_capacity: u32,
    pub write_capacity: u32,
    pub point_in_time_recovery: bool,
    pub retain: bool,
    /// `DeletionProtectionEnabled`: DynamoDB refuses to delete the table.
    pub deletion_protection: bool,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct UserPool {
    pub id: LogicalId,
    pub name: String,
    pub password_min_length: u32,
    /// Survives the stack (`DeletionPolicy`) and refuses deletion
    /// (`DeletionProtection: ACTIVE`).
    pub retain: bool,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct UserPoolClient {
    pub id: LogicalId,
    pub pool: Handle<UserPool>,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct LogGroup {
    pub id: LogicalId,
    pub name: String,
    pub retention_days: u32,
    pub tags: Tags,
}

/// One IAM policy statement. Actions are always named: never `*`.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: &'static str,
    pub effect: Effect,
    pub principal: Option<Expr>,
    pub actions: Vec<&'static str>,
    pub resources: Vec<Expr>,
    pub condition: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: LogicalId,
    /// The service that assumes it (`lambda.amazonaws.com`).
    pub trusted_service: &'static str,
    pub policy_name: &'static str,
    /// The inline policy; none when empty.
    pub statements: Vec<Statement>,
    /// AWS managed policies, by ARN.
    pub managed_policies: Vec<Expr>,
    /// Kept when the stack goes (something outside the stack refers to it).
    pub retain: bool,
    pub tags: Tags,
}

/// The region's API Gateway account settings: the role API Gateway writes
/// logs with. One per account and region, whoever sets it last.
#[derive(Debug, Clone)]
pub struct ApiAccount {
    pub id: LogicalId,
    pub cloudwatch_role: Handle<Role>,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub id: LogicalId,
    pub name: String,
    pub role: Handle<Role>,
    pub code_bucket: Handle<Parameter>,
    pub code_key: Handle<Parameter>,
    pub architecture: &'static str,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub environment: Vec<(&'static str, Expr)>,
    /// The log group must exist (with its retention) before the function logs.
    pub log_group: Handle<LogGroup>,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct RestApi {
    pub id: LogicalId,
    pub name: String,
    pub binary_media_types: Vec<&'static str>,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct ApiResource {
    pub id: LogicalId,
    pub api: Handle<RestApi>,
    pub path_part: &'static str,
}

/// What an API method is attached to.
#[derive(Debug, Clone, Copy)]
pub enum MethodTarget {
    Root,
    Resource(Handle<ApiResource>),
}

#[derive(Debug, Clone)]
pub struct ApiMethod {
    pub id: LogicalId,
    pub api: Handle<RestApi>,
    pub target: MethodTarget,
    pub function: Handle<Function>,
}

#[derive(Debug, Clone)]
pub struct ApiDeployment {
    pub id: LogicalId,
    pub api: Handle<RestApi>,
    /// A deployment snapshots the methods, so it must come after them.
    pub methods: Vec<Handle<ApiMethod>>,
}

#[derive(Debug, Clone)]
pub struct ApiStage {
    pub id: LogicalId,
    pub api: Handle<RestApi>,
    pub deployment: Handle<ApiDeployment>,
    pub name: String,
    /// Every method throttled at this rate and burst.
    pub throttling: Option<Throttling>,
    /// Access logs (one JSON line per request) into this log group.
    pub access_log: Option<Handle<LogGroup>>,
    /// Created after these (the account's logging role before access logs).
    pub depends_on: Vec<LogicalId>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Copy)]
pub struct Throttling {
    /// Steady requests per second.
    pub rate: u32,
    /// Requests at once above the rate.
    pub burst: u32,
}

#[derive(Debug, Clone)]
pub struct LambdaPermission {
    pub id: LogicalId,
    pub function: Handle<Function>,
    pub source_arn: Expr,
}

/// Every resource kind a stage can hold.
#[derive(Debug, Clone)]
pub enum Resource {
    Bucket(Bucket),
    BucketPolicy(BucketPolicy),
    Table(Table),
    UserPool(UserPool),
    UserPoolClient(UserPoolClient),
    LogGroup(LogGroup),
    Role(Role),
    Function(Function),
    RestApi(RestApi),
    ApiResource(ApiResource),
    ApiMethod(ApiMethod),
    ApiDeployment(ApiDeployment),
    ApiStage(ApiStage),
    ApiAccount(ApiAccount),
    LambdaPermission(LambdaPermission),
}

impl Resource {
    pub fn id(&self) -> LogicalId {
        match self {
            Self::Bucket(r) => r.id,
            Self::BucketPolicy(r) => r.id,
            Self::Table(r) => r.id,
            Self::UserPool(r) => r.id,
            Self::UserPoolClient(r) => r.id,
            Self::LogGroup(r) => r.id,
            Self::Role(r) => r.id,
            Self::Function(r) => r.id,
            Self::RestApi(r) => r.id,
            Self::ApiResource(r) => r.id,
            Self::ApiMethod(r) => r.id,
            Self::ApiDeployment(r) => r.id,
            Self::ApiStage(r) => r.id,
            Self::ApiAccount(r) => r.id,
            Self::LambdaPermission(r) => r.id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Output {
    pub id: LogicalId,
    pub description: &'static str,
    pub value: Expr,
}

// ---------------------------------------------------------------------------
// Typed attributes: only what each resource type really has.

impl Handle<Parameter> {
    pub fn value(&self) -> Reference {
        self.reference()
    }
}
impl Handle<Bucket> {
    pub fn name(&self) -> Reference {
        self.reference()
    }
    pub fn arn(&self) -> Reference {
        self.attribute("Arn")
    }
}
impl Handle<Table> {
    pub fn name(&self) -> Reference {
        self.reference()
    }
    pub fn arn(&self) -> Reference {
        self.attribute("Arn")
    }
}
impl Handle<UserPool> {
    pub fn pool_id(&self) -> Reference {
        self.reference()
    }
    pub fn arn(&self) -> Reference {
        self.attribute("Arn")
    }
}
impl Handle<UserPoolClient> {
    pub fn client_id(&self) -> Reference {
        self.reference()
    }
}
impl Handle<LogGroup> {
    pub fn name(&self) -> Reference {
        self.reference()
    }
    pub fn arn(&self) -> Reference {
        self.attribute("Arn")
    }
}
impl Handle<Role> {
    pub fn arn(&self) -> Reference {
        self.attribute("Arn")
    }
}
impl Handle<Function> {
    pub fn name(&self) -> Reference {
        self.reference()
    }
    pub fn arn(&self) -> Reference {
        self.attribute("Arn")
    }
}
impl Handle<RestApi> {
    pub fn api_id(&self) -> Reference {
        self.reference()
    }
    pub fn root_resource_id(&self) -> Reference {
        self.attribute("RootResourceId")
    }
}
impl Handle<ApiResource> {
    pub fn resource_id(&self) -> Reference {
        self.reference()
    }
}
impl Handle<ApiDeployment> {
    pub fn deployment_id(&self) -> Reference {
        self.reference()
    }
}

// ---------------------------------------------------------------------------
// The model of a stack

/// All resources, parameters and outputs of one stack, in template order.
/// All resources, parameters and outputs of one stage, in template order.
#[derive(Debug, Clone)]
pub struct StageModel {
    pub description: String,
    pub parameters: Vec<Parameter>,
    pub resources: Vec<Resource>,
    pub outputs: Vec<Output>,
}

/// A resource's typed handle, taken from the resource itself.
pub trait HasHandle: Sized {
    fn logical_id(&self) -> LogicalId;
    fn handle(&self) -> Handle<Self> {
        Handle::new(self.logical_id())
    }
}

macro_rules! has_handle {
    ($($kind:ident),* $(,)?) => {
        $(impl HasHandle for $kind {
            fn logical_id(&self) -> LogicalId {
                self.id
            }
        })*
    };
}

has_handle!(
    Parameter,
    Bucket,
    Table,
    UserPool,
    UserPoolClient,
    LogGroup,
    Role,
    Function,
    RestApi,
    ApiResource,
    ApiMethod,
    ApiDeployment,
    ApiAccount,
);
