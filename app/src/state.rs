//! Everything handlers share, built once at start-up: settings, SDK clients,
//! templates, the token verifier, the app client's secret.

use std::sync::Arc;

use handlebars::Handlebars;

use crate::auth::cognito::Cognito;
use crate::auth::jwt::Verifier;
use crate::config::{ConfigError, Settings};
use crate::metrics::WaitTimer;
use crate::photos::{Objects, Store};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Templates(#[from] crate::html::TemplateError),
    #[error(transparent)]
    Token(#[from] crate::auth::jwt::TokenError),
    #[error(
        "cannot read the app client `{client}` of user pool `{pool}` ({detail}); the function's role needs `cognito-idp:DescribeUserPoolClient` on the pool"
    )]
    ClientSecret {
        pool: String,
        client: String,
        detail: String,
    },
}

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    /// The photos' objects in the bucket.
    pub objects: Objects,
    /// The photos' items and search index in the table.
    pub store: Store,
    pub cognito: Cognito,
    pub verifier: Verifier,
    /// Who may refresh tokens with Cognito now.
    pub refresh_gate: crate::auth::session::RefreshGate,
    pub templates: Handlebars<'static>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("stage", &self.settings.stage)
            .field("table", &self.settings.table)
            .field("bucket", &self.settings.bucket)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// From the environment; reads the app client's secret from Cognito (it
    /// is never put in the environment or the template).
    pub async fn from_env(pages: crate::html::Sources) -> Result<Self, StartError> {
        let settings = Settings::from_env()?;
        let config = sdk_config(&settings).await;
        let cognito_client = aws_sdk_cognitoidentityprovider::Client::new(&config);
        let described = cognito_client
            .describe_user_pool_client()
            .user_pool_id(&settings.user_pool_id)
            .client_id(&settings.client_id)
            .send()
            .await
            .map_err(|e| StartError::ClientSecret {
                pool: settings.user_pool_id.clone(),
                client: settings.client_id.clone(),
                detail: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            })?;
        let secret = described
            .user_pool_client
            .and_then(|c| c.client_secret)
            .filter(|s| !s.is_empty());
        Self::with(settings, &config, secret, pages)
    }

    /// From explicit settings, SDK configuration, client secret and page
    /// templates (tests).
    pub fn with(
        settings: Settings,
        config: &aws_config::SdkConfig,
        client_secret: Option<String>,
        pages: crate::html::Sources,
    ) -> Result<Self, StartError> {
        // Every client times its calls (`metrics`): what AWS takes is told
        // apart from what the app takes.
        let mut s3 = aws_sdk_s3::config::Builder::from(config).interceptor(WaitTimer);
        if settings.endpoint.is_some() {
            s3 = s3.force_path_style(true);
        }
        let ddb = aws_sdk_dynamodb::config::Builder::from(config).interceptor(WaitTimer);
        let cognito =
            aws_sdk_cognitoidentityprovider::config::Builder::from(config).interceptor(WaitTimer);
        let verifier = Verifier::new(&settings.jwks_url, &settings.issuer, &settings.client_id)?;
        Ok(Self(Arc::new(Inner {
            objects: Objects::new(
                aws_sdk_s3::Client::from_conf(s3.build()),
                settings.bucket.clone(),
            ),
            store: Store {
                ddb: aws_sdk_dynamodb::Client::from_conf(ddb.build()),
                table: settings.table.clone(),
            },
            cognito: Cognito {
                client: aws_sdk_cognitoidentityprovider::Client::from_conf(cognito.build()),
                client_id: settings.client_id.clone(),
                client_secret,
            },
            verifier,
            refresh_gate: crate::auth::session::RefreshGate::default(),
            templates: crate::html::templates(pages, &settings.static_url, &settings.assets)?,
            settings,
        })))
    }
}

/// The SDK configuration: region from the settings, endpoint from
/// `AWS_ENDPOINT_URL` (the local emulator) when set.
pub async fn sdk_config(settings: &Settings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(settings.region.clone()));
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
