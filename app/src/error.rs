//! What a handler can fail with. Every failure becomes a page with a status
//! and a message a person can act on — never a stack trace. Internal details
//! go to the log only.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooLarge(String),
    /// Well-formed request, content that cannot be used (a damaged image).
    #[error("{0}")]
    Unprocessable(String),
    /// Logged in full; the browser sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the page says.
    pub fn public_message(&self) -> String {
        match self {
            Self::NotFound => {
                "There is nothing here. The page or photo may have been deleted.".to_owned()
            }
            Self::Internal(_) => {
                "Something went wrong on our side. Please try again in a moment.".to_owned()
            }
            other => other.to_string(),
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }
}

/// An image over the limits is too large (413); one that cannot be read is
/// unprocessable (422); a thumbnail that cannot be written is our fault.
impl From<crate::images::ImageError> for AppError {
    fn from(err: crate::images::ImageError) -> Self {
        use crate::images::ImageError;
        match err {
            ImageError::TooManyPixels { .. } => Self::TooLarge(err.to_string()),
            ImageError::Encode(_) => Self::internal(err),
            other => Self::Unprocessable(other.to_string()),
        }
    }
}

/// Carried by an error response to the page-rendering middleware.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            eprintln!("error: {detail}");
        }
        let page = ErrorPage {
            status: self.status(),
            message: self.public_message(),
        };
        let mut response = (page.status, page.message.clone()).into_response();
        response.extensions_mut().insert(page);
        response
    }
}
