//! Who may reach which route: every route the router serves, by method, is a
//! row of the role × route matrix, and each of seven roles (anonymous, writer,
//! senior writer, editor, staff, superuser, and a user holding exactly what the
//! route's rule in `src/web/router.rs` asks) gets exactly the answer its row
//! says, over a real port, on both backends. That the matrix has a row for
//! every route is checked in `route_reader.rs`.

use ladder::{
    accounts::tokens::CreateToken,
    actor::{Actor, Source},
};
use reqwest::{Response, StatusCode, header};

use crate::{
    helpers::{Client, TestApp, TestLadder, workflow},
    route_reader::{rule_of, served_routes},
    web_helpers::{Cast, flash_of, html_unescape, location, make_staff, post_by, submit},
};

on_both_backends!(every_route_answers_each_role_exactly_as_its_rule_says);

/// The matrix's columns. Each signed-in role is a user of that name, but for
/// "exact": for each row, a user holding exactly what the route's rule in
/// `src/web/router.rs` asks (staff, and each permission), nothing more.
const ROLES: [&str; 7] = [
    "anonymous",
    "writer",
    "senior",
    "editor",
    "staff",
    "admin",
    "exact",
];

/// Routes whose rule needs two permissions, as this test expects them: each
/// alone is refused, naming the other. The router must agree.
pub const TWO_PERMISSIONS: &[(&str, &str, &str)] = &[
    ("/api/v1/users", "auth.add_user", "auth.change_user"),
    ("/api/v1/webhooks", "webhooks.add_webhook", "auth.view_user"),
    ("/admin/users/new", "auth.add_user", "auth.change_user"),
    (
        "/admin/webhooks/new",
        "webhooks.add_webhook",
        "auth.view_user",
    ),
];

/// What one role should get from one request.
#[derive(Clone, Copy, Debug)]
pub enum Want {
    /// Exactly this status.
    Status(u16),
    /// 302 to /login with a `next` that brings the visitor back.
    SignIn,
    /// 403 with a page naming what is missing (a permission, or "staff only").
    Refused(&'static str),
    /// 303 to this target (placeholders filled; `#` is a number), and the page
    /// there, if it is one, flashes no error: the change was made.
    Done(&'static str),
    /// 303 to this target with an error flashed there that contains the text:
    /// the change was refused.
    NotDone(&'static str, &'static str),
}

const OK: Want = Want::Status(200);
const GONE: Want = Want::Status(404);
const LOGIN: Want = Want::SignIn;
const STAFF: Want = Want::Refused("This page is for staff only.");
const API_STAFF: Want = Want::Refused("This endpoint is for staff only.");
const fn no(what: &'static str) -> Want {
    Want::Refused(what)
}
const fn to(target: &'static str) -> Want {
    Want::Done(target)
}
const fn not_done(target: &'static str, why: &'static str) -> Want {
    Want::NotDone(target, why)
}

#[derive(Clone, Copy, Debug)]
pub enum Req {
    Get(&'static str),
    /// A form, posted with the session's CSRF token.
    Post(&'static str, &'static [(&'static str, &'static str)]),
    /// A JSON body, posted to the API (which needs no CSRF token for JSON).
    Json(&'static str, &'static str),
    /// A JSON body sent with another method (PUT, DELETE, PATCH).
    JsonAs(&'static str, &'static str, &'static str),
}
use Req::{Get, Json, JsonAs, Post};

impl Req {
    pub fn method_and_path(self) -> (&'static str, &'static str) {
        match self {
            Get(p) => ("GET", p),
            Post(p, _) | Json(p, _) => ("POST", p),
            JsonAs(m, p, _) => (m, p),
        }
    }
}

/// Every route in `src/web/router.rs`, with each method it serves, and what
/// each role gets. Placeholders are the role's own fresh fixtures (see
/// `Fixtures`), so a state-changing row never changes another role's answer;
/// within a role, rows run in order, so the ones that change state come last.
#[rustfmt::skip]
pub fn route_matrix() -> Vec<(Req, [Want; 7])> {
    let (e401, e409, e422) = (Want::Status(401), Want::Status(409), Want::Status(422));
    let e201 = Want::Status(201);
    let au = "auth.add_user";
    let ag = "auth.add_group";
    let dg = "auth.delete_group";
    let dp = "blog.delete_post";
    let fp = "blog.feature_post";
    let pp = "blog.publish_post";
    let cu = "auth.change_user";
    let cg = "auth.change_group";
    let vu = "auth.view_user";
    let vg = "auth.view_group";
    let approvers = "The review dashboard is for approvers";
    let asker = "Only the person who asked can withdraw a request.";
    let ask = r#"{"track": "senior-writer", "justification": "Ready."}"#;
    let home = to("/");
    let user_page = to("/admin/users/{user}");
    let group_page = to("/admin/groups/{group}");
    let not_retried = not_done("/admin/mail", "not in the failed list");
    let (vw, aw, cw, xw) = ("webhooks.view_webhook", "webhooks.add_webhook", "webhooks.change_webhook", "webhooks.delete_webhook");
    let hook = r#"{"url": "https://93.184.216.34/hook-{role}", "event_types": ["user.created"]}"#;
    let inward = r#"{"url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]}"#;
    let webhook_page = to("/admin/webhooks/{webhook}");
    vec![
        //                                                                        anonymous  writer      senior      editor      staff                 admin        exact
        // Service
        (Get("/healthz"),                                                        [OK,        OK,         OK,         OK,         OK,                   OK,          OK]),
        (Get("/readyz"),                                                         [OK,        OK,         OK,         OK,         OK,                   OK,          OK]),
        (Get("/static/app.css"),                                                 [OK,        OK,         OK,         OK,         OK,                   OK,          OK]),
        // Sign-in (a signed-in visitor is sent on to `next`)
        (Get("/login"),                                                          [OK,        home,       home,       home,       home,                 home,        home]),
        (Post("/login", &[("username", "nobody"), ("password", "not-a-password")]),
                                                                                 [e422; 7]),
        (Get("/account/password"),                                               [LOGIN,     OK,         OK,         OK,         OK,                   OK,          OK]),
        // One's own API tokens: a new one's secret is in the POST's answer (200);
        // {user_token} is someone else's, so it is not found here for anyone
        (Get("/account/tokens"),                                                 [LOGIN,     OK,         OK,         OK,         OK,                   OK,          OK]),
        (Post("/account/tokens", &[("name", "From the matrix"), ("lifetime", "90d")]),
                                                                                 [LOGIN,     OK,         OK,         OK,         OK,                   OK,          OK]),
        (Post("/account/tokens", &[("name", ""), ("lifetime", "90d")]),         [LOGIN,     e422,       e422,       e422,       e422,                 e422,        e422]),
        (Post("/account/tokens/{user_token}/revoke", &[]),                       [LOGIN,     GONE,       GONE,       GONE,       GONE,                 GONE,        GONE]),
        (Post("/account/tokens/999999/revoke", &[]),                             [LOGIN,     GONE,       GONE,       GONE,       GONE,                 GONE,        GONE]),
        // The blog: {draft} is the writer's draft, {published} the writer's published post;
        // a draft one may not see is not found on every route, like a missing post
        (Get("/"),                                                               [to("/posts"); 7]),
        (Get("/posts"),                                                          [OK,        OK,         OK,         OK,         OK,                   OK,          OK]),
        (Get("/posts/mine"),                                                     [LOGIN,     OK,         OK,         OK,         OK,                   OK,          OK]),
        (Get("/posts/new"),                                                      [LOGIN,     OK,         OK,         OK,         no("blog.add_post"),  OK,          OK]),
        (Post("/posts/new", &[("title", "From the matrix"), ("body", "Hello.")]),
                                                                                 [LOGIN,     to("/posts/#"), to("/posts/#"), to("/posts/#"), no("blog.add_post"), to("/posts/#"), to("/posts/#")]),
        (Get("/posts/{published}"),                                              [OK,        OK,         OK,         OK,         OK,                   OK,          OK]),
        (Get("/posts/{draft}"),                                                  [GONE,      OK,         GONE,       OK,         GONE,                 OK,          GONE]),
        (Get("/posts/999999"),                                                   [GONE,      GONE,       GONE,       GONE,       GONE,                 GONE,        GONE]),
        (Get("/posts/{draft}/edit"),                                             [LOGIN,     OK,         GONE,       OK,         no("blog.change_post"), OK,        GONE]),
        (Post("/posts/{draft}/edit", &[("title", "The draft"), ("body", "Edited.")]),
                                                                                 [LOGIN,     to("/posts/{draft}"), GONE, to("/posts/{draft}"), no("blog.change_post"), to("/posts/{draft}"), GONE]),
        (Get("/posts/999999/edit"),                                              [LOGIN,     GONE,       GONE,       GONE,       no("blog.change_post"), GONE,      GONE]),
        (Post("/posts/{draft}/feature", &[("featured", "true")]),                [LOGIN,     no(fp),     no(fp),     e409,       no(fp),               e409,        e409]),
        (Post("/posts/{published}/feature", &[("featured", "true")]),            [LOGIN,     no(fp),     no(fp),     to("/posts/{published}"), no(fp), to("/posts/{published}"), to("/posts/{published}")]),
        (Post("/posts/999999/publish", &[]),                                     [LOGIN,     no(pp),     GONE,       GONE,       no(pp),               GONE,        GONE]),
        (Post("/posts/{draft}/publish", &[]),                                    [LOGIN,     no(pp),     GONE,       to("/posts/{draft}"), no(pp),     to("/posts/{draft}"), GONE]),
        (Get("/posts/{draft}/delete"),                                           [LOGIN,     no(dp),     no(dp),     OK,         no(dp),               OK,          GONE]),
        (Post("/posts/{draft}/delete", &[]),                                     [LOGIN,     no(dp),     no(dp),     to("/posts/mine"), no(dp),        to("/posts/mine"), GONE]),
        // Promotions (the "senior-writer" track: Writers ask, Editors decide). Each
        // {…request} is a fresh Writer's request, pending unless it says "approved".
        (Get("/promotions/new"),                                                 [LOGIN,     OK,         OK,         OK,         OK,                   OK,          OK]),
        (Post("/promotions/new", &[("track", "senior-writer"), ("justification", "Ready.")]),
                                                                                 [LOGIN,     to("/promotions/mine"), e422, e422,  e422,                 e422,        e422]),
        (Get("/promotions/mine"),                                                [LOGIN,     OK,         OK,         OK,         OK,                   OK,          OK]),
        (Get("/promotions/review"),                                              [LOGIN,     no(approvers), no(approvers), OK,   no(approvers),        OK,          no(approvers)]),
        (Get("/promotions/{request}"),                                           [LOGIN,     GONE,       GONE,       OK,         GONE,                 OK,          GONE]),
        (Get("/promotions/999999"),                                              [LOGIN,     GONE,       GONE,       GONE,       GONE,                 GONE,        GONE]),
        (Get("/promotions/{request}/withdraw"),                                  [LOGIN,     GONE,       GONE,       no(asker),  GONE,                 no(asker),   GONE]),
        (Post("/promotions/{request}/withdraw", &[]),                            [LOGIN,     GONE,       GONE,       no(asker),  GONE,                 no(asker),   GONE]),
        (Post("/promotions/999999/approve", &[]),                                [LOGIN,     GONE,       GONE,       GONE,       GONE,                 GONE,        GONE]),
        (Post("/promotions/{request}/approve", &[("comment", "Welcome.")]),      [LOGIN,     GONE,       GONE,       to("/promotions/{request}"), GONE, to("/promotions/{request}"), GONE]),
        (Post("/promotions/{other_request}/reject", &[("reason", "Not yet.")]),  [LOGIN,     GONE,       GONE,       to("/promotions/{other_request}"), GONE, to("/promotions/{other_request}"), GONE]),
        (Post("/promotions/{approved_request}/end", &[]),                        [LOGIN,     GONE,       GONE,       to("/promotions/{approved_request}"), GONE, to("/promotions/{approved_request}"), GONE]),
        // The JSON API: 401 rather than a redirect; others' requests do not exist
        (Get("/api/v1/promotions"),                                              [e401,      OK,         OK,         OK,         OK,                   OK,          OK]),
        (Json("/api/v1/promotions", ask),                                        [e401,      e409,       e409,       e409,       e409,                 e409,        e409]),
        (Get("/api/v1/promotions/{api_request}"),                                [e401,      GONE,       GONE,       OK,         GONE,                 OK,          GONE]),
        (Get("/api/v1/promotions/999999"),                                       [e401,      GONE,       GONE,       GONE,       GONE,                 GONE,        GONE]),
        (Json("/api/v1/promotions/{other_api_request}/withdraw", ""),            [e401,      GONE,       GONE,       no(asker),  GONE,                 no(asker),   GONE]),
        (Json("/api/v1/promotions/{api_request}/approve", "{}"),                 [e401,      GONE,       GONE,       OK,         GONE,                 OK,          GONE]),
        (Json("/api/v1/promotions/{other_api_request}/reject", r#"{"reason": "Not yet."}"#),
                                                                                 [e401,      GONE,       GONE,       OK,         GONE,                 OK,          GONE]),
        // Checks: anyone about themselves, about others only with auth.view_user
        (Get("/api/v1/check?user={user}&perm=blog.add_post"),                   [e401,      no(vu),     no(vu),     OK,         no(vu),               OK,          no(vu)]),
        (Json("/api/v1/check", r#"{"checks": [{"user": "admin", "perm": "blog.add_post"}]}"#),
                                                                                 [e401,      OK,         OK,         OK,         OK,                   OK,          OK]),
        // Users and groups: the console's rules without its staff requirement.
        // {api_group} is a group of the role's own, deleted last
        (Get("/api/v1/users"),                                                   [e401,      no(vu),     no(vu),     OK,         no(vu),               OK,          OK]),
        (Get("/api/v1/users?q=target-of&active=true&limit=1"),                   [e401,      no(vu),     no(vu),     OK,         no(vu),               OK,          OK]),
        (Get("/api/v1/users/{user}"),                                            [e401,      no(vu),     no(vu),     OK,         no(vu),               OK,          OK]),
        (Get("/api/v1/users/nobody-here"),                                       [e401,      no(vu),     no(vu),     GONE,       no(vu),               GONE,        GONE]),
        (Get("/api/v1/users/{user}/permissions"),                                [e401,      no(vu),     no(vu),     OK,         no(vu),               OK,          OK]),
        (Json("/api/v1/users", r#"{"username": "api-newcomer-{role}", "email": "api-newcomer-{role}@example.com"}"#),
                                                                                 [e401,      no(au),     no(au),     no(au),     no(au),               e201,        e201]),
        (JsonAs("PATCH", "/api/v1/users/{user}", r#"{"display_name": "Patched by {role}"}"#),
                                                                                 [e401,      no(cu),     no(cu),     no(cu),     no(cu),               OK,          OK]),
        (JsonAs("PUT", "/api/v1/users/{user}/password", r#"{"password": "an-api-passphrase"}"#),
                                                                                 [e401,      no(cu),     no(cu),     no(cu),     no(cu),               OK,          OK]),
        (JsonAs("PUT", "/api/v1/users/{user}/groups/{api_group}", ""),          [e401,      no(cu),     no(cu),     no(cu),     no(cu),               OK,          OK]),
        (JsonAs("DELETE", "/api/v1/users/{user}/groups/{api_group}", ""),       [e401,      no(cu),     no(cu),     no(cu),     no(cu),               OK,          OK]),
        // "exact" holds auth.change_user only: it may not grant what it does not hold.
        (JsonAs("PUT", "/api/v1/users/{user}/permissions/blog.view_post", ""),  [e401,      no(cu),     no(cu),     no(cu),     no(cu),               OK,          no("blog.view_post")]),
        (JsonAs("DELETE", "/api/v1/users/{user}/permissions/blog.view_post", ""),
                                                                                 [e401,      no(cu),     no(cu),     no(cu),     no(cu),               OK,          no("blog.view_post")]),
        (Get("/api/v1/groups"),                                                  [e401,      no(vg),     no(vg),     no(vg),     no(vg),               OK,          OK]),
        (Get("/api/v1/groups/{api_group}"),                                      [e401,      no(vg),     no(vg),     no(vg),     no(vg),               OK,          OK]),
        (Get("/api/v1/groups/999999"),                                           [e401,      no(vg),     no(vg),     no(vg),     no(vg),               GONE,        GONE]),
        (Get("/api/v1/groups/{api_group}/members"),                              [e401,      no(vg),     no(vg),     no(vg),     no(vg),               OK,          OK]),
        (Json("/api/v1/groups", r#"{"name": "API group by {role}"}"#),          [e401,      no(ag),     no(ag),     no(ag),     no(ag),               e201,        e201]),
        (JsonAs("PATCH", "/api/v1/groups/{api_group}", r#"{"name": "API renamed by {role}"}"#),
                                                                                 [e401,      no(cg),     no(cg),     no(cg),     no(cg),               OK,          OK]),
        // "exact" holds auth.change_group only, not blog.add_post.
        (JsonAs("PUT", "/api/v1/groups/{api_group}/permissions", r#"{"permissions": ["blog.add_post"]}"#),
                                                                                 [e401,      no(cg),     no(cg),     no(cg),     no(cg),               OK,          no("blog.add_post")]),
        (JsonAs("PUT", "/api/v1/groups/{api_group}/permissions/blog.add_post", ""),
                                                                                 [e401,      no(cg),     no(cg),     no(cg),     no(cg),               OK,          no("blog.add_post")]),
        (JsonAs("DELETE", "/api/v1/groups/{api_group}/permissions/blog.add_post", ""),
                                                                                 [e401,      no(cg),     no(cg),     no(cg),     no(cg),               OK,          no("blog.add_post")]),
        (JsonAs("DELETE", "/api/v1/groups/{api_group}", ""),                    [e401,      no(dg),     no(dg),     no(dg),     no(dg),               OK,          OK]),
        // The tracks and the permission catalog: anyone signed in; who holds a
        // permission: auth.view_user; the audit log: as the console's page
        (Get("/api/v1/tracks"),                                                  [e401,      OK,         OK,         OK,         OK,                   OK,          OK]),
        (Get("/api/v1/permissions?app=blog"),                                    [e401,      OK,         OK,         OK,         OK,                   OK,          OK]),
        (Get("/api/v1/permissions/blog.add_post/holders"),                       [e401,      no(vu),     no(vu),     OK,         no(vu),               OK,          OK]),
        (Get("/api/v1/permissions/blog.nothing/holders"),                        [e401,      no(vu),     no(vu),     GONE,       no(vu),               GONE,        GONE]),
        (Get("/api/v1/audit"),                                                   [e401,      API_STAFF,  API_STAFF,  API_STAFF,      no("admin.view_logentry"), OK,     OK]),
        // Webhooks: {api_webhook} is an endpoint of the role's own with a failed
        // delivery {api_webhook_delivery}; a private target is refused (422)
        (Get("/api/v1/webhooks"),                                                [e401,      no(vw),     no(vw),     no(vw),     no(vw),               OK,          OK]),
        (Json("/api/v1/webhooks", hook),                                         [e401,      no(aw),     no(aw),     no(aw),     no(aw),               e201,        e201]),
        (Json("/api/v1/webhooks", inward),                                       [e401,      no(aw),     no(aw),     no(aw),     no(aw),               e422,        e422]),
        (Get("/api/v1/webhooks/{api_webhook}"),                                  [e401,      no(vw),     no(vw),     no(vw),     no(vw),               OK,          OK]),
        (Get("/api/v1/webhooks/999999"),                                         [e401,      no(vw),     no(vw),     no(vw),     no(vw),               GONE,        GONE]),
        (JsonAs("PATCH", "/api/v1/webhooks/{api_webhook}", r#"{"description": "Patched by {role}"}"#),
                                                                                 [e401,      no(cw),     no(cw),     no(cw),     no(cw),               OK,          OK]),
        (Json("/api/v1/webhooks/{api_webhook}/rotate-secret", ""),              [e401,      no(cw),     no(cw),     no(cw),     no(cw),               OK,          OK]),
        (Get("/api/v1/webhooks/{api_webhook}/deliveries"),                       [e401,      no(vw),     no(vw),     no(vw),     no(vw),               OK,          OK]),
        (Json("/api/v1/webhooks/{api_webhook}/deliveries/{api_webhook_delivery}/retry", ""),
                                                                                 [e401,      no(cw),     no(cw),     no(cw),     no(cw),               OK,          OK]),
        (Json("/api/v1/webhooks/{api_webhook}/deliveries/{api_webhook_delivery}/retry", ""),
                                                                                 [e401,      no(cw),     no(cw),     no(cw),     no(cw),               e409,        e409]),
        (Json("/api/v1/webhooks/{api_webhook}/deliveries/999999/retry", ""),    [e401,      no(cw),     no(cw),     no(cw),     no(cw),               GONE,        GONE]),
        (JsonAs("DELETE", "/api/v1/webhooks/{api_webhook}", ""),                [e401,      no(xw),     no(xw),     no(xw),     no(xw),               OK,          OK]),
        // The API's document and its docs page, served by Ladder itself
        (Get("/api/v1/openapi.json"),                                            [OK; 7]),
        (Get("/api/docs"),                                                       [Want::Status(303); 7]),
        (Get("/api/docs/"),                                                      [OK; 7]),
        (Get("/api/docs/swagger-ui.css"),                                        [OK; 7]),
        (Get("/api/v2/nothing-here"),                                            [GONE; 7]),
        (Json("/api/v2/nothing-here", "{}"),                                     [GONE; 7]),
        (JsonAs("PUT", "/api/v2/nothing-here", "{}"),                            [GONE; 7]),
        (JsonAs("DELETE", "/api/v2/nothing-here", "{}"),                         [GONE; 7]),
        (JsonAs("PATCH", "/api/v2/nothing-here", "{}"),                          [GONE; 7]),
        // The admin console: {user} is a plain user, {group} a group without members
        (Get("/admin"),                                                          [LOGIN,     STAFF,      STAFF,      STAFF,      OK,                   OK,          OK]),
        (Get("/admin/users"),                                                    [LOGIN,     STAFF,      STAFF,      STAFF,      no(vu),               OK,          OK]),
        (Get("/admin/users/{user}"),                                             [LOGIN,     STAFF,      STAFF,      STAFF,      no(vu),               OK,          OK]),
        (Get("/admin/users/nobody-here"),                                        [LOGIN,     STAFF,      STAFF,      STAFF,      no(vu),               GONE,        GONE]),
        (Get("/admin/users/new"),                                                [LOGIN,     STAFF,      STAFF,      STAFF,      no("auth.add_user"),  OK,          OK]),
        (Post("/admin/users/new", &[("username", "newcomer-{role}"), ("email", "newcomer-{role}@example.com"), ("display_name", "Newcomer"), ("password", "")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no("auth.add_user"),  to("/admin/users/newcomer-{role}"), to("/admin/users/newcomer-{role}")]),
        (Post("/admin/users/{user}/groups", &[("group_id", "{group}"), ("action", "add")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               user_page,   user_page]),
        // "exact" holds auth.change_user only: it may not grant what it does not hold.
        (Post("/admin/users/{user}/permissions", &[("permission", "blog.view_post"), ("action", "grant")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               user_page,   not_done("/admin/users/{user}", "blog.view_post")]),
        // Only the superuser sets is_staff.
        (Post("/admin/users/{user}/staff", &[("value", "true")]),                [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               user_page,   not_done("/admin/users/{user}", "Not done")]),
        (Post("/admin/users/{user}/password", &[("password", "a-fresh-passphrase")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               user_page,   user_page]),
        // Revoking a token acts on its owner's account: only the superuser touches the superuser's.
        (Post("/admin/tokens/{user_token}/revoke", &[]),                         [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               user_page,   user_page]),
        (Post("/admin/tokens/{admin_token}/revoke", &[]),                        [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               to("/admin/users/admin"), not_done("/admin/users/admin", "only the superuser")]),
        (Post("/admin/tokens/999999/revoke", &[]),                               [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               GONE,        GONE]),
        (Get("/admin/users/{user}/active"),                                      [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               OK,          OK]),
        (Post("/admin/users/{user}/active", &[("value", "false")]),              [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               user_page,   user_page]),
        (Get("/admin/groups"),                                                   [LOGIN,     STAFF,      STAFF,      STAFF,      no(vg),               OK,          OK]),
        (Post("/admin/groups/new", &[("name", "Made in the matrix by {role}")]), [LOGIN,     STAFF,      STAFF,      STAFF,      no("auth.add_group"), to("/admin/groups/#"), to("/admin/groups/#")]),
        (Get("/admin/groups/{group}"),                                           [LOGIN,     STAFF,      STAFF,      STAFF,      no(vg),               OK,          OK]),
        (Get("/admin/groups/999999"),                                            [LOGIN,     STAFF,      STAFF,      STAFF,      no(vg),               GONE,        GONE]),
        (Post("/admin/groups/{group}/rename", &[("name", "Renamed in the matrix by {role}")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cg),               group_page,  group_page]),
        // "exact" holds auth.change_group only, not blog.add_post.
        (Post("/admin/groups/{group}/permissions", &[("shown", "blog.add_post"), ("perm", "blog.add_post")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cg),               group_page,  not_done("/admin/groups/{group}", "blog.add_post")]),
        (Post("/admin/groups/{group}/members", &[("username", "{user}"), ("action", "remove")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cu),               group_page,  group_page]),
        (Get("/admin/groups/{group}/delete"),                                    [LOGIN,     STAFF,      STAFF,      STAFF,      no("auth.delete_group"), OK,       OK]),
        (Post("/admin/groups/{group}/delete", &[]),                              [LOGIN,     STAFF,      STAFF,      STAFF,      no("auth.delete_group"), to("/admin/groups"), to("/admin/groups")]),
        (Get("/admin/permissions"),                                              [LOGIN,     STAFF,      STAFF,      STAFF,      no("auth.view_permission"), OK,    OK]),
        (Get("/admin/audit"),                                                    [LOGIN,     STAFF,      STAFF,      STAFF,      no("admin.view_logentry"), OK,     OK]),
        (Get("/admin/mail"),                                                     [LOGIN,     STAFF,      STAFF,      STAFF,      no("mail.view_email"), OK,         OK]),
        // There is no email 999999: a 303 back, flashing that nothing was queued.
        (Post("/admin/mail/999999/retry", &[]),                                  [LOGIN,     STAFF,      STAFF,      STAFF,      no("mail.change_email"), not_retried, not_retried]),
        // Webhooks: {webhook} is an endpoint of the role's own with a failed
        // delivery {webhook_delivery}; a private target is a field message (422)
        (Get("/admin/webhooks"),                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(vw),               OK,          OK]),
        (Post("/admin/webhooks/new", &[("url", "https://93.184.216.34/console-{role}"), ("event", "user.created"), ("active", "on")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(aw),               to("/admin/webhooks/#"), to("/admin/webhooks/#")]),
        (Post("/admin/webhooks/new", &[("url", "http://127.0.0.1:9/"), ("event", "user.created")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(aw),               e422,        e422]),
        (Get("/admin/webhooks/{webhook}"),                                       [LOGIN,     STAFF,      STAFF,      STAFF,      no(vw),               OK,          OK]),
        (Get("/admin/webhooks/999999"),                                          [LOGIN,     STAFF,      STAFF,      STAFF,      no(vw),               GONE,        GONE]),
        (Post("/admin/webhooks/{webhook}/edit", &[("url", "https://93.184.216.34/edited-{role}"), ("event", "user.created"), ("event", "user.deactivated")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cw),               webhook_page, webhook_page]),
        (Post("/admin/webhooks/{webhook}/edit", &[("url", "https://93.184.216.34/edited-{role}")]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cw),               e422,        e422]),
        (Post("/admin/webhooks/{webhook}/rotate", &[]),                          [LOGIN,     STAFF,      STAFF,      STAFF,      no(cw),               webhook_page, webhook_page]),
        (Post("/admin/webhooks/{webhook}/deliveries/{webhook_delivery}/retry", &[]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cw),               webhook_page, webhook_page]),
        (Post("/admin/webhooks/{webhook}/deliveries/{webhook_delivery}/retry", &[]),
                                                                                 [LOGIN,     STAFF,      STAFF,      STAFF,      no(cw),               not_done("/admin/webhooks/{webhook}", "not failed"), not_done("/admin/webhooks/{webhook}", "not failed")]),
        (Post("/admin/webhooks/{webhook}/deliveries/999999/retry", &[]),        [LOGIN,     STAFF,      STAFF,      STAFF,      no(cw),               GONE,        GONE]),
        (Post("/admin/webhooks/{webhook}/delete", &[("confirm", "yes")]),       [LOGIN,     STAFF,      STAFF,      STAFF,      no(xw),               to("/admin/webhooks"), to("/admin/webhooks")]),
        // Last: these end or renew the role's session
        (Post("/account/password", &[("current", "{password}"), ("new", "a-brand-new-passphrase"), ("confirm", "a-brand-new-passphrase")]),
                                                                                 [LOGIN,     home,       home,       home,       home,                 home,        home]),
        (Post("/logout", &[]),                                                   [LOGIN,     home,       home,       home,       home,                 home,        home]),
    ]
}

/// Objects for one role's run of the matrix, made fresh so that what one
/// role changes (publishing, deleting, deactivating) cannot touch another's.
struct Fixtures {
    role: String,
    draft: i64,
    published: i64,
    user: String,
    /// A live API token of `user`, and one of the superuser.
    user_token: i64,
    admin_token: i64,
    group: i64,
    /// A group only the API's rows change (and delete).
    api_group: i64,
    password: String,
    /// Promotion requests by fresh Writers, by placeholder.
    requests: Vec<(&'static str, i64)>,
    /// Webhook endpoints, each with a failed delivery: the console's, the API's.
    webhook: (i64, i64),
    api_webhook: (i64, i64),
}

impl Fixtures {
    async fn new(t: &TestLadder, cast: &Cast, role: &str) -> Fixtures {
        let user = t.user(&format!("target-of-{role}")).await.username;
        let name = format!("matrix token of {role}");
        Fixtures {
            role: role.to_string(),
            draft: post_by(t, &cast.writer, "The draft", false).await,
            published: post_by(t, &cast.writer, "The published post", true).await,
            user_token: token_of(t, &user, &name).await,
            admin_token: token_of(t, &cast.admin.username, &name).await,
            user,
            group: t.group(&format!("Group of {role}"), &[]).await.group_id,
            api_group: t.group(&format!("API group of {role}"), &[]).await.group_id,
            password: format!("{role}-password"),
            requests: promotion_requests(t, cast, role).await,
            webhook: webhook_of(t, &format!("console-{role}")).await,
            api_webhook: webhook_of(t, &format!("api-{role}")).await,
        }
    }

    fn fill(&self, template: &str) -> String {
        let mut filled = template.to_string();
        for (placeholder, request_id) in &self.requests {
            filled = filled.replace(placeholder, &request_id.to_string());
        }
        filled
            .replace("{webhook_delivery}", &self.webhook.1.to_string())
            .replace("{webhook}", &self.webhook.0.to_string())
            .replace("{api_webhook_delivery}", &self.api_webhook.1.to_string())
            .replace("{api_webhook}", &self.api_webhook.0.to_string())
            .replace("{user_token}", &self.user_token.to_string())
            .replace("{admin_token}", &self.admin_token.to_string())
            .replace("{draft}", &self.draft.to_string())
            .replace("{published}", &self.published.to_string())
            .replace("{user}", &self.user)
            .replace("{group}", &self.group.to_string())
            .replace("{api_group}", &self.api_group.to_string())
            .replace("{password}", &self.password)
            .replace("{role}", &self.role)
    }
}

/// A signed-in user holding exactly `holds` (staff or not, and these
/// permissions, directly), made once per distinct need.
struct Holders {
    clients: Vec<(Holds, String, Client)>,
}

/// Staff or not, and the permissions held.
type Holds = (bool, Vec<&'static str>);

impl Holders {
    async fn client(
        &mut self,
        t: &TestLadder,
        app: &TestApp,
        staff: bool,
        perms: Vec<&'static str>,
    ) -> (&Client, String) {
        let key = (staff, perms);
        if let Some(at) = self.clients.iter().position(|(k, ..)| *k == key) {
            let (_, name, client) = &self.clients[at];
            return (client, name.clone());
        }
        let name = format!("holder-{}", self.clients.len());
        let user = t.user(&name).await;
        if key.0 {
            make_staff(t, &user).await;
        }
        if !key.1.is_empty() {
            t.grant(&user, &key.1).await;
        }
        let client = app.signed_in(&name).await;
        self.clients.push((key, name.clone(), client));
        let (_, _, client) = self.clients.last().unwrap();
        (client, name)
    }
}

async fn send(client: &Client, fixtures: &Fixtures, req: Req) -> (&'static str, String, Response) {
    match req {
        Get(path) => {
            let path = fixtures.fill(path);
            ("GET", path.clone(), client.get(&path).await)
        }
        Post(path, fields) => {
            let path = fixtures.fill(path);
            let filled: Vec<(&str, String)> =
                fields.iter().map(|(k, v)| (*k, fixtures.fill(v))).collect();
            let fields: Vec<(&str, &str)> = filled.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ("POST", path.clone(), submit(client, &path, &fields).await)
        }
        Json(path, body) | JsonAs(_, path, body) => {
            let method = match req {
                JsonAs(method, ..) => method,
                _ => "POST",
            };
            let path = fixtures.fill(path);
            let response = client
                .http
                .request(method.parse().unwrap(), client.url(&path))
                .header(header::CONTENT_TYPE, "application/json")
                .body(fixtures.fill(body))
                .send()
                .await
                .unwrap();
            (method, path, response)
        }
    }
}

async fn every_route_answers_each_role_exactly_as_its_rule_says(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let app = t.serve().await;
    let rules = served_routes();
    let mut holders = Holders { clients: vec![] };
    let mut wrong = Vec::new();
    for (column, role) in ROLES.into_iter().enumerate() {
        let client = match role {
            "anonymous" | "exact" => app.client(),
            _ => app.signed_in(role).await,
        };
        let mut fixtures = Fixtures::new(&t, &cast, role).await;
        for (req, wants) in route_matrix() {
            let (client, who) = if role == "exact" {
                let (method, row) = req.method_and_path();
                let rule = rule_of(&rules, method, row);
                let (client, name) = holders
                    .client(&t, &app, rule.needs_staff(), rule.perms())
                    .await;
                fixtures.password = format!("{name}-password");
                (client, format!("{name} ({rule:?})"))
            } else {
                (&client, role.to_string())
            };
            let (method, path, response) = send(client, &fixtures, req).await;
            if let Err(why) = judge(wants[column], method, &path, response, client, &fixtures).await
            {
                wrong.push(format!("{who:>9}  {method:4} {path}: {why}"));
            }
        }
    }

    // A rule of two permissions is checked for each: staff holding only one
    // is refused, naming the other.
    let fixtures = Fixtures::new(&t, &cast, "one-of-two").await;
    for (route, a, b) in TWO_PERMISSIONS {
        for (holds, lacks) in [(*a, *b), (*b, *a)] {
            let (client, name) = holders.client(&t, &app, true, vec![holds]).await;
            for (req, _) in route_matrix().into_iter().filter(|(req, _)| {
                let (method, path) = req.method_and_path();
                path == *route && rule_of(&rules, method, path).perms().len() == 2
            }) {
                let (method, path, response) = send(client, &fixtures, req).await;
                if let Err(why) = judge(no(lacks), method, &path, response, client, &fixtures).await
                {
                    wrong.push(format!(
                        "{name} (staff, {holds} only)  {method:4} {path}: {why}"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} answers differ from the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Whether `location` is `target`, where `#` stands for a number.
fn same_target(target: &str, location: &str) -> bool {
    let mut parts = target.split('#');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = location.strip_prefix(first) else {
        return false;
    };
    for part in parts {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 || !rest[digits..].starts_with(part) {
            return false;
        }
        rest = &rest[digits + part.len()..];
    }
    rest.is_empty()
}

/// Checks one answer against the matrix; says what differs. A 303 is
/// followed (with `client`) to read what the target page flashes.
async fn judge(
    want: Want,
    method: &str,
    path: &str,
    response: Response,
    client: &Client,
    fixtures: &Fixtures,
) -> Result<(), String> {
    let status = response.status().as_u16();
    let location = location(&response).to_string();
    let body = response.text().await.unwrap_or_default();
    match want {
        Want::Status(code) if status == code => Ok(()),
        Want::Status(code) => Err(format!("expected {code}, got {status} {location}")),
        Want::SignIn => {
            let back = if method == "GET" { path } else { "/" };
            let expected = format!(
                "/login?{}",
                serde_urlencoded::to_string([("next", back)]).unwrap()
            );
            if status == 302 && location == expected {
                Ok(())
            } else {
                Err(format!(
                    "expected 302 to {expected}, got {status} {location}"
                ))
            }
        }
        Want::Refused(what) if status == 403 && body.contains(what) => Ok(()),
        Want::Refused(what) => Err(format!(
            "expected 403 naming {what:?}, got {status} {location} {}",
            message_of(&body)
        )),
        Want::Done(target) | Want::NotDone(target, _) => {
            let target = fixtures.fill(target);
            if status != 303 || !same_target(&target, &location) {
                return Err(format!(
                    "expected 303 to {target}, got {status} {location} {}",
                    message_of(&body)
                ));
            }
            // The flash shows on the target page or, if this user may not see
            // that page (a delegate without the view permission, say), on
            // the next page they may see.
            let mut page = client.get(&location).await;
            if page.status() != StatusCode::OK {
                page = client.get("/posts/mine").await;
            }
            let shown = if page.status() == StatusCode::OK {
                page.text().await.unwrap_or_default()
            } else {
                String::new()
            };
            // The first flash there, by kind: "success" says it was done;
            // "error" (a refusal) or "info" (nothing to do) that it was not.
            let marker = "class=\"flash flash-";
            let flash = shown.find(marker).map(|at| {
                let kind = shown[at + marker.len()..]
                    .split('"')
                    .next()
                    .unwrap_or_default();
                let text = html_unescape(&flash_of(&shown[at..]).unwrap_or_default());
                (kind.to_string(), text)
            });
            match (want, flash) {
                (Want::Done(_), None) => Ok(()),
                (Want::Done(_), Some((kind, _))) if kind == "success" => Ok(()),
                (Want::Done(_), Some(flash)) => {
                    Err(format!("303 to {location}, but not done: {flash:?}"))
                }
                (Want::NotDone(_, why), Some((kind, text)))
                    if kind != "success" && text.contains(why) =>
                {
                    Ok(())
                }
                (Want::NotDone(_, why), flash) => Err(format!(
                    "expected 303 to {location} flashing that it was not done ({why:?}), got {flash:?}"
                )),
                _ => unreachable!(),
            }
        }
    }
}

/// The error page's message, for failure output.
fn message_of(body: &str) -> String {
    body.split("<p>")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or("")
        .to_string()
}

/// A live API token of `owner`, made by Ladder itself; its id.
/// An endpoint (on a public address nobody delivers to here: the test runs
/// no worker) with one failed delivery; answers both ids.
async fn webhook_of(t: &TestLadder, name: &str) -> (i64, i64) {
    let (endpoint, _) = t
        .ladder
        .db
        .run(ladder::webhooks::CreateEndpoint {
            actor: t.system(),
            url: format!("https://93.184.216.34/{name}"),
            description: name.to_string(),
            event_types: vec!["user.created".into()],
            is_active: true,
            now: t.now(),
        })
        .await
        .unwrap();
    let delivery: i64 = sqlx::query_scalar(
        "insert into webhook_deliveries (endpoint_id, message_id, event_type, subject, payload, \
         state, attempts, next_attempt_at, last_status, last_error, created_at) \
         values ($1, $2, 'user.created', 'user:1', '{}', 'failed', 10, 0, 500, 'answered 500', 0) \
         returning delivery_id",
    )
    .bind(endpoint.endpoint_id)
    .bind(format!("msg_{name}"))
    .fetch_one(t.ladder.db.pool())
    .await
    .unwrap();
    (endpoint.endpoint_id, delivery)
}

async fn token_of(t: &TestLadder, owner: &str, name: &str) -> i64 {
    let made = t.ladder.db.run(CreateToken {
        actor: t.system(),
        owner: owner.to_string(),
        name: name.to_string(),
        expires_at: None,
        scope: None,
        now: t.now(),
    });
    made.await.unwrap().token.token_id
}

/// One promotion request per placeholder, each by a fresh Writer on the
/// "senior-writer" track: pending, but for `{approved_request}`.
async fn promotion_requests(t: &TestLadder, cast: &Cast, role: &str) -> Vec<(&'static str, i64)> {
    let mut requests = Vec::new();
    for (n, placeholder) in [
        "{request}",
        "{other_request}",
        "{approved_request}",
        "{api_request}",
        "{other_api_request}",
    ]
    .into_iter()
    .enumerate()
    {
        let asker = format!("asker-{n}-of-{role}");
        let approved = placeholder == "{approved_request}";
        requests.push((
            placeholder,
            promotion_request(t, cast, &asker, approved).await,
        ));
    }
    requests
}

/// A request by a new member of Writers, approved by the superuser if `approved`.
async fn promotion_request(t: &TestLadder, cast: &Cast, asker: &str, approved: bool) -> i64 {
    let asker = t.user(asker).await;
    t.join(&asker, &cast.writers).await;
    let actor = Actor::user(asker.clone(), Source::Web);
    let request = workflow::submit(&t.ladder, &actor, &asker, "senior-writer", "Ready.")
        .await
        .unwrap();
    if approved {
        let actor = Actor::user(cast.admin.clone(), Source::Web);
        workflow::approve(&t.ladder, &actor, &cast.admin, request.request_id, "")
            .await
            .unwrap();
    }
    request.request_id
}
