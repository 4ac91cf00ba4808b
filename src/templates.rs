//! Templates, embedded at build time, for pages and emails alike. Every HTML
//! template ends in `.html`, so minijinja escapes every value in it: markup
//! from users never becomes markup.

use std::sync::LazyLock;

use minijinja::Environment;
use serde::Serialize;

use crate::{Result, clock::rfc3339};

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    minijinja_embed::load_templates!(env);
    env.add_filter("datetime", |unix: i64| -> String {
        rfc3339(unix).replace('T', " ").replace('Z', " UTC")
    });
    env.add_filter("date", |unix: i64| -> String {
        rfc3339(unix)
            .split('T')
            .next()
            .unwrap_or_default()
            .to_string()
    });
    env.add_filter("truncate", |text: String, chars: usize| -> String {
        if text.chars().count() <= chars {
            text
        } else {
            let cut: String = text.chars().take(chars.saturating_sub(1)).collect();
            format!("{cut}…")
        }
    });
    env
});

/// Renders a template to a string.
pub fn render_string(name: &str, ctx: impl Serialize) -> Result<String> {
    let template = ENV
        .get_template(name)
        .map_err(|e| anyhow::anyhow!("template {name}: {e}"))?;
    template
        .render(minijinja::value::Serde(ctx))
        .map_err(|e| anyhow::anyhow!("rendering {name}: {e:#}").into())
}
