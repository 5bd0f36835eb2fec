//! The browser pages (SPEC §7), rendered with minijinja: every value is
//! HTML-escaped unless a template says otherwise, so a `state`, a client name
//! or a username can never become markup.
//!
//! The built-in templates are compiled in. `--template-dir DIR` replaces them
//! file by file: a file of the same name in DIR wins, the others stay built
//! in. Templates are read and compiled once, at start, so a broken one stops
//! the server with its name and line rather than failing a user later.

use std::path::Path;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

/// The templates, by name, with their built-in source.
const BUILT_IN: [(&str, &str); 6] = [
    ("base.html", include_str!("templates/base.html")),
    ("_request.html", include_str!("templates/_request.html")),
    ("login.html", include_str!("templates/login.html")),
    ("consent.html", include_str!("templates/consent.html")),
    ("error.html", include_str!("templates/error.html")),
    ("logout.html", include_str!("templates/logout.html")),
];

/// The stylesheet's name in `--template-dir`, and its built-in text.
const STYLE: (&str, &str) = ("style.css", include_str!("templates/style.css"));

/// The compiled pages and the stylesheet.
pub(crate) struct Pages {
    env: Environment<'static>,
    style: String,
}

/// One parameter of the authorization request, carried in a hidden field.
#[derive(Serialize)]
pub(crate) struct Carried<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: &'a str,
}

impl Pages {
    /// The built-in pages, each replaced by the file of the same name in
    /// `dir`, if given and present.
    pub(crate) fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let read = |name: &str| -> anyhow::Result<Option<String>> {
            let Some(path) = dir.map(|dir| dir.join(name)) else {
                return Ok(None);
            };
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(anyhow::anyhow!(
                    "reading template {}: {err}",
                    path.display()
                )),
            }
        };
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            anyhow::bail!("--template-dir {} is not a directory", dir.display());
        }
        let mut env = Environment::new();
        for (name, built_in) in BUILT_IN {
            let source = read(name)?.unwrap_or_else(|| built_in.to_owned());
            env.add_template_owned(name, source)
                .map_err(|err| anyhow::anyhow!("template {name}: {err}"))?;
        }
        let style = read(STYLE.0)?.unwrap_or_else(|| STYLE.1.to_owned());
        let pages = Self { env, style };
        // Render each page once with empty values, so that a template that
        // only fails at render time (an unknown filter, a bad include) fails
        // the start, not a user's login.
        for (name, _) in BUILT_IN.iter().filter(|(name, _)| !name.starts_with('_')) {
            pages
                .env
                .get_template(name)
                .and_then(|template| template.render(minijinja::context! {}))
                .map_err(|err| anyhow::anyhow!("template {name}: {err}"))?;
        }
        Ok(pages)
    }

    /// The stylesheet the pages link to.
    pub(crate) fn style(&self) -> &str {
        &self.style
    }

    /// Renders `name` with `context` as an HTML response with `status`. A
    /// template that fails now (it rendered at start) is logged and answered
    /// with a plain 500, never with half a page.
    pub(crate) fn render(
        &self,
        status: StatusCode,
        name: &str,
        context: minijinja::Value,
    ) -> Response {
        match self
            .env
            .get_template(name)
            .and_then(|template| template.render(context))
        {
            Ok(html) => (status, Html(html)).into_response(),
            Err(err) => {
                tracing::error!(template = name, error = %err, "rendering a page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The page could not be shown",
                )
                    .into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn values_are_escaped_and_a_template_dir_replaces_one_file() {
        let pages = Pages::load(None).unwrap();
        let page = pages.env.get_template("error.html").unwrap();
        let html = page
            .render(minijinja::context! { description => "<script>x</script>" })
            .unwrap();
        assert!(
            html.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("error.html"),
            "{% extends \"base.html\" %}{% block content %}Branded: {{ description }}{% endblock %}",
        )
        .unwrap();
        let pages = Pages::load(Some(dir.path())).unwrap();
        let html = pages
            .env
            .get_template("error.html")
            .unwrap()
            .render(minijinja::context! { description => "<b>" })
            .unwrap();
        assert!(html.contains("Branded: &lt;b&gt;"), "{html}");
        // The others stay built in.
        assert!(pages.env.get_template("login.html").is_ok());
        assert!(pages.style().contains("system-ui"));
    }

    #[test]
    fn a_broken_template_stops_the_start_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("login.html"), "{% if %}").unwrap();
        let err = Pages::load(Some(dir.path())).err().unwrap();
        assert!(err.to_string().contains("login.html"), "{err}");
    }
}
