//! Sign-in with Cognito user-pool APIs behind the app's own forms, ID-token
//! verification on every request, and the session and CSRF cookies.

pub mod cognito;
pub mod jwt;
pub mod session;
