//! The web app over a real port, driven like a browser, on both backends:
//! who may reach which route, CSRF, sign-in and sessions, escaping, security
//! headers, and the delegation rules as the admin console applies them.

use std::net::IpAddr;

use ladder::{
    accounts::{
        Email, Group, NewPassword, User, Username, groups,
        users::{self, NewUser},
    },
    actor::{Actor, Source},
    blog::{self, Draft},
};
use reqwest::{
    Response, StatusCode,
    header::{self, HeaderMap, HeaderName, HeaderValue},
};

use crate::helpers::{Client, Kind, TestApp, TestLadder, csrf_from, skip_or_fail, workflow};

on_both_backends!(
    every_route_answers_each_role_exactly_as_its_rule_says,
    an_anonymous_visitor_is_sent_to_sign_in_and_back,
    a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing,
    sign_in_never_sends_anyone_off_site,
    markup_in_names_and_titles_is_shown_as_text_on_every_page,
    an_inactive_user_cannot_sign_in_and_is_told_the_same_as_for_a_wrong_password,
    a_deactivated_users_session_stops_working_on_their_next_request,
    changing_your_password_ends_your_other_sessions_but_keeps_this_one,
    reading_pages_does_not_write_the_session_but_a_flash_does,
    a_password_set_in_the_admin_console_ends_that_users_sessions,
    every_response_carries_the_security_headers,
    health_and_readiness_answer_in_json,
    an_unknown_path_gets_the_not_found_page,
    a_change_user_holder_is_offered_and_allowed_only_what_they_hold,
    joining_senior_writers_shows_the_publish_button_on_the_next_page,
    the_group_delete_page_says_how_many_members_will_lose_access,
);

/// Like `on_both_backends!`, for tests that start their own `TestLadder`
/// (with settings of their own) from the backend kind.
macro_rules! on_both_backends_with_settings {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Kind::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Kind::Postgres).await;
            }
        }
    )*};
}

on_both_backends_with_settings!(
    guessing_the_current_password_is_rate_limited,
    the_fourth_sign_in_attempt_in_a_minute_is_refused_with_when_to_try_again,
    sign_in_attempts_are_limited_per_address_and_per_username,
);

const WRITER: &[&str] = &["blog.add_post", "blog.change_post", "blog.view_post"];
const SENIOR_WRITER: &[&str] = &[
    "blog.add_post",
    "blog.change_post",
    "blog.view_post",
    "blog.publish_post",
];
const EDITOR: &[&str] = &[
    "blog.add_post",
    "blog.change_post",
    "blog.delete_post",
    "blog.view_post",
    "blog.publish_post",
    "blog.feature_post",
    "auth.view_user",
];

const MARKUP: &str = "<script>alert(1)</script>";
const RAW: &str = "<script>alert(1)";
const ESCAPED: &str = "&lt;script&gt;alert(1)";

// ---------------------------------------------------------------------------
// 1. The role × route matrix
// ---------------------------------------------------------------------------

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
const TWO_PERMISSIONS: &[(&str, &str, &str)] =
    &[("/admin/users/new", "auth.add_user", "auth.change_user")];

/// What one role should get from one request.
#[derive(Clone, Copy, Debug)]
enum Want {
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
enum Req {
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
    fn method_and_path(self) -> (&'static str, &'static str) {
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
fn route_matrix() -> Vec<(Req, [Want; 7])> {
    let (e401, e409, e422) = (Want::Status(401), Want::Status(409), Want::Status(422));
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
        // Last: these end or renew the role's session
        (Post("/account/password", &[("current", "{password}"), ("new", "a-brand-new-passphrase"), ("confirm", "a-brand-new-passphrase")]),
                                                                                 [LOGIN,     home,       home,       home,       home,                 home,        home]),
        (Post("/logout", &[]),                                                   [LOGIN,     home,       home,       home,       home,                 home,        home]),
    ]
}

/// The cast of the matrix and of several other tests: one user per role,
/// each named after it, in the demo's groups.
struct Cast {
    writer: User,
    admin: User,
    writers: Group,
}

impl Cast {
    async fn new(t: &TestLadder) -> Cast {
        let admin = t.superuser("admin").await;
        let writer = t.user("writer").await;
        let senior = t.user("senior").await;
        let editor = t.user("editor").await;
        let staff = t.user("staff").await;
        // Editors first: the promotion track's approvers must hold what Senior Writers get.
        t.join(&editor, &t.group("Editors", EDITOR).await).await;
        let writers = t.group("Writers", WRITER).await;
        t.join(&writer, &writers).await;
        t.join(&senior, &t.group("Senior Writers", SENIOR_WRITER).await)
            .await;
        make_staff(t, &staff).await;
        Cast {
            writer,
            admin,
            writers,
        }
    }
}

/// Objects for one role's run of the matrix, made fresh so that what one
/// role changes (publishing, deleting, deactivating) cannot touch another's.
struct Fixtures {
    role: String,
    draft: i64,
    published: i64,
    user: String,
    group: i64,
    password: String,
    /// Promotion requests by fresh Writers, by placeholder.
    requests: Vec<(&'static str, i64)>,
}

impl Fixtures {
    async fn new(t: &TestLadder, cast: &Cast, role: &str) -> Fixtures {
        Fixtures {
            role: role.to_string(),
            draft: post_by(t, &cast.writer, "The draft", false).await,
            published: post_by(t, &cast.writer, "The published post", true).await,
            user: t.user(&format!("target-of-{role}")).await.username,
            group: t.group(&format!("Group of {role}"), &[]).await.group_id,
            password: format!("{role}-password"),
            requests: promotion_requests(t, cast, role).await,
        }
    }

    fn fill(&self, template: &str) -> String {
        let mut filled = template.to_string();
        for (placeholder, request_id) in &self.requests {
            filled = filled.replace(placeholder, &request_id.to_string());
        }
        filled
            .replace("{draft}", &self.draft.to_string())
            .replace("{published}", &self.published.to_string())
            .replace("{user}", &self.user)
            .replace("{group}", &self.group.to_string())
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
                .body(body)
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
            for (req, _) in route_matrix()
                .into_iter()
                .filter(|(req, _)| req.method_and_path().1 == *route)
            {
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

/// A route's rule as `src/web/router.rs` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SourceRule {
    Public,
    SignedIn,
    Staff,
    Perm(String),
    StaffPerm(String),
    StaffPerms(String, String),
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
            _ => panic!("the matrix test cannot read the rule {text:?}; teach SourceRule::parse"),
        }
    }

    fn needs_staff(&self) -> bool {
        matches!(
            self,
            SourceRule::Staff | SourceRule::StaffPerm(_) | SourceRule::StaffPerms(..)
        )
    }

    fn perms(&self) -> Vec<&'static str> {
        let leak = |p: &String| -> &'static str { Box::leak(p.clone().into_boxed_str()) };
        match self {
            SourceRule::Perm(p) | SourceRule::StaffPerm(p) => vec![leak(p)],
            SourceRule::StaffPerms(a, b) => vec![leak(a), leak(b)],
            _ => vec![],
        }
    }
}

/// One method of one route, as the router serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServedRoute {
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
fn served_routes() -> Vec<ServedRoute> {
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
fn rule_of(served: &[ServedRoute], method: &str, row: &str) -> SourceRule {
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
            SourceRule::StaffPerms(a, b) => Some((s.path.clone(), a.clone(), b.clone())),
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

// ---------------------------------------------------------------------------
// 2. CSRF
// ---------------------------------------------------------------------------

async fn a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let group = t.group("Reviewers", &[]).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let admin = app.signed_in("admin").await;
    let others_token = session_token(&admin).await;

    // Creating a post: no token, a made-up one, another session's, a wrong header.
    let before = (t.fingerprint().await, t.count("posts").await);
    let form = [("title", "Sneaky"), ("body", "Posted from elsewhere.")];
    let attempts = [
        writer.http.post(writer.url("/posts/new")).form(&form),
        writer
            .http
            .post(writer.url("/posts/new"))
            .form(&[("csrf_token", "0".repeat(64).as_str()), ("title", "Sneaky")]),
        writer
            .http
            .post(writer.url("/posts/new"))
            .form(&[("csrf_token", others_token.as_str()), ("title", "Sneaky")]),
        writer
            .http
            .post(writer.url("/posts/new"))
            .header("x-csrf-token", others_token.as_str())
            .form(&form),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), 403);
        assert!(response.text().await.unwrap().contains("CSRF check failed"));
    }
    assert_eq!((t.fingerprint().await, t.count("posts").await), before);
    // The same form with the session's token works, so the refusals were the token's.
    assert_eq!(submit(&writer, "/posts/new", &form).await.status(), 303);
    assert_eq!(t.count("posts").await, before.1 + 1);

    // Adding a group member.
    let before = t.fingerprint().await;
    let path = format!("/admin/groups/{}/members", group.group_id);
    let add = [("username", "writer"), ("action", "add")];
    let response = admin
        .http
        .post(admin.url(&path))
        .form(&add)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = admin.post_form(&path, "not-the-token", &add).await;
    assert_eq!(response.status(), 403);
    assert_eq!(t.fingerprint().await, before);
    let mut conn = t.ladder.db.acquire().await.unwrap();
    assert!(
        !groups::is_member(&mut conn, cast.writer.user_id, group.group_id)
            .await
            .unwrap()
    );
    drop(conn);

    // Signing out: without the token the session goes on.
    let sessions = t.count("sessions").await;
    let response = writer
        .http
        .post(writer.url("/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(writer.get("/posts/mine").await.status(), 200);
    assert_eq!(t.count("sessions").await, sessions);

    // The API takes JSON without a token, as no other site can send JSON with
    // our cookie; what another site's form can send is refused.
    let requests = t.count("promotion_requests").await;
    let ask = "track=senior-writer&justification=Ready.";
    for content_type in ["application/x-www-form-urlencoded", "text/plain"] {
        let response = writer
            .http
            .post(writer.url("/api/v1/promotions"))
            .header(header::CONTENT_TYPE, content_type)
            .body(ask)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{content_type}");
    }
    assert_eq!(t.count("promotion_requests").await, requests);

    // Signing in needs the sign-in page's token too; a refusal is not even an attempt.
    let attempts = t.count("login_attempts").await;
    let stranger = app.client();
    let response = stranger
        .http
        .post(stranger.url("/login"))
        .form(&[("username", "writer"), ("password", "writer-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(stranger.get("/posts/mine").await.status(), 302);
    assert_eq!(t.count("login_attempts").await, attempts);
}

// ---------------------------------------------------------------------------
// 3. Sign-in and `next`
// ---------------------------------------------------------------------------

async fn an_anonymous_visitor_is_sent_to_sign_in_and_back(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let visitor = app.client();

    let response = visitor.get("/posts/new?title=x").await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "/login?next=%2Fposts%2Fnew%3Ftitle%3Dx"
    );

    let form = visitor.get(location(&response)).await;
    assert_eq!(form.status(), 200);
    // Nothing is stored for an anonymous visitor: the form's CSRF token is
    // tied to a cookie of its own, not to a session row.
    assert_eq!(session_cookie(&form), None);
    assert_eq!(t.count("sessions").await, 0);
    let html = form.text().await.unwrap();
    assert_eq!(
        field_value(&html, "next").as_deref(),
        Some("/posts/new?title=x")
    );

    let token = csrf_from(&html).unwrap();
    let response = visitor
        .post_form(
            "/login",
            &token,
            &[
                ("username", "writer"),
                ("password", "writer-password"),
                ("next", "/posts/new?title=x"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/posts/new?title=x");
    // Signing in starts the session.
    assert!(session_cookie(&response).is_some());
    assert_eq!(t.count("sessions").await, 1);
    assert_eq!(visitor.get("/posts/new?title=x").await.status(), 200);
}

async fn sign_in_never_sends_anyone_off_site(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    for evil in ["//evil.example", "https://evil.example", "/\\evil.example"] {
        let visitor = app.client();
        let query = serde_urlencoded::to_string([("next", evil)]).unwrap();
        // The form does not carry it on...
        let html = visitor
            .get(&format!("/login?{query}"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(field_value(&html, "next").as_deref(), Some("/"), "{evil}");
        // ...and a hand-made form with it lands on the home page.
        let token = csrf_from(&html).unwrap();
        let response = visitor
            .post_form(
                "/login",
                &token,
                &[
                    ("username", "writer"),
                    ("password", "writer-password"),
                    ("next", evil),
                ],
            )
            .await;
        assert_eq!(response.status(), 303, "{evil}");
        assert_eq!(location(&response), "/", "{evil}");
        // Signed in, the sign-in page sends them on: home, not off site.
        let response = visitor.get(&format!("/login?{query}")).await;
        assert_eq!(response.status(), 303, "{evil}");
        assert_eq!(location(&response), "/", "{evil}");
    }
    // A local `next` is honoured.
    let visitor = app.client();
    let token = visitor.csrf("/login").await;
    let response = visitor
        .post_form(
            "/login",
            &token,
            &[
                ("username", "writer"),
                ("password", "writer-password"),
                ("next", "/posts/mine?x=1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/posts/mine?x=1");
}

// ---------------------------------------------------------------------------
// 4. Escaping
// ---------------------------------------------------------------------------

async fn markup_in_names_and_titles_is_shown_as_text_on_every_page(t: TestLadder) {
    Cast::new(&t).await;
    // Usernames cannot hold markup; this one holds every other character allowed.
    let name = "mal.o+brien@x_y-1";
    let mallory = user_with_display_name(&t, name, MARKUP).await;
    t.grant(&mallory, SENIOR_WRITER).await;
    let crew = t
        .group(&format!("{MARKUP} crew"), &["blog.view_post"])
        .await;
    t.join(&mallory, &crew).await;
    let app = t.serve().await;

    // Mallory writes and publishes through the forms.
    let author = app.signed_in(name).await;
    let response = submit(
        &author,
        "/posts/new",
        &[("title", MARKUP), ("body", MARKUP)],
    )
    .await;
    assert_eq!(response.status(), 303);
    let post = location(&response).to_string();
    let draft_page = author.get(&post).await.text().await.unwrap();
    assert_escaped("the post page of a draft", &draft_page);
    assert_eq!(
        submit(&author, &format!("{post}/publish"), &[])
            .await
            .status(),
        303
    );

    let mut pages = vec![
        ("my posts", author.get("/posts/mine").await),
        ("the edit form", author.get(&format!("{post}/edit")).await),
        ("the posts list", app.client().get("/posts").await),
        ("the post page", app.client().get(&post).await),
    ];
    let admin = app.signed_in("admin").await;
    let search = serde_urlencoded::to_string([("q", MARKUP)]).unwrap();
    let users = admin
        .get(&format!("/admin/users?{search}"))
        .await
        .text()
        .await
        .unwrap();
    assert_escaped("the users list", &users);
    assert!(
        users.contains(">mal.o+brien@x_y-1</a>"),
        "the search finds mallory by name"
    );
    // Follow the list's link, as a browser would.
    let link = href_to(&users, "/admin/users/mal").expect("a link to mallory's page");
    assert_eq!(link, "/admin/users/mal.o%2Bbrien%40x_y-1");
    pages.extend([
        ("the user page", admin.get(&link).await),
        (
            "the users list filtered by group",
            admin
                .get(&format!(
                    "/admin/users?{}",
                    serde_urlencoded::to_string([("group", format!("{MARKUP} crew"))]).unwrap()
                ))
                .await,
        ),
        (
            "the group page",
            admin.get(&format!("/admin/groups/{}", crew.group_id)).await,
        ),
        ("the groups list", admin.get("/admin/groups").await),
        (
            "the permissions page",
            admin.get("/admin/permissions").await,
        ),
        ("the audit log", admin.get("/admin/audit").await),
    ]);
    for (page, response) in pages {
        assert_eq!(response.status(), 200, "{page}");
        let body = response.text().await.unwrap();
        assert_escaped(page, &body);
    }
    // The group page lists mallory among the members.
    let group_page = admin
        .get(&format!("/admin/groups/{}", crew.group_id))
        .await
        .text()
        .await
        .unwrap();
    assert!(group_page.contains(">mal.o+brien@x_y-1</a>"));

    // The delete page and the flash after deleting show the title as text too.
    let editor = app.signed_in("editor").await;
    let confirm = editor.get(&format!("{post}/delete")).await;
    assert_eq!(confirm.status(), 200);
    assert_escaped("the delete page", &confirm.text().await.unwrap());
    assert_eq!(
        submit(&editor, &format!("{post}/delete"), &[])
            .await
            .status(),
        303
    );
    assert_escaped(
        "the flash after deleting",
        &editor.get("/posts/mine").await.text().await.unwrap(),
    );
}

fn assert_escaped(page: &str, body: &str) {
    assert!(!body.contains(RAW), "{page} shows the markup raw:\n{body}");
    assert!(
        body.contains(ESCAPED),
        "{page} does not show the markup as text:\n{body}"
    );
}

// ---------------------------------------------------------------------------
// 5. Rate limiting and inactive users at sign-in
// ---------------------------------------------------------------------------

async fn the_fourth_sign_in_attempt_in_a_minute_is_refused_with_when_to_try_again(kind: Kind) {
    let Some(t) = TestLadder::start_with(kind, |s| s.server.login_attempts_per_minute = 3).await
    else {
        return;
    };
    t.user("alice").await;
    let app = t.serve().await;
    let visitor = app.client();
    for _ in 0..3 {
        assert_eq!(visitor.login("alice", "wrong-password").await.status(), 422);
    }
    // The right password does not help once the limit is reached.
    let response = visitor.login("alice", "alice-password").await;
    assert_eq!(response.status(), 429);
    assert_security_headers("429", response.headers());
    let wait: u64 = response
        .headers()
        .get(header::RETRY_AFTER)
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let body = response.text().await.unwrap();
    assert!(body.contains("Too many attempts"));
    assert!(
        body.contains(&format!("try again in {wait} seconds")),
        "{body}"
    );
    assert_eq!(visitor.get("/posts/mine").await.status(), 302);

    // A minute later the window has moved on.
    t.ladder.clock.advance(61);
    assert_eq!(visitor.login("alice", "alice-password").await.status(), 303);
}

async fn sign_in_attempts_are_limited_per_address_and_per_username(kind: Kind) {
    let Some(t) = TestLadder::start_with(kind, |s| s.server.login_attempts_per_minute = 3).await
    else {
        return;
    };
    t.user("alice").await;
    t.user("bob").await;
    let app = t.serve().await;
    let here = app.client();
    for _ in 0..3 {
        assert_eq!(here.login("alice", "wrong-password").await.status(), 422);
    }
    // This address and alice together are over the limit: even the right
    // password is not checked from here.
    assert_eq!(here.login("alice", "alice-password").await.status(), 429);
    // Failing for alice does not lock this address out of other accounts.
    assert_eq!(here.login("bob", "bob-password").await.status(), 303);

    // From another address: alice's name is over its limit, so a wrong
    // password is told to wait, but the right one still gets in: nobody can
    // lock alice out by failing on purpose.
    let Some(elsewhere) = second_address_client(&app, "127.0.0.2") else {
        return;
    };
    assert_eq!(
        elsewhere.login("alice", "wrong-password").await.status(),
        429
    );
    assert_eq!(
        elsewhere.login("alice", "alice-password").await.status(),
        303
    );

    // One address spraying many usernames meets the per-address limit (ten
    // times the per-pair limit).
    let Some(sprayer) = second_address_client(&app, "127.0.0.3") else {
        return;
    };
    for n in 0..30 {
        let status = sprayer
            .login(&format!("nobody{n}"), "wrong-password")
            .await
            .status();
        assert_eq!(status, 422, "attempt {n}");
    }
    assert_eq!(sprayer.login("bob", "bob-password").await.status(), 429);
}

/// A client whose requests come from `address` (another loopback address).
/// Where it cannot be bound the rest of the test is skipped, and under CI
/// fails instead (`helpers::skip_or_fail`), naming the address.
fn second_address_client(app: &TestApp, address: &str) -> Option<Client> {
    static NOTICE: std::sync::Once = std::sync::Once::new();
    let other: IpAddr = address.parse().unwrap();
    if let Err(e) = std::net::TcpListener::bind((other, 0)) {
        skip_or_fail(
            &format!(
                "the loopback address {address} cannot be bound ({e}), so requests cannot come from a second address"
            ),
            &NOTICE,
        );
        return None;
    }
    Some(client_from(app, other))
}

async fn an_inactive_user_cannot_sign_in_and_is_told_the_same_as_for_a_wrong_password(
    t: TestLadder,
) {
    t.user("bob").await;
    let carol = t.user("carol").await;
    set_active(&t, &carol, false).await;
    let app = t.serve().await;
    let visitor = app.client();
    let message = "That username and password do not match an active account.";

    let wrong_password = visitor.login("bob", "wrong-password").await;
    assert_eq!(wrong_password.status(), 422);
    assert!(wrong_password.text().await.unwrap().contains(message));

    let inactive = visitor.login("carol", "carol-password").await;
    assert_eq!(inactive.status(), 422);
    let inactive = inactive.text().await.unwrap();
    assert!(inactive.contains(message));
    // Nothing on the page tells that carol's password was right.
    let inactive_wrong = visitor.login("carol", "wrong-password").await;
    assert_eq!(inactive_wrong.status(), 422);
    assert_eq!(inactive_wrong.text().await.unwrap(), inactive);
    assert_eq!(visitor.get("/posts/mine").await.status(), 302);
}

// ---------------------------------------------------------------------------
// 6. Sessions
// ---------------------------------------------------------------------------

async fn a_deactivated_users_session_stops_working_on_their_next_request(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    assert_eq!(writer.get("/posts/mine").await.status(), 200);

    let admin = app.signed_in("admin").await;
    assert_eq!(admin.get("/admin/users/writer/active").await.status(), 200);
    let response = submit(&admin, "/admin/users/writer/active", &[("value", "false")]).await;
    assert_eq!(response.status(), 303);
    assert!(!t.reload(&cast.writer).await.is_active);

    let response = writer.get("/posts/mine").await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/login?next=%2Fposts%2Fmine");

    // The session was ended, not suspended: reactivating does not revive it.
    set_active(&t, &cast.writer, true).await;
    assert_eq!(writer.get("/posts/mine").await.status(), 302);
    assert_eq!(
        app.signed_in("writer")
            .await
            .get("/posts/mine")
            .await
            .status(),
        200
    );
}

async fn changing_your_password_ends_your_other_sessions_but_keeps_this_one(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let here = app.signed_in("writer").await;
    let there = app.signed_in("writer").await;

    // A wrong current password changes nothing.
    let response = submit(
        &here,
        "/account/password",
        &[
            ("current", "not-my-password"),
            ("new", "a-brand-new-passphrase"),
            ("confirm", "a-brand-new-passphrase"),
        ],
    )
    .await;
    assert_eq!(response.status(), 422);
    assert_eq!(there.get("/posts/mine").await.status(), 200);

    let response = submit(
        &here,
        "/account/password",
        &[
            ("current", "writer-password"),
            ("new", "a-brand-new-passphrase"),
            ("confirm", "a-brand-new-passphrase"),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(here.get("/posts/mine").await.status(), 200);
    let response = there.get("/posts/mine").await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/login?next=%2Fposts%2Fmine");

    assert_eq!(
        app.client()
            .login("writer", "writer-password")
            .await
            .status(),
        422
    );
    assert_eq!(
        app.client()
            .login("writer", "a-brand-new-passphrase")
            .await
            .status(),
        303
    );
}

async fn guessing_the_current_password_is_rate_limited(kind: Kind) {
    let Some(t) = TestLadder::start_with(kind, |s| s.server.login_attempts_per_minute = 3).await
    else {
        return;
    };
    Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let attempt = |current: &'static str| {
        let writer = &writer;
        async move {
            submit(
                writer,
                "/account/password",
                &[
                    ("current", current),
                    ("new", "a-brand-new-passphrase"),
                    ("confirm", "a-brand-new-passphrase"),
                ],
            )
            .await
            .status()
        }
    };
    // The same limit as sign-in's, here three a minute.
    for _ in 0..3 {
        assert_eq!(attempt("a-wrong-guess").await, 422);
    }
    // The fourth waits, even with the right password, and changes nothing.
    assert_eq!(attempt("writer-password").await, 429);
    assert_eq!(
        app.client()
            .login("writer", "writer-password")
            .await
            .status(),
        303
    );
}

/// The session row as stored: what a write would change.
async fn session_rows(t: &TestLadder) -> Vec<(String, String, i64)> {
    sqlx::query_as("select session_id, data, expires_at from sessions order by session_id")
        .fetch_all(t.ladder.db.pool())
        .await
        .unwrap()
}

async fn reading_pages_does_not_write_the_session_but_a_flash_does(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    // The first signed-in request renews the session (the hour of renewal).
    assert_eq!(writer.get("/posts/mine").await.status(), 200);
    let hour = || time::OffsetDateTime::now_utc().unix_timestamp() / 3_600;
    // Mark the row: any write by the session layer would set a new expiry.
    let marker = t.now() + 1_000;
    sqlx::query("update sessions set expires_at = $1")
        .bind(marker)
        .execute(t.ladder.db.pool())
        .await
        .unwrap();
    let (before, started) = (session_rows(&t).await, hour());
    for path in ["/posts/mine", "/posts", "/promotions/mine", "/posts/new"] {
        assert_eq!(writer.get(path).await.status(), 200, "{path}");
    }
    // Across an hour boundary the renewal writes once, by design.
    if hour() == started {
        assert_eq!(
            session_rows(&t).await,
            before,
            "a page view wrote the session"
        );
    }

    // A message for the next page is a change, and is written.
    let token = writer.csrf("/posts/new").await;
    let response = writer
        .post_form(
            "/posts/new",
            &token,
            &[("title", "Hello"), ("body", "World")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let after = session_rows(&t).await;
    assert_ne!(after, before);
    let page = writer.get(location(&response)).await.text().await.unwrap();
    assert!(
        page.contains("class=\"flash"),
        "the flash is shown once: {page}"
    );
}

async fn a_password_set_in_the_admin_console_ends_that_users_sessions(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let admin = app.signed_in("admin").await;
    let response = submit(
        &admin,
        "/admin/users/writer/password",
        &[("password", "set-by-the-admin")],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(writer.get("/posts/mine").await.status(), 302);
    assert_eq!(admin.get("/admin").await.status(), 200);
    assert_eq!(
        app.client()
            .login("writer", "set-by-the-admin")
            .await
            .status(),
        303
    );
}

// ---------------------------------------------------------------------------
// 7. Headers, health, 404
// ---------------------------------------------------------------------------

async fn every_response_carries_the_security_headers(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let visitor = app.client();
    let writer = app.signed_in("writer").await;
    let responses = vec![
        ("a page", visitor.get("/posts").await),
        ("the sign-in page", visitor.get("/login").await),
        ("JSON", visitor.get("/healthz").await),
        ("the stylesheet", visitor.get("/static/app.css").await),
        ("a redirect", visitor.get("/").await),
        ("a redirect to sign in", visitor.get("/posts/mine").await),
        ("a 404", visitor.get("/no/such/page").await),
        (
            "a CSRF refusal",
            visitor
                .http
                .post(visitor.url("/logout"))
                .send()
                .await
                .unwrap(),
        ),
        ("a refusal", writer.get("/admin").await),
        (
            "a form with errors",
            submit(&writer, "/posts/new", &[("title", "")]).await,
        ),
        (
            "a form's redirect",
            submit(&writer, "/posts/new", &[("title", "Hi")]).await,
        ),
        ("a wrong method", visitor.get("/logout").await),
    ];
    for (what, response) in &responses {
        assert_security_headers(what, response.headers());
    }
    // Answers made by the outer layers, not the app: here the body-size limit's.
    let (status, headers) = raw_request(
        &app,
        "POST /posts/new HTTP/1.1\r\nHost: ladder\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000000\r\n\r\n",
    )
    .await;
    assert_eq!(status, 413);
    assert_security_headers("a body over the size limit", &headers);
}

fn assert_security_headers(what: &str, headers: &HeaderMap) {
    let header = |name: header::HeaderName| {
        headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what} has no {name}"))
            .to_string()
    };
    let csp = header(header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.split(';').any(|d| d.trim() == "script-src 'self'"),
        "{what}: {csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(header(header::X_FRAME_OPTIONS), "DENY", "{what}");
    assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{what}");
    assert_eq!(header(header::REFERRER_POLICY), "same-origin", "{what}");
}

async fn health_and_readiness_answer_in_json(t: TestLadder) {
    let app = t.serve().await;
    let visitor = app.client();
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = visitor.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(content_type, "application/json", "{path}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json, serde_json::json!({ "status": status }), "{path}");
    }
}

async fn an_unknown_path_gets_the_not_found_page(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let admin = app.signed_in("admin").await;
    // Unknown paths are not behind any guard, even under /admin.
    for (client, path) in [
        (&app.client(), "/no/such/page"),
        (&app.client(), "/admin/no-such-page"),
        (&admin, "/posts/not-a-number/edit/more"),
    ] {
        let response = client.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("<h1>Not found</h1>"), "{path}: {body}");
        assert!(body.contains("That page does not exist"), "{path}: {body}");
    }
    // A path whose id is not a number names no page either: the 404 page, not
    // a plain-text 400; under /api/ a JSON error.
    for path in [
        "/posts/abc",
        "/posts/99999999999999999999/edit",
        "/admin/groups/x",
        "/promotions/1x",
    ] {
        let response = admin.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("That page does not exist"), "{path}: {body}");
    }
    let response = admin.get("/api/v1/promotions/abc").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}

// ---------------------------------------------------------------------------
// 8. Delegation through the admin console
// ---------------------------------------------------------------------------

async fn a_change_user_holder_is_offered_and_allowed_only_what_they_hold(t: TestLadder) {
    let alice = t.user("alice").await;
    t.join(&alice, &t.group("Writers", WRITER).await).await;
    // The promotion track's approvers must hold what Senior Writers get.
    t.group("Editors", EDITOR).await;
    let senior_writers = t.group("Senior Writers", SENIOR_WRITER).await;
    t.group("Contributors", &["blog.add_post"]).await;
    let sam = t.user("sam").await;
    make_staff(&t, &sam).await;
    t.grant(
        &sam,
        &["auth.view_user", "auth.change_user", "blog.add_post"],
    )
    .await;
    let app = t.serve().await;
    let staff = app.signed_in("sam").await;

    // The user page offers only what sam could grant.
    let page = staff.get("/admin/users/alice").await.text().await.unwrap();
    assert_eq!(
        options(&page, "grant-perm"),
        ["auth.view_user", "blog.add_post"]
    );
    let groups_offered = options(&page, "add-group");
    assert!(
        groups_offered.contains(&"Contributors".to_string()),
        "{groups_offered:?}"
    );
    assert!(
        !groups_offered.contains(&"Senior Writers".to_string()),
        "{groups_offered:?}"
    );

    // Anything else is refused, says why, and changes nothing.
    let refusals = [
        (
            "permissions",
            vec![
                ("permission", "blog.publish_post".to_string()),
                ("action", "grant".into()),
            ],
            "you do not hold blog.publish_post, so you cannot grant it",
        ),
        (
            "permissions",
            vec![
                ("permission", "auth.change_user".to_string()),
                ("action", "grant".into()),
            ],
            "only the superuser may grant auth.change_user",
        ),
        (
            "groups",
            vec![
                ("group_id", senior_writers.group_id.to_string()),
                ("action", "add".into()),
            ],
            "(group \"Senior Writers\" holds it)",
        ),
    ];
    for (what, fields, reason) in refusals {
        let before = t.fingerprint().await;
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = submit(&staff, &format!("/admin/users/alice/{what}"), &fields).await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/admin/users/alice");
        assert_eq!(t.fingerprint().await, before, "{reason}");
        let page = staff.get("/admin/users/alice").await.text().await.unwrap();
        let flash = flash_of(&page).expect("a flash message");
        assert!(flash.starts_with("Not done: "), "{flash}");
        assert!(html_unescape(&flash).contains(reason), "{flash}");
    }
    assert!(!t.has_perm(&alice, "blog.publish_post").await);

    // What is offered is accepted.
    let response = submit(
        &staff,
        "/admin/users/alice/permissions",
        &[("permission", "auth.view_user"), ("action", "grant")],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert!(t.has_perm(&alice, "auth.view_user").await);
    let page = staff.get("/admin/users/alice").await.text().await.unwrap();
    assert_eq!(
        flash_of(&page).as_deref(),
        Some("Granted auth.view_user to alice.")
    );
    assert_eq!(options(&page, "grant-perm"), ["blog.add_post"]);
}

async fn joining_senior_writers_shows_the_publish_button_on_the_next_page(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let draft = post_by(&t, &cast.writer, "Ready to go", false).await;
    let senior_writers = t.group("Senior Writers", SENIOR_WRITER).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let publish_button = format!("action=\"/posts/{draft}/publish\"");
    assert!(
        !writer
            .get("/posts/mine")
            .await
            .text()
            .await
            .unwrap()
            .contains(&publish_button)
    );

    let admin = app.signed_in("admin").await;
    let group_id = senior_writers.group_id.to_string();
    let response = submit(
        &admin,
        "/admin/users/writer/groups",
        &[("group_id", group_id.as_str()), ("action", "add")],
    )
    .await;
    assert_eq!(response.status(), 303);
    let page = admin.get("/admin/users/writer").await.text().await.unwrap();
    assert_eq!(
        flash_of(&page).as_deref(),
        Some("Added writer to Senior Writers.")
    );

    // Her next page load, in the session she already had.
    let mine = writer.get("/posts/mine").await.text().await.unwrap();
    assert!(mine.contains(&publish_button), "{mine}");
    let post = writer
        .get(&format!("/posts/{draft}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(post.contains(&publish_button));
    assert_eq!(
        submit(&writer, &format!("/posts/{draft}/publish"), &[])
            .await
            .status(),
        303
    );
    let mut conn = t.ladder.db.acquire().await.unwrap();
    assert!(
        blog::find(&mut conn, draft)
            .await
            .unwrap()
            .unwrap()
            .is_published()
    );
}

// ---------------------------------------------------------------------------
// 9. Deleting a group
// ---------------------------------------------------------------------------

async fn the_group_delete_page_says_how_many_members_will_lose_access(t: TestLadder) {
    Cast::new(&t).await;
    let crowd = t.group("Crowd", &["blog.view_post"]).await;
    let solo = t.group("Solo", &[]).await;
    let empty = t.group("Empty", &[]).await;
    for name in ["ann", "ben", "cat"] {
        t.join(&t.user(name).await, &crowd).await;
    }
    t.join(&t.user("dan").await, &solo).await;
    let app = t.serve().await;
    let admin = app.signed_in("admin").await;
    let confirm = |group: &Group| format!("/admin/groups/{}/delete", group.group_id);

    for (group, count) in [
        (&crowd, "3 members"),
        (&solo, "1 member"),
        (&empty, "0 members"),
    ] {
        let response = admin.get(&confirm(group)).await;
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        assert!(
            body.contains(&format!("<strong>{count}</strong>")),
            "{}: {body}",
            group.name
        );
    }
    // The count is the current one.
    let path = format!("/admin/groups/{}/members", crowd.group_id);
    let response = submit(&admin, &path, &[("username", "ann"), ("action", "remove")]).await;
    assert_eq!(response.status(), 303);
    let body = admin.get(&confirm(&crowd)).await.text().await.unwrap();
    assert!(body.contains("<strong>2 members</strong>"));
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Posts a form as a browser would, with the session's current CSRF token
/// (from the sign-out form of a signed-in page, or from the sign-in page).
async fn submit(client: &Client, path: &str, fields: &[(&str, &str)]) -> Response {
    let token = session_token(client).await;
    client.post_form(path, &token, fields).await
}

async fn session_token(client: &Client) -> String {
    let page = client.get("/posts/mine").await;
    if page.status() == StatusCode::OK {
        csrf_from(&page.text().await.unwrap()).expect("a signed-in page carries the token")
    } else {
        client.csrf("/login").await
    }
}

fn location(response: &Response) -> &str {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The session id a response sets, if it sets one.
fn session_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("ladder_session="))
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
}

/// The error page's message, for failure output.
fn message_of(body: &str) -> String {
    body.split("<p>")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or("")
        .to_string()
}

/// The value of a form's `name=` input, unescaped.
fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html_unescape(&html[start..end]))
}

/// The texts of a `<select id=...>`'s options.
fn options(html: &str, select_id: &str) -> Vec<String> {
    let start = html
        .find(&format!("<select id=\"{select_id}\""))
        .unwrap_or_else(|| panic!("no select {select_id}"));
    let select = &html[start..start + html[start..].find("</select>").unwrap()];
    select
        .split("<option")
        .skip(1)
        .filter_map(|o| {
            Some(html_unescape(
                o.split_once('>')?.1.split("</option>").next()?,
            ))
        })
        .collect()
}

/// The first flash message on a page.
fn flash_of(html: &str) -> Option<String> {
    let start = html.find("class=\"flash flash-")?;
    let text = html[start..].split_once('>')?.1;
    Some(text.split("</p>").next()?.to_string())
}

/// The first link whose target starts with `prefix`, unescaped.
fn href_to(html: &str, prefix: &str) -> Option<String> {
    html.split("href=\"")
        .skip(1)
        .map(|rest| html_unescape(rest.split('"').next().unwrap_or("")))
        .find(|href| href.starts_with(prefix))
}

fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// Sends `head` (a request with no body sent) over a bare TCP connection and
/// reads the answer's status and headers: for requests reqwest will not make.
async fn raw_request(app: &TestApp, head: &str) -> (u16, HeaderMap) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).await.unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok());
    let mut headers = HeaderMap::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').expect("a header line");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    (
        status.unwrap_or_else(|| panic!("no status in {text:?}")),
        headers,
    )
}

/// A browser-like client whose requests come from `ip` (another loopback address).
fn client_from(app: &TestApp, ip: IpAddr) -> Client {
    Client {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip)
            .build()
            .unwrap(),
        base: app.base.clone(),
    }
}

async fn post_by(t: &TestLadder, author: &User, title: &str, published: bool) -> i64 {
    let mut tx = t.ladder.db.begin().await.unwrap();
    let draft = Draft::parse(title, "Some words.").unwrap();
    let post_id = blog::create(&mut tx, author.user_id, &draft, t.now())
        .await
        .unwrap();
    if published {
        assert!(blog::publish(&mut tx, post_id, t.now()).await.unwrap());
    }
    tx.commit().await.unwrap();
    post_id
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

/// Staff, set by the superuser's rule through the system actor.
async fn make_staff(t: &TestLadder, user: &User) {
    let mut tx = t.ladder.db.begin().await.unwrap();
    users::set_staff(&mut tx, &t.system(), user, true, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn set_active(t: &TestLadder, user: &User, active: bool) {
    let current = t.reload(user).await;
    let mut tx = t.ladder.db.begin().await.unwrap();
    users::set_active(&mut tx, &t.system(), &current, active, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// A user with a display name, and the factories' password "<name>-password".
async fn user_with_display_name(t: &TestLadder, name: &str, display_name: &str) -> User {
    let new = NewUser {
        username: Username::parse(name).unwrap(),
        email: Email::parse("mallory@example.com").unwrap(),
        display_name: display_name.to_string(),
        password: Some(
            NewPassword::parse(&format!("{name}-password"), name)
                .unwrap()
                .hash()
                .await
                .unwrap(),
        ),
        is_staff: false,
    };
    let mut tx = t.ladder.db.begin().await.unwrap();
    let user = users::create(&mut tx, &t.system(), new, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    user
}
