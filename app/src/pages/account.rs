//! Account pages: sign-up, confirm, sign-in, sign-out, forgot and reset
//! password, profile. Every POST checks the CSRF token and answers with a
//! 303 redirect or the form again with the problem explained.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::page;
use crate::AppState;
use crate::auth::cognito::AuthError;
use crate::auth::session::{Session, SignedIn};
use crate::error::AppError;
use crate::html::url_encode;

/// Field limits, checked before anything is sent to Cognito.
const MAX_EMAIL: usize = 254;
const MAX_NAME: usize = 100;
const MAX_PASSWORD: usize = 256;
const MAX_CODE: usize = 12;

fn check_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= MAX_EMAIL
        && email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err("enter a valid email address".to_owned())
    }
}

fn check_len(value: &str, what: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err(format!("enter your {what}"))
    } else if value.chars().count() > max {
        Err(format!("the {what} is too long (at most {max} characters)"))
    } else {
        Ok(value.to_owned())
    }
}

/// Where to go after signing in: only a path on this site (no scheme, no
/// `//host`, no backslash a browser reads as a slash, no control character
/// it strips or a header could break on).
fn safe_next(session: &Session, next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            if session.base.is_empty() || n.starts_with(&session.base) {
                n.to_owned()
            } else {
                session.link(n)
            }
        }
        _ => session.link("/"),
    }
}

fn form_error(err: AuthError) -> Result<String, AppError> {
    match err {
        AuthError::User(message) => Ok(message),
        AuthError::Service(detail) => Err(AppError::Internal(format!("cognito: {detail}"))),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
    email: Option<String>,
    done: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn signin_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<NextQuery>,
) -> Result<Response, AppError> {
    if session.user.is_some() {
        return Ok(Redirect::to(&session.link("/")).into_response());
    }
    let notice = match q.done.as_deref() {
        Some("confirmed") => Some("Your account is confirmed. Sign in."),
        Some("reset") => Some("Your password was changed. Sign in with the new one."),
        Some("signedout") => Some("You are signed out."),
        _ => None,
    };
    Ok(page(
        &state,
        &session,
        "signin",
        "Sign in",
        json!({ "next": q.next, "email": q.email, "notice": notice }),
    )?
    .into_response())
}

pub async fn signin(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<SignInForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.csrf)?;
    let again = |error: String| {
        page(
            &state,
            &session,
            "signin",
            "Sign in",
            json!({ "next": form.next, "email": form.email, "error": error }),
        )
        .map(IntoResponse::into_response)
    };
    let email = match check_email(&form.email) {
        Ok(email) => email,
        Err(error) => return again(error),
    };
    if form.password.is_empty() || form.password.len() > MAX_PASSWORD {
        return again("enter your password".to_owned());
    }
    match state.cognito.sign_in(&email, &form.password).await {
        Ok(tokens) => {
            let claims = state
                .verifier
                .verify(&tokens.id)
                .await
                .map_err(|e| AppError::Internal(format!("fresh ID token refused: {e}")))?;
            let cookies = session.sign_in_cookies(&tokens, &claims.username)?;
            let to = safe_next(&session, form.next.as_deref());
            Ok((
                AppendHeaders(cookies.into_iter().map(|c| (SET_COOKIE, c))),
                Redirect::to(&to),
            )
                .into_response())
        }
        Err(AuthError::User(message)) if message.contains("not confirmed") => Ok(Redirect::to(
            &session.link(&format!("/confirm?email={}", url_encode(&email))),
        )
        .into_response()),
        Err(err) => again(form_error(err)?),
    }
}

#[derive(Debug, Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    csrf: String,
    email: String,
    name: String,
    password: String,
}

pub async fn signup_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, AppError> {
    Ok(page(&state, &session, "signup", "Create an account", json!({}))?.into_response())
}

pub async fn signup(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<SignUpForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.csrf)?;
    let again = |error: String| {
        page(
            &state,
            &session,
            "signup",
            "Create an account",
            json!({ "email": form.email, "name": form.name, "error": error }),
        )
        .map(IntoResponse::into_response)
    };
    let email = match check_email(&form.email) {
        Ok(e) => e,
        Err(error) => return again(error),
    };
    let name = match check_len(&form.name, "name", MAX_NAME) {
        Ok(n) => n,
        Err(error) => return again(error),
    };
    if form.password.len() < 8 || form.password.len() > MAX_PASSWORD {
        return again("the password needs 8 to 256 characters".to_owned());
    }
    match state.cognito.sign_up(&email, &form.password, &name).await {
        Ok(()) => Ok(Redirect::to(
            &session.link(&format!("/confirm?email={}", url_encode(&email))),
        )
        .into_response()),
        Err(err) => again(form_error(err)?),
    }
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    email: String,
    code: String,
}

pub async fn confirm_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<NextQuery>,
) -> Result<Response, AppError> {
    Ok(page(
        &state,
        &session,
        "confirm",
        "Confirm your email",
        json!({ "email": q.email }),
    )?
    .into_response())
}

pub async fn confirm(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.csrf)?;
    let again = |error: String| {
        page(
            &state,
            &session,
            "confirm",
            "Confirm your email",
            json!({ "email": form.email, "error": error }),
        )
        .map(IntoResponse::into_response)
    };
    let email = match check_email(&form.email) {
        Ok(e) => e,
        Err(error) => return again(error),
    };
    let code = form.code.trim();
    if code.is_empty() || code.len() > MAX_CODE || !code.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return again("enter the code from the email".to_owned());
    }
    match state.cognito.confirm(&email, code).await {
        Ok(()) => Ok(Redirect::to(&session.link(&format!(
            "/signin?done=confirmed&email={}",
            url_encode(&email)
        )))
        .into_response()),
        Err(err) => again(form_error(err)?),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn signout(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.csrf)?;
    if let Some(access) = &session.access_token {
        // Revoke the tokens everywhere; the cookies go whatever Cognito says.
        if let Err(err) = state.cognito.sign_out(access).await {
            eprintln!("sign-out: {err}");
        }
    }
    Ok((
        AppendHeaders(
            session
                .sign_out_cookies()?
                .into_iter()
                .map(|c| (SET_COOKIE, c)),
        ),
        Redirect::to(&session.link("/signin?done=signedout")),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf: String,
    email: String,
}

pub async fn forgot_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, AppError> {
    Ok(page(
        &state,
        &session,
        "forgot",
        "Forgot your password?",
        json!({}),
    )?
    .into_response())
}

pub async fn forgot(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<ForgotForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.csrf)?;
    let email = match check_email(&form.email) {
        Ok(e) => e,
        Err(error) => {
            return Ok(page(
                &state,
                &session,
                "forgot",
                "Forgot your password?",
                json!({ "email": form.email, "error": error }),
            )?
            .into_response());
        }
    };
    // The same answer whether or not the account exists.
    if let Err(err) = state.cognito.forgot_password(&email).await {
        form_error(err)?;
    }
    Ok(
        Redirect::to(&session.link(&format!("/reset?email={}", url_encode(&email))))
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    email: String,
    code: String,
    password: String,
}

pub async fn reset_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<NextQuery>,
) -> Result<Response, AppError> {
    Ok(page(
        &state,
        &session,
        "reset",
        "Choose a new password",
        json!({ "email": q.email }),
    )?
    .into_response())
}

pub async fn reset(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<ResetForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.csrf)?;
    let again = |error: String| {
        page(
            &state,
            &session,
            "reset",
            "Choose a new password",
            json!({ "email": form.email, "error": error }),
        )
        .map(IntoResponse::into_response)
    };
    let email = match check_email(&form.email) {
        Ok(e) => e,
        Err(error) => return again(error),
    };
    if form.password.len() < 8 || form.password.len() > MAX_PASSWORD {
        return again("the password needs 8 to 256 characters".to_owned());
    }
    match state
        .cognito
        .reset_password(&email, form.code.trim(), &form.password)
        .await
    {
        Ok(()) => Ok(Redirect::to(&session.link("/signin?done=reset")).into_response()),
        Err(err) => again(form_error(err)?),
    }
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    csrf: String,
    name: String,
}

pub async fn profile_page(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Query(q): Query<NextQuery>,
) -> Result<Response, AppError> {
    let saved = q.done.as_deref() == Some("saved");
    Ok(page(
        &state,
        &session,
        "profile",
        "Your profile",
        json!({ "name": user.name, "email": user.email, "saved": saved }),
    )?
    .into_response())
}

pub async fn profile(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Form(form): Form<ProfileForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.csrf)?;
    let again = |error: String| {
        page(
            &state,
            &session,
            "profile",
            "Your profile",
            json!({ "name": form.name, "email": user.email, "error": error }),
        )
        .map(IntoResponse::into_response)
    };
    let name = match check_len(&form.name, "name", MAX_NAME) {
        Ok(n) => n,
        Err(error) => return again(error),
    };
    let access = session
        .access_token
        .as_deref()
        .ok_or_else(|| AppError::Forbidden("your session has expired; sign in again".to_owned()))?;
    match state.cognito.update_name(access, &name).await {
        // The ID token still carries the old name until it is refreshed:
        // drop it so the next request refreshes it.
        Ok(()) => Ok((
            AppendHeaders([(SET_COOKIE, session.drop_id_cookie())]),
            Redirect::to(&session.link("/profile?done=saved")),
        )
            .into_response()),
        Err(err) => again(form_error(err)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_normalised() {
        assert_eq!(check_email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "a b@example.com",
            "ann@.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(check_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn next_is_only_a_local_path() {
        let s = Session {
            user: None,
            access_token: None,
            csrf: String::new(),
            base: "/dev".to_owned(),
            secure: true,
            path: "/".to_owned(),
        };
        assert_eq!(safe_next(&s, Some("/dev/photos/1")), "/dev/photos/1");
        assert_eq!(safe_next(&s, Some("/photos/1")), "/dev/photos/1");
        assert_eq!(safe_next(&s, Some("//evil.example")), "/dev/");
        assert_eq!(safe_next(&s, Some("https://evil.example")), "/dev/");
        assert_eq!(safe_next(&s, None), "/dev/");
        for hostile in [
            "/\\evil.example",
            "/\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/photos\r\nSet-Cookie: x=1",
            "/\u{0}/x",
        ] {
            assert_eq!(safe_next(&s, Some(hostile)), "/dev/", "{hostile:?}");
        }
    }
}
