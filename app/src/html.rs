//! Pages: Handlebars templates from `templates/`, compiled into the binary
//! (Lambda ships only `bootstrap`), strict and HTML-escaping everything.

use handlebars::Handlebars;
use serde::Serialize;

use crate::error::AppError;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("../../templates/layout.hbs")),
    ("error", include_str!("../../templates/error.hbs")),
    ("signin", include_str!("../../templates/signin.hbs")),
    ("signup", include_str!("../../templates/signup.hbs")),
    ("confirm", include_str!("../../templates/confirm.hbs")),
    ("forgot", include_str!("../../templates/forgot.hbs")),
    ("reset", include_str!("../../templates/reset.hbs")),
    ("profile", include_str!("../../templates/profile.hbs")),
    ("album", include_str!("../../templates/album.hbs")),
    ("photo", include_str!("../../templates/photo.hbs")),
    ("upload", include_str!("../../templates/upload.hbs")),
    ("edit", include_str!("../../templates/edit.hbs")),
    ("delete", include_str!("../../templates/delete.hbs")),
    ("map", include_str!("../../templates/map.hbs")),
];

#[derive(Debug, thiserror::Error)]
#[error("template `{name}` does not compile: {message}")]
pub struct TemplateError {
    name: &'static str,
    message: String,
}

/// Builds the registry once at start-up.
pub fn templates() -> Result<Handlebars<'static>, TemplateError> {
    let mut hb = Handlebars::new();
    // Optional values (`error`, `notice`) are simply absent on many pages.
    hb.set_strict_mode(false);
    for (name, text) in TEMPLATES {
        hb.register_template_string(name, *text)
            .map_err(|e| TemplateError {
                name,
                message: e.to_string(),
            })?;
    }
    hb.register_helper("eq", Box::new(eq));
    Ok(hb)
}

handlebars::handlebars_helper!(eq: |a: Json, b: Json| a == b);

/// Renders `name` with `data`.
pub fn render<T: Serialize>(hb: &Handlebars<'_>, name: &str, data: &T) -> Result<String, AppError> {
    hb.render(name, data)
        .map_err(|e| AppError::Internal(format!("rendering `{name}`: {e}")))
}

/// Percent-encodes a query value.
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            use std::fmt::Write as _;
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        templates().unwrap();
    }

    #[test]
    fn values_are_escaped() {
        let hb = templates().unwrap();
        let out = render(
            &hb,
            "error",
            &serde_json::json!({
                "page": {"title": "t", "base": "", "static_url": "/static/", "csrf": "x", "user": null},
                "status": 400,
                "message": "<script>alert(1)</script>"
            }),
        )
        .unwrap();
        assert!(!out.contains("<script>alert(1)</script>"));
        assert!(out.contains("&lt;script&gt;"));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(url_encode("/photos/a b?c"), "/photos/a%20b%3Fc");
    }
}
