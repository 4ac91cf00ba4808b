//! The routes `src/web/router.rs` serves, read from its source at test time
//! (and from any router it nests or merges), so that a route or method added
//! without a row in the role × route matrix (`route_matrix.rs`), or without a
//! rule, fails here; and the reader itself, proved on a made-up router.

use crate::route_matrix::{TWO_PERMISSIONS, route_matrix};

/// A route's rule as `src/web/router.rs` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRule {
    Public,
    SignedIn,
    Staff,
    Perm(String),
    StaffPerm(String),
    StaffPerms(String, String),
    /// The API's two-permission rule: both, no staff needed.
    Perms(String, String),
    /// Added with axum's own `.route`, without a rule.
    Unguarded,
}

impl SourceRule {
    fn parse(text: &str) -> SourceRule {
        let text = text.trim().trim_start_matches("Rule::");
        let quoted: Vec<String> = text
            .split('"')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        match (
            text.split('(').next().unwrap_or("").trim(),
            quoted.as_slice(),
        ) {
            ("Public", []) => SourceRule::Public,
            ("SignedIn", []) => SourceRule::SignedIn,
            ("Staff", []) => SourceRule::Staff,
            ("Perm", [p]) => SourceRule::Perm(p.clone()),
            ("StaffPerm", [p]) => SourceRule::StaffPerm(p.clone()),
            ("StaffPerms", [a, b]) => SourceRule::StaffPerms(a.clone(), b.clone()),
            ("Perms", [a, b]) => SourceRule::Perms(a.clone(), b.clone()),
            _ => panic!("the matrix test cannot read the rule {text:?}; teach SourceRule::parse"),
        }
    }

    pub fn needs_staff(&self) -> bool {
        matches!(
            self,
            SourceRule::Staff | SourceRule::StaffPerm(_) | SourceRule::StaffPerms(..)
        )
    }

    pub fn perms(&self) -> Vec<&'static str> {
        let leak = |p: &String| -> &'static str { Box::leak(p.clone().into_boxed_str()) };
        match self {
            SourceRule::Perm(p) | SourceRule::StaffPerm(p) => vec![leak(p)],
            SourceRule::StaffPerms(a, b) | SourceRule::Perms(a, b) => vec![leak(a), leak(b)],
            _ => vec![],
        }
    }
}

/// One method of one route, as the router serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRoute {
    method: &'static str,
    path: String,
    rule: SourceRule,
}

const ALL_METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT",
];

/// What `any(…)` or a method router's `.fallback(…)` is checked for: the
/// methods a form or an API client sends. (HEAD, OPTIONS, TRACE and CONNECT
/// are read when named, not for a catch-all.)
const CATCH_ALL: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// The routes `src/web/router.rs` serves, read from its source: `routes()`,
/// and any router it nests or merges (`.nest("/x", module::f())`,
/// `.merge(module::f())`, read from that module's file).
pub fn served_routes() -> Vec<ServedRoute> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    read_router(
        &|module: &str| {
            let base = format!("{root}/{}", module.replace("::", "/"));
            std::fs::read_to_string(format!("{base}.rs"))
                .or_else(|_| std::fs::read_to_string(format!("{base}/mod.rs")))
                .ok()
        },
        "web::router",
        "routes",
        "",
    )
}

/// Reads `function` in `module` (a path under `src/`, `::`-separated) and
/// every router it nests or merges. Anything it cannot read fails loudly,
/// so a new way of adding routes cannot slip past the matrix.
fn read_router(
    source: &dyn Fn(&str) -> Option<String>,
    module: &str,
    function: &str,
    prefix: &str,
) -> Vec<ServedRoute> {
    let text = source(module).unwrap_or_else(|| panic!("cannot read the module {module}"));
    let text = without_comments(&text);
    let body =
        function_body(&text, function).unwrap_or_else(|| panic!("no fn {function} in {module}"));
    read_routes(source, module, &body, prefix)
}

fn read_routes(
    source: &dyn Fn(&str) -> Option<String>,
    module: &str,
    body: &str,
    prefix: &str,
) -> Vec<ServedRoute> {
    let mut served = Vec::new();
    // Calls inside a router read as a whole (nested in place) are not read again.
    let mut read_up_to = 0;
    for (name, at) in calls(body) {
        if at < read_up_to {
            continue;
        }
        let (args, length) = arguments(&body[at..]);
        let method_call = body[..at - 1 - name.len()].trim_end().ends_with('.');
        match name {
            "route" if !method_call && args.len() == 4 => {
                let path = format!("{prefix}{}", literal(&args[1]));
                for method in methods(&args[3]) {
                    served.push(ServedRoute {
                        method,
                        path: path.clone(),
                        rule: SourceRule::parse(&args[2]),
                    });
                }
            }
            "route" if !method_call && args.len() != 4 => {
                panic!("the matrix test cannot read route({args:?}) in {module}")
            }
            "route" if method_call && args.len() == 2 => {
                let path = format!("{prefix}{}", literal(&args[0]));
                for method in methods(&args[1]) {
                    served.push(ServedRoute {
                        method,
                        path: path.clone(),
                        rule: SourceRule::Unguarded,
                    });
                }
            }
            // The JSON API's table (src/api): its routes and rules are read
            // from the OpenAPI document it makes (`x-ladder-rule` per operation).
            "merge" if method_call && args[0].trim() == "api" => {
                served.extend(api_routes());
                read_up_to = at + length;
            }
            // The API docs page and the document: public, GET only.
            "merge" if method_call && args[0].contains("SwaggerUi::new") => {
                let docs = literal(args[0].split("SwaggerUi::new(").nth(1).unwrap_or(""));
                let document = literal(args[0].split(".url(").nth(1).unwrap_or(""));
                for path in [
                    docs.clone(),
                    format!("{docs}/"),
                    format!("{docs}/{{*rest}}"),
                    document,
                ] {
                    served.push(ServedRoute {
                        method: "GET",
                        path,
                        rule: SourceRule::Public,
                    });
                }
                read_up_to = at + length;
            }
            "nest" | "merge" if method_call => {
                let (inner_prefix, router) = if name == "nest" {
                    (format!("{prefix}{}", literal(&args[0])), args[1].as_str())
                } else {
                    (prefix.to_string(), args[0].as_str())
                };
                served.extend(read_nested(source, module, router, &inner_prefix));
                read_up_to = at + length;
            }
            "route_service" | "nest_service" | "route_layer_service" => {
                panic!("the matrix test cannot read .{name}(…) in {module}; teach read_routes")
            }
            _ => {}
        }
    }
    served
}

/// The API's routes, read from the OpenAPI document `ladder::api` makes
/// from its rule table: every operation must carry its rule.
fn api_routes() -> Vec<ServedRoute> {
    let document = serde_json::to_value(ladder::api::document()).expect("the document serializes");
    let mut served = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let Some(method) = ALL_METHODS.iter().find(|m| m.eq_ignore_ascii_case(method)) else {
                continue;
            };
            let rule = operation["x-ladder-rule"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no x-ladder-rule"));
            served.push(ServedRoute {
                method,
                path: path.clone(),
                rule: SourceRule::parse(rule),
            });
        }
    }
    served
}

/// A nested or merged router: a call such as `admin::router()` or
/// `router(state)`, read from its module, or a router built in place.
fn read_nested(
    source: &dyn Fn(&str) -> Option<String>,
    module: &str,
    router: &str,
    prefix: &str,
) -> Vec<ServedRoute> {
    let router = router.trim();
    if router.contains("route(") {
        return read_routes(source, module, router, prefix);
    }
    let callee = router
        .split('(')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("crate::");
    let (target_module, function) = match callee.rsplit_once("::") {
        Some((path, function)) => {
            let path = match path.strip_prefix("super") {
                Some(rest) => {
                    let parent = module.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
                    format!("{parent}{rest}")
                }
                None => path.to_string(),
            };
            (path, function)
        }
        None => (module.to_string(), callee),
    };
    if source(&target_module).is_none() {
        panic!("the matrix test cannot find {router} (module {target_module}) from {module}");
    }
    read_router(source, &target_module, function, prefix)
}

/// `text` without `//` comments (outside string literals), whose commas
/// and parentheses would otherwise read as code.
fn without_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_string = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for (i, c) in line.char_indices() {
            match c {
                '"' if i == 0 || bytes[i - 1] != b'\\' => in_string = !in_string,
                '/' if !in_string && bytes.get(i + 1) == Some(&b'/') => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

/// The text of `fn name`'s body, braces balanced.
fn function_body(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("fn {name}("))?;
    let open = start + text[start..].find('{')?;
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(text[open + 1..open + i].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Each call `name(` in `text` (not a path's last segment such as
/// `handlers::delete(`), with the offset just past its opening parenthesis.
fn calls(text: &str) -> Vec<(&str, usize)> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices('(') {
        let start = text[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        if start == at || (start >= 1 && bytes[start - 1] == b':') {
            continue;
        }
        found.push((&text[start..at], at + 1));
    }
    found
}

/// The top-level, comma-separated arguments of a call whose text starts just
/// past its opening parenthesis, and the length of that text.
fn arguments(text: &str) -> (Vec<String>, usize) {
    let (mut args, mut current, mut depth, mut in_string) = (vec![], String::new(), 0, false);
    let mut length = text.len();
    for (i, c) in text.char_indices() {
        if in_string {
            in_string = c != '"';
            current.push(c);
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => {
                length = i;
                break;
            }
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                args.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        args.push(current);
    }
    let args = args.into_iter().map(|a| a.trim().to_string()).collect();
    (args, length)
}

fn literal(arg: &str) -> String {
    arg.split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("expected a string literal, found {arg:?}"))
        .to_string()
}

/// The methods a method router serves: `get(…)`, `.post(…)`, `put`,
/// `delete`, `patch`, `head`, `options`, `trace`, `connect`, and for `any`
/// or `.fallback(…)`, every method in `CATCH_ALL`.
fn methods(handler: &str) -> Vec<&'static str> {
    let mut served = Vec::new();
    for (name, _) in calls(handler) {
        let name = name.trim_end_matches("_service");
        if name == "any" || name == "fallback" {
            for method in CATCH_ALL {
                if !served.contains(&method) {
                    served.push(method);
                }
            }
            continue;
        }
        if name == "on" {
            panic!(
                "the matrix test cannot read on(MethodFilter, …) in {handler:?}; teach methods()"
            );
        }
        if let Some(method) = ALL_METHODS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(name))
            .filter(|m| !served.contains(*m))
        {
            served.push(*method);
        }
    }
    assert!(!served.is_empty(), "no method found in {handler:?}");
    served
}

/// The rule the router gives the route a matrix row is an instance of.
pub fn rule_of(served: &[ServedRoute], method: &str, row: &str) -> SourceRule {
    served
        .iter()
        .filter(|s| s.method == method && same_route(&s.path, row))
        // The most specific: no catch-all, then the fewest parameters.
        .min_by_key(|s| (s.path.contains("{*"), s.path.matches('{').count()))
        .map(|s| s.rule.clone())
        .unwrap_or_else(|| panic!("no route in router.rs serves {method} {row}"))
}

/// The router's own table, read from its source, so that a route added
/// without a row in the matrix fails here.
#[test]
fn the_matrix_has_a_row_for_every_route_and_method_the_router_serves() {
    let served = served_routes();
    assert!(
        served.len() >= 30,
        "read only {} routes from router.rs",
        served.len()
    );
    let rows: Vec<(&str, &str)> = route_matrix()
        .into_iter()
        .map(|(req, _)| req.method_and_path())
        .collect();
    let missing: Vec<String> = served
        .iter()
        .filter(|s| {
            !rows
                .iter()
                .any(|(m, row)| *m == s.method && same_route(&s.path, row))
        })
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from the matrix: {missing:?}"
    );
    let unguarded: Vec<String> = served
        .iter()
        .filter(|s| s.rule == SourceRule::Unguarded)
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(unguarded.is_empty(), "routes without a rule: {unguarded:?}");
    // The routes that need two permissions are the ones this test checks for each.
    let mut two: Vec<(String, String, String)> = served
        .iter()
        .filter_map(|s| match &s.rule {
            SourceRule::StaffPerms(a, b) | SourceRule::Perms(a, b) => {
                Some((s.path.clone(), a.clone(), b.clone()))
            }
            _ => None,
        })
        .collect();
    two.dedup();
    let expected: Vec<(String, String, String)> = TWO_PERMISSIONS
        .iter()
        .map(|(p, a, b)| (p.to_string(), a.to_string(), b.to_string()))
        .collect();
    assert_eq!(two, expected, "routes whose rule needs two permissions");
}

/// The reader sees every routing method and nested and merged routers, not
/// only the `get`/`post` calls `router.rs` happens to use today.
#[test]
fn the_route_reader_reads_every_method_and_nested_and_merged_routers() {
    let main = r#"
        pub fn routes() -> Router<AppState> {
            let r = route(Router::new(), "/a", Public, get(a).put(b).delete(c));
            let r = route(r, "/b/{id}", Perm("x.y"), patch(h::delete).options(o));
            let r = route(r, "/c", Staff, any(everything));
            let r = route(
                r,
                "/d",
                Public,
                // Every method: a comment, with commas, (and parentheses).
                get(d).fallback(not_found),
            );
            let r = route(r, "/e", Perms("t.u", "v.w"), put(e));
            let r = r.nest("/inner", inner::router());
            let r = r.nest("/here", Router::new().route("/x", delete(x)));
            r.merge(router_here()).route("/bare", post(bare))
        }
        fn router_here() -> Router<AppState> {
            route(Router::new(), "/merged", StaffPerms("p.q", "r.s"), head(x).trace(y))
        }
    "#;
    let inner = r#"
        pub fn router() -> Router<AppState> {
            route(Router::new(), "/deep", SignedIn, post(handlers::get))
        }
    "#;
    let source = |module: &str| match module {
        "web::router" => Some(main.to_string()),
        "inner" => Some(inner.to_string()),
        _ => None,
    };
    let read: Vec<(&str, String, SourceRule)> = read_router(&source, "web::router", "routes", "")
        .into_iter()
        .map(|s| (s.method, s.path, s.rule))
        .collect();
    let want = |m: &'static str, p: &str, r: SourceRule| (m, p.to_string(), r);
    let mut expected = vec![
        want("GET", "/a", SourceRule::Public),
        want("PUT", "/a", SourceRule::Public),
        want("DELETE", "/a", SourceRule::Public),
        want("PATCH", "/b/{id}", SourceRule::Perm("x.y".into())),
        want("OPTIONS", "/b/{id}", SourceRule::Perm("x.y".into())),
    ];
    expected.extend(CATCH_ALL.map(|m| want(m, "/c", SourceRule::Staff)));
    expected.push(want("GET", "/d", SourceRule::Public));
    expected.extend(["POST", "PUT", "DELETE", "PATCH"].map(|m| want(m, "/d", SourceRule::Public)));
    expected.push(want(
        "PUT",
        "/e",
        SourceRule::Perms("t.u".into(), "v.w".into()),
    ));
    expected.push(want("POST", "/inner/deep", SourceRule::SignedIn));
    expected.push(want("DELETE", "/here/x", SourceRule::Unguarded));
    let two = SourceRule::StaffPerms("p.q".into(), "r.s".into());
    expected.push(want("HEAD", "/merged", two.clone()));
    expected.push(want("TRACE", "/merged", two));
    expected.push(want("POST", "/bare", SourceRule::Unguarded));
    assert_eq!(read, expected);
}

/// Whether a matrix path is an instance of a router path: `{x}` matches any
/// one segment, a final `{*x}` any rest.
fn same_route(route: &str, row: &str) -> bool {
    let row = row.split('?').next().unwrap_or(row);
    let (route, row): (Vec<&str>, Vec<&str>) =
        (route.split('/').collect(), row.split('/').collect());
    if route.last().is_some_and(|s| s.starts_with("{*")) {
        let fixed = route.len() - 1;
        return row.len() > fixed && same_route(&route[..fixed].join("/"), &row[..fixed].join("/"));
    }
    route.len() == row.len()
        && route
            .iter()
            .zip(&row)
            .all(|(r, p)| r == p || (r.starts_with('{') && !p.is_empty()))
}
