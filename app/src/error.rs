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
    /// Another request changed the same thing meanwhile.
    #[error("{0}")]
    Conflict(String),
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
            Self::Conflict(_) => StatusCode::CONFLICT,
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
            // Not an image at all is a bad request, as a wrong type is.
            ImageError::NotAnImage => Self::BadRequest(err.to_string()),
            ImageError::Encode(_) => Self::internal(err),
            other => Self::Unprocessable(other.to_string()),
        }
    }
}

impl From<crate::photos::objects::ObjectsError> for AppError {
    fn from(err: crate::photos::objects::ObjectsError) -> Self {
        use crate::photos::objects::ObjectsError as E;
        match err {
            E::Aws { .. } => Self::internal(err),
            E::Missing | E::Empty => Self::BadRequest(err.to_string()),
            E::TooLarge { .. } => Self::TooLarge(err.to_string()),
            E::Taken(_) | E::SourceChanged => Self::Conflict(err.to_string()),
        }
    }
}

impl From<crate::photos::table::TableError> for AppError {
    fn from(err: crate::photos::table::TableError) -> Self {
        use crate::photos::table::TableError as E;
        match err {
            E::Aws { .. } => Self::internal(err),
            E::TooManyWords => Self::BadRequest(err.to_string()),
            E::Changed | E::Exists(_) | E::Claimed(_) => Self::Conflict(err.to_string()),
        }
    }
}

impl From<crate::photos::ingest::IngestError> for AppError {
    fn from(err: crate::photos::ingest::IngestError) -> Self {
        use crate::photos::ingest::IngestError as E;
        match err {
            E::Objects(e) => e.into(),
            E::Table(e) => e.into(),
            E::Image(e) => e.into(),
            E::Internal(_) | E::Injected(_) => Self::internal(err),
            E::Unknown | E::WrongType { .. } => Self::BadRequest(err.to_string()),
            E::Busy => Self::Conflict(err.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::ImageError;
    use crate::photos::ingest::IngestError;
    use crate::photos::objects::ObjectsError;
    use crate::photos::table::TableError;

    #[test]
    fn domain_errors_become_the_right_status_and_hide_internals() {
        let cases: [(AppError, StatusCode); 7] = [
            (IngestError::Busy.into(), StatusCode::CONFLICT),
            (
                IngestError::Objects(ObjectsError::TooLarge {
                    size: 9 << 20,
                    max: 2 << 20,
                })
                .into(),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                IngestError::Image(ImageError::NotAnImage).into(),
                StatusCode::BAD_REQUEST,
            ),
            (IngestError::Unknown.into(), StatusCode::BAD_REQUEST),
            (TableError::Changed.into(), StatusCode::CONFLICT),
            (TableError::TooManyWords.into(), StatusCode::BAD_REQUEST),
            (
                TableError::Aws {
                    action: "Query",
                    table: "t".to_owned(),
                    detail: "secret detail".to_owned(),
                }
                .into(),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err}");
            assert!(!err.public_message().contains("secret detail"));
        }
    }
}
