//! Cognito user-pool calls (`SignUp`, `ConfirmSignUp`, `InitiateAuth`, …) with
//! `SECRET_HASH` when the app client has a secret.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A failed Cognito call, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    User(String),
    #[error("the sign-in service failed ({0}); try again in a moment")]
    Service(String),
}

/// The tokens of a signed-in session.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub id: String,
    pub access: String,
    /// Absent when refreshing (Cognito keeps the old one valid).
    pub refresh: Option<String>,
}

/// `SECRET_HASH`: Base64(HMAC-SHA256(key = client secret, message = username + client id)).
pub fn secret_hash(username: &str, client_id: &str, client_secret: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(client_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(username.as_bytes());
    mac.update(client_id.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Maps Cognito's error codes to messages for the form; anything else is a
/// service failure (logged without secrets, shown generically).
fn explain<E: ProvideErrorMetadata + std::fmt::Debug>(err: &E) -> AuthError {
    let message = match err.code() {
        Some("UsernameExistsException") => {
            "an account with this email already exists; sign in instead"
        }
        Some("InvalidPasswordException") => {
            "the password is too weak: use at least 8 characters with upper and lower case letters and a number"
        }
        Some("CodeMismatchException") => "that code is not right; check the email and try again",
        Some("ExpiredCodeException") => "that code has expired; ask for a new one",
        Some("NotAuthorizedException" | "UserNotFoundException") => "wrong email or password",
        Some("UserNotConfirmedException") => {
            "this account is not confirmed yet; enter the code from your email"
        }
        Some("LimitExceededException" | "TooManyRequestsException") => {
            "too many attempts; wait a few minutes and try again"
        }
        Some("InvalidParameterException") => {
            "some of the values are not valid; check them and try again"
        }
        _ => return AuthError::Service(err.code().unwrap_or("unknown").to_owned()),
    };
    AuthError::User(message.to_owned())
}

/// The user pool's app client, as the app uses it.
#[derive(Debug, Clone)]
pub struct Cognito {
    pub client: Client,
    pub client_id: String,
    pub client_secret: Option<String>,
}

impl Cognito {
    fn hash(&self, username: &str) -> Option<String> {
        self.client_secret
            .as_deref()
            .map(|secret| secret_hash(username, &self.client_id, secret))
    }

    pub async fn sign_up(&self, email: &str, password: &str, name: &str) -> Result<(), AuthError> {
        self.client
            .sign_up()
            .client_id(&self.client_id)
            .set_secret_hash(self.hash(email))
            .username(email)
            .password(password)
            .user_attributes(attribute("email", email))
            .user_attributes(attribute("name", name))
            .send()
            .await
            .map_err(|e| explain(&e))?;
        Ok(())
    }

    pub async fn confirm(&self, email: &str, code: &str) -> Result<(), AuthError> {
        self.client
            .confirm_sign_up()
            .client_id(&self.client_id)
            .set_secret_hash(self.hash(email))
            .username(email)
            .confirmation_code(code)
            .send()
            .await
            .map_err(|e| explain(&e))?;
        Ok(())
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Tokens, AuthError> {
        let mut call = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", email)
            .auth_parameters("PASSWORD", password);
        if let Some(hash) = self.hash(email) {
            call = call.auth_parameters("SECRET_HASH", hash);
        }
        let out = call.send().await.map_err(|e| explain(&e))?;
        tokens(out.authentication_result)
    }

    /// New ID and access tokens for a refresh token; `username` is the
    /// `cognito:username` of the session (what `SECRET_HASH` is computed over).
    pub async fn refresh(&self, refresh_token: &str, username: &str) -> Result<Tokens, AuthError> {
        let mut call = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", refresh_token);
        if let Some(hash) = self.hash(username) {
            call = call.auth_parameters("SECRET_HASH", hash);
        }
        let out = call.send().await.map_err(|e| explain(&e))?;
        tokens(out.authentication_result)
    }

    pub async fn forgot_password(&self, email: &str) -> Result<(), AuthError> {
        self.client
            .forgot_password()
            .client_id(&self.client_id)
            .set_secret_hash(self.hash(email))
            .username(email)
            .send()
            .await
            .map_err(|e| explain(&e))?;
        Ok(())
    }

    pub async fn reset_password(
        &self,
        email: &str,
        code: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        self.client
            .confirm_forgot_password()
            .client_id(&self.client_id)
            .set_secret_hash(self.hash(email))
            .username(email)
            .confirmation_code(code)
            .password(password)
            .send()
            .await
            .map_err(|e| explain(&e))?;
        Ok(())
    }

    pub async fn update_name(&self, access_token: &str, name: &str) -> Result<(), AuthError> {
        self.client
            .update_user_attributes()
            .access_token(access_token)
            .user_attributes(attribute("name", name))
            .send()
            .await
            .map_err(|e| explain(&e))?;
        Ok(())
    }

    pub async fn sign_out(&self, access_token: &str) -> Result<(), AuthError> {
        self.client
            .global_sign_out()
            .access_token(access_token)
            .send()
            .await
            .map_err(|e| explain(&e))?;
        Ok(())
    }
}

fn attribute(name: &str, value: &str) -> AttributeType {
    // The builder only fails without a name, and `name` is always given.
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .unwrap_or_else(|_| unreachable!("an attribute with a name always builds"))
}

fn tokens(
    result: Option<aws_sdk_cognitoidentityprovider::types::AuthenticationResultType>,
) -> Result<Tokens, AuthError> {
    let result = result.ok_or_else(|| {
        AuthError::Service("the sign-in answer had no tokens (an unexpected challenge)".to_owned())
    })?;
    match (result.id_token, result.access_token) {
        (Some(id), Some(access)) => Ok(Tokens {
            id,
            access,
            refresh: result.refresh_token,
        }),
        _ => Err(AuthError::Service(
            "the sign-in answer had no tokens".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_matches_the_algorithm() {
        // HMAC-SHA256(key "secret", "user@example.com" + "client123"), Base64.
        let expected = {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret").unwrap();
            mac.update(b"user@example.comclient123");
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        };
        assert_eq!(
            secret_hash("user@example.com", "client123", "secret"),
            expected
        );
        // A known vector, computed independently (Python hmac/hashlib/base64).
        assert_eq!(
            secret_hash("alice", "abc", "key"),
            "uP4Um/OnE/ouFRPp5pikHjGhtuu1Y6eC0iMz9VKtiZ8="
        );
    }
}
