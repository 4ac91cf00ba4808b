//! `Idempotency-Key` on the users and groups the API creates: a retry with
//! the same key and body answers the first answer again and creates nothing;
//! another body under the key is a 422. (The mechanism itself is tested in
//! `api_idempotency`.)

use serde_json::json;

use crate::{api_caller::Api, api_users::Callers, helpers::TestLadder};

on_both_backends!(a_retried_create_with_its_key_answers_the_first_answer_and_creates_once);

async fn a_retried_create_with_its_key_answers_the_first_answer_and_creates_once(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    let api: &Api = &c.as_root;
    for (path, body, other, table) in [
        (
            "/api/v1/users",
            json!({"username": "newbie", "email": "newbie@example.com"}),
            json!({"username": "other", "email": "other@example.com"}),
            "users",
        ),
        (
            "/api/v1/groups",
            json!({"name": "Reviewers"}),
            json!({"name": "Others"}),
            "groups",
        ),
    ] {
        let rows = t.count(table).await;
        let key = format!("create-{table}");
        let (first, replayed) = api.post_keyed(path, body.clone(), &key).await;
        assert!(!replayed);
        first.ok(201);
        let (again, replayed) = api.post_keyed(path, body, &key).await;
        assert!(replayed, "{path}: the retry was not a replay");
        // Status and body, as documented (a replay does not repeat Location).
        assert_eq!((again.status, &again.body), (201, &first.body));
        assert_eq!(t.count(table).await, rows + 1, "{path} created twice");
        let (refused, _) = api.post_keyed(path, other, &key).await;
        refused.error(422, Some("Idempotency-Key"));
        assert_eq!(t.count(table).await, rows + 1);
    }
}
