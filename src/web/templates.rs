//! Pages from the templates (`crate::templates`), and the `ctx!` macro that
//! builds their context.

use axum::response::Html;
use serde::Serialize;

use crate::Result;
pub use crate::templates::render_string;

/// Builds a template context from `name` and `name => value` pairs, each
/// serialised with serde (`ctx! { page, posts => list }`).
#[macro_export]
macro_rules! ctx {
    ($($key:ident $(=> $value:expr)?),* $(,)?) => {{
        let mut map = serde_json::Map::new();
        $(
            map.insert(
                stringify!($key).to_string(),
                serde_json::to_value($crate::ctx!(@value $key $(, $value)?)).expect("template values serialise"),
            );
        )*
        serde_json::Value::Object(map)
    }};
    (@value $key:ident) => { &$key };
    (@value $key:ident, $value:expr) => { &$value };
}

/// Renders an HTML page.
pub fn render(name: &str, ctx: impl Serialize) -> Result<Html<String>> {
    render_string(name, ctx).map(Html)
}
