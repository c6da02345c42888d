//! Pages: Handlebars templates from `templates/`, compiled into the binary
//! (Lambda ships only `bootstrap`; the crate `cloudalbum-pages` holds them),
//! strict and HTML-escaping everything.
//! Pages link to static assets with `{{asset "css/site.css"}}`, which names
//! the versioned file the deployer uploaded (`contract::assets`).

use contract::assets::Manifest;
use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use serde::Serialize;

use crate::error::AppError;

/// The page templates, `(name, Handlebars source)`: the crate
/// `cloudalbum-pages` holds them (`cloudalbum_pages::ALL`), and the binaries
/// pass them in, so that a change to a page does not recompile the app.
pub type Sources = &'static [(&'static str, &'static str)];

#[derive(Debug, thiserror::Error)]
#[error("template `{name}` does not compile: {message}")]
pub struct TemplateError {
    name: &'static str,
    message: String,
}

/// Builds the registry once at start-up; assets are linked under
/// `static_url` (ending in `/`) by the names `assets` gives.
pub fn templates(
    sources: Sources,
    static_url: &str,
    assets: &Manifest,
) -> Result<Handlebars<'static>, TemplateError> {
    let mut hb = Handlebars::new();
    // Optional values (`error`, `notice`) are simply absent on many pages.
    hb.set_strict_mode(false);
    for (name, text) in sources {
        hb.register_template_string(name, *text)
            .map_err(|e| TemplateError {
                name,
                message: e.to_string(),
            })?;
    }
    hb.register_helper("eq", Box::new(eq));
    hb.register_helper(
        "asset",
        Box::new(AssetUrl {
            static_url: static_url.to_owned(),
            assets: assets.clone(),
        }),
    );
    Ok(hb)
}

/// `{{asset "js/app.js"}}`: the URL of a file under `static/`, versioned when
/// the manifest names it (a deployed stage), as it is otherwise (a local run).
struct AssetUrl {
    static_url: String,
    assets: Manifest,
}

impl AssetUrl {
    fn url(&self, path: &str) -> String {
        let published = self
            .assets
            .url_path(path)
            .unwrap_or_else(|| path.to_owned());
        format!("{}{published}", self.static_url)
    }
}

impl HelperDef for AssetUrl {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let path = h.param(0).and_then(|p| p.value().as_str()).ok_or_else(|| {
            RenderErrorReason::ParamTypeMismatchForName(
                "asset",
                "0".to_owned(),
                "a path under static/".to_owned(),
            )
        })?;
        Ok(ScopedJson::Derived(serde_json::Value::String(
            self.url(path),
        )))
    }
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
        templates(cloudalbum_pages::ALL, "/static/", &Manifest::default()).unwrap();
    }

    #[test]
    fn assets_are_linked_by_their_versioned_names() {
        let assets = Manifest::parse("css/site.css=1a2b3c4d,vendor/leaflet=5e6f7a8b").unwrap();
        let hb = templates(cloudalbum_pages::ALL, "https://b.example/static/", &assets).unwrap();
        let page = |template: &str| {
            render(
                &hb,
                template,
                &serde_json::json!({
                    "page": {"title": "t", "base": "", "csrf": "x", "user": null},
                    "map": true,
                    "status": 404,
                    "message": "m"
                }),
            )
            .unwrap()
        };
        let error = page("error");
        assert!(
            error.contains("href=\"https://b.example/static/css/site.1a2b3c4d.css\""),
            "{error}"
        );
        assert!(
            error.contains("https://b.example/static/vendor/leaflet.5e6f7a8b/leaflet.css"),
            "{error}"
        );
        // Not in the manifest (a local run): the file's own name.
        assert!(
            error.contains("src=\"https://b.example/static/js/app.js\""),
            "{error}"
        );
    }

    #[test]
    fn values_are_escaped() {
        let hb = templates(cloudalbum_pages::ALL, "/static/", &Manifest::default()).unwrap();
        let out = render(
            &hb,
            "error",
            &serde_json::json!({
                "page": {"title": "t", "base": "", "csrf": "x", "user": null},
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
