//! The role matrix for the JSON API: every operation in the OpenAPI document
//! × anonymous, a token of each demo role, a staff member's, a service
//! account's token and a narrowed token. Each operation's rule is read from
//! its `x-ladder-rule` (the rule table in `src/api/mod.rs` writes it), and
//! each caller must get exactly what that rule says: anonymous 401; a
//! non-staff caller on a staff rule 403 "staff only"; a caller lacking the
//! rule's permission 403 naming it; a caller holding it past the guard.
//! Nobody ever gets a 5xx, whatever the handler then says about the sample
//! input (`fill` and `sample_body` give each path real fixtures).

use ladder::{
    accounts::{User, tokens::CreateToken, users},
    permissions::PermissionName,
    seed::demo,
};
use serde_json::{Value, json};

use crate::{helpers::TestLadder, web_helpers::make_staff};

on_both_backends!(every_api_operation_answers_each_caller_as_its_rule_says);

/// A caller: a name, the token (None: anonymous) and what it holds as the
/// guard sees it (the token's user's permissions, narrowed by its scope).
struct Caller {
    name: &'static str,
    token: Option<String>,
    /// Active staff (or the superuser), as staff rules ask.
    staff: bool,
    holds: Box<dyn Fn(&str) -> bool>,
}

async fn caller(t: &TestLadder, name: &'static str, user: &User, scope: Option<&[&str]>) -> Caller {
    let scope: Option<Vec<String>> = scope.map(|s| s.iter().map(|p| p.to_string()).collect());
    let token = t
        .ladder
        .db
        .run(CreateToken {
            actor: t.system(),
            owner: user.username.clone(),
            name: format!("matrix-{name}"),
            expires_at: None,
            scope: scope.as_ref().map(|s| {
                s.iter()
                    .map(|p| PermissionName::parse(p).unwrap())
                    .collect()
            }),
            now: t.now(),
        })
        .await
        .unwrap()
        .secret;
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let held = ladder::permissions::effective::load(&mut conn, user.user_id)
        .await
        .unwrap();
    let held = match &scope {
        Some(scope) => held.narrowed(scope),
        None => held,
    };
    Caller {
        name,
        token: Some(token),
        staff: user.is_active && (user.is_staff || user.is_superuser),
        holds: Box::new(move |perm| held.has_perm(perm)),
    }
}

/// The throwaway groups a filled path names by id.
struct Groups {
    /// Changed by every operation on a group.
    matrix: i64,
    /// Only deleted.
    doomed: i64,
}

/// Fills a path template with throwaway fixtures, so that a holder's
/// change (a delete, say) touches nothing another caller relies on.
/// `{request_id}` is a real pending request (a writer's, on the demo track).
fn fill(method: &str, template: &str, groups: &Groups, request_id: i64) -> String {
    let group = match (method, template) {
        ("delete", "/api/v1/groups/{group_id}") => groups.doomed,
        _ => groups.matrix,
    };
    template
        .split('/')
        .map(|segment| match segment {
            "{username}" | "{user}" => "matrix-target".to_string(),
            "{group}" | "{group_name}" => "Matrix%20Group".to_string(),
            "{group_id}" => group.to_string(),
            "{perm}" | "{permission}" => "blog.add_post".to_string(),
            "{request_id}" => request_id.to_string(),
            s if s.starts_with('{') => "1".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The query string an operation needs to get past its parsing.
fn sample_query(template: &str) -> &'static str {
    match template {
        "/api/v1/check" => "?user=alice&perm=blog.add_post",
        "/api/v1/promotions" => "?state=pending&track=senior-writer",
        "/api/v1/audit" => "?from=2000-01-01T00:00:00Z",
        _ => "",
    }
}

/// The body a write takes, so that a holder's call reaches the domain (the
/// first holder's create succeeds, later ones conflict).
fn sample_body(method: &str, template: &str) -> Value {
    match (method, template) {
        ("post", "/api/v1/promotions") => {
            json!({ "track": "senior-writer", "justification": "From the matrix." })
        }
        ("post", "/api/v1/promotions/{request_id}/reject") => json!({ "reason": "Not yet." }),
        ("post", "/api/v1/check") => {
            json!({ "checks": [{ "user": "alice", "perm": "blog.add_post" }] })
        }
        ("post", "/api/v1/users") => {
            json!({"username": "matrix-made", "email": "matrix-made@example.com"})
        }
        ("patch", "/api/v1/users/{username}") => json!({"display_name": "Matrix Target"}),
        ("put", "/api/v1/users/{username}/password") => json!({"password": "a-matrix-passphrase"}),
        ("post", "/api/v1/groups") => json!({"name": "Matrix Made"}),
        ("patch", "/api/v1/groups/{group_id}") => json!({"name": "Matrix Group"}),
        ("put", "/api/v1/groups/{group_id}/permissions") => {
            json!({"permissions": ["blog.add_post"]})
        }
        _ => json!({}),
    }
}

async fn get(t: &TestLadder, name: &str) -> User {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    users::get_by_username(&mut conn, name).await.unwrap()
}

/// The permissions a rule as written by `Rule`'s Debug names.
fn rule_perms(rule: &str) -> Vec<String> {
    rule.split('"')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

async fn every_api_operation_answers_each_caller_as_its_rule_says(t: TestLadder) {
    // Each token asks well under its rate limit (default 2,000 at once).
    demo::seed(&t.ladder, Some("demo-password-1"))
        .await
        .unwrap();
    t.user("matrix-target").await;
    let groups = Groups {
        matrix: t.group("Matrix Group", &[]).await.group_id,
        doomed: t.group("Matrix Doomed", &[]).await.group_id,
    };
    let (admin, alice, erin) = (
        get(&t, "admin").await,
        get(&t, "alice").await,
        get(&t, "erin").await,
    );
    let bob = get(&t, "bob").await;
    let senior = t.group("Senior Writers", &[]).await;
    t.join(&bob, &senior).await;
    let service = t.user("matrix-service").await;
    t.grant(&service, &["auth.view_user"]).await;
    let staff = t.user("matrix-staff").await;
    make_staff(&t, &staff).await;
    let staff = t.reload(&staff).await;
    // A pending request for the decision routes (a writer's, whom erin approves).
    let asker = t.user("matrix-asker").await;
    t.join(&asker, &t.group("Writers", &[]).await).await;
    let actor = ladder::actor::Actor::user(asker.clone(), ladder::actor::Source::Web);
    let request =
        crate::helpers::workflow::submit(&t.ladder, &actor, &asker, "senior-writer", "Ready.")
            .await
            .unwrap();
    let callers = vec![
        Caller {
            name: "anonymous",
            token: None,
            staff: false,
            holds: Box::new(|_| false),
        },
        caller(&t, "writer", &alice, None).await,
        caller(&t, "senior", &bob, None).await,
        caller(&t, "editor", &erin, None).await,
        caller(&t, "admin", &admin, None).await,
        caller(&t, "staff", &staff, None).await,
        caller(&t, "service", &service, None).await,
        caller(&t, "narrowed", &erin, Some(&["blog.add_post"])).await,
    ];
    let app = t.serve().await;
    let document: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut wrong = Vec::new();
    let mut asked = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(rule) = operation["x-ladder-rule"].as_str() else {
                continue;
            };
            let path = fill(method, template, &groups, request.request_id);
            let query = sample_query(template);
            for c in &callers {
                let mut request = http.request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{}{path}{query}", app.base),
                );
                if let Some(token) = &c.token {
                    request = request.bearer_auth(token);
                }
                if method != "get" && method != "delete" {
                    request = request.json(&sample_body(method, template));
                }
                let response = request.send().await.unwrap();
                asked += 1;
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                let missing = rule_perms(rule).into_iter().find(|p| !(c.holds)(p));
                let guard_refusal = |p: &str| {
                    body.contains(&format!("needs the permission {p}, which you do not hold"))
                };
                let staff_refusal = body.contains("This endpoint is for staff only.");
                let staff_rule = rule.starts_with("Staff");
                let verdict = match (&c.token, rule, missing) {
                    _ if status >= 500 => Err(format!("a server error: {body}")),
                    (_, "Public", _) if status == 401 => Err("401 on a public route".into()),
                    (_, "Public", _) => Ok(()),
                    (None, _, _) if status == 401 => Ok(()),
                    (None, _, _) => Err(format!("anonymous got {status}")),
                    (Some(_), _, _) if staff_rule && !c.staff => {
                        if status == 403 && staff_refusal {
                            Ok(())
                        } else {
                            Err(format!("not staff but got {status}: {body}"))
                        }
                    }
                    (Some(_), _, _) if staff_refusal => Err("staff, but refused as not".into()),
                    (Some(_), _, Some(p)) if status == 403 && guard_refusal(&p) => Ok(()),
                    (Some(_), _, Some(p)) => Err(format!("lacks {p} but got {status}: {body}")),
                    (Some(_), _, None) if status == 401 => Err("holder got 401".into()),
                    (Some(_), _, None) => {
                        match rule_perms(rule).iter().find(|p| guard_refusal(p)) {
                            Some(p) => Err(format!("holds {p} but the guard refused")),
                            None => Ok(()),
                        }
                    }
                };
                if let Err(why) = verdict {
                    wrong.push(format!(
                        "{:>9}  {} {path} ({rule}): {why}",
                        c.name,
                        method.to_uppercase()
                    ));
                }
            }
        }
    }
    assert!(
        asked >= 12 * callers.len(),
        "read only {asked} requests from the document"
    );
    assert!(
        wrong.is_empty(),
        "{} answers differ from the rules:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
