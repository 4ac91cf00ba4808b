//! "Every change is audited": each kind of change writes exactly one event
//! with the right actor, action, target, before and after, in the same
//! transaction, so a change that rolls back writes none. On both backends.

use ladder::{
    accounts::{Email, GroupName, NewPassword, User, Username, groups, users},
    actor::{Actor, Source},
    audit::AuditEvent,
    db::Sql,
    permissions::grants::{self, Grantee},
    promotions::group_changes,
};
use serde_json::{Value, json};

use crate::helpers::{TestLadder, assert_unchanged, names};

on_both_backends!(every_kind_of_change_writes_one_event_and_a_rolled_back_one_writes_none);

/// The kinds of change the README promises to audit, in an order in which
/// each can follow the one before.
#[derive(Debug, Clone, Copy)]
enum Kind {
    UserCreate,
    Deactivate,
    Activate,
    SetStaff,
    SetPassword,
    GroupCreate,
    GroupRename,
    GrantGroup,
    RevokeGroup,
    MemberAdd,
    MemberRemove,
    GrantUser,
    RevokeUser,
    GroupDelete,
    TransferSuperuser,
}

const ALL: [Kind; 15] = [
    Kind::UserCreate,
    Kind::Deactivate,
    Kind::Activate,
    Kind::SetStaff,
    Kind::SetPassword,
    Kind::GroupCreate,
    Kind::GroupRename,
    Kind::GrantGroup,
    Kind::RevokeGroup,
    Kind::MemberAdd,
    Kind::MemberRemove,
    Kind::GrantUser,
    Kind::RevokeUser,
    Kind::GroupDelete,
    Kind::TransferSuperuser,
];

/// What one event must say: action, target type and name, before, after.
struct Expected {
    action: &'static str,
    target_type: &'static str,
    target_name: &'static str,
    before: Option<Value>,
    after: Option<Value>,
}

async fn user_named(t: &TestLadder, name: &str) -> User {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    users::get_by_username(&mut conn, name).await.unwrap()
}

/// Makes the change in `tx` and says what its event must be.
async fn apply(
    t: &TestLadder,
    tx: &mut crate::helpers::TestTx,
    actor: &Actor,
    kind: Kind,
) -> Expected {
    let now = t.now();
    let carol = || user_named(t, "carol");
    let group = |name: &'static str| async move {
        let mut conn = t.ladder.db.acquire().await.unwrap();
        groups::get_by_name(&mut conn, name).await.unwrap()
    };
    let expected = |action, target_type, target_name, before, after| Expected {
        action,
        target_type,
        target_name,
        before,
        after,
    };
    match kind {
        Kind::UserCreate => {
            let new = users::NewUser {
                username: Username::parse("carol").unwrap(),
                email: Email::parse("carol@example.com").unwrap(),
                display_name: "Carol".into(),
                password: Some(
                    NewPassword::parse("carol-password", "carol")
                        .unwrap()
                        .hash_now()
                        .unwrap(),
                ),
                is_staff: false,
                is_service: false,
            };
            users::create(tx, actor, new, now).await.unwrap();
            let after = json!({
                "username": "carol", "email": "carol@example.com", "display_name": "Carol",
                "is_active": true, "is_staff": false, "is_superuser": false,
            });
            expected("user.create", "user", "carol", None, Some(after))
        }
        Kind::Deactivate | Kind::Activate => {
            let active = matches!(kind, Kind::Activate);
            let updated = users::set_active(tx, actor, &carol().await, active, now)
                .await
                .unwrap();
            assert_eq!(updated.is_active, active);
            let action = if active {
                "user.activate"
            } else {
                "user.deactivate"
            };
            expected(
                action,
                "user",
                "carol",
                Some(json!({ "is_active": !active })),
                Some(json!({ "is_active": active })),
            )
        }
        Kind::SetStaff => {
            users::set_staff(tx, actor, &carol().await, true, now)
                .await
                .unwrap();
            expected(
                "user.set_staff",
                "user",
                "carol",
                Some(json!({ "is_staff": false })),
                Some(json!({ "is_staff": true })),
            )
        }
        Kind::SetPassword => {
            let pw = NewPassword::parse("a-new-carol-password", "carol")
                .unwrap()
                .hash_now()
                .unwrap();
            users::set_password(tx, actor, &carol().await, pw, now)
                .await
                .unwrap();
            // Neither the password nor its hash reaches the log.
            expected("user.set_password", "user", "carol", None, None)
        }
        Kind::GroupCreate => {
            groups::create(tx, actor, &GroupName::parse("Reviewers").unwrap(), now)
                .await
                .unwrap();
            expected(
                "group.create",
                "group",
                "Reviewers",
                None,
                Some(json!({ "name": "Reviewers" })),
            )
        }
        Kind::GroupRename => {
            let g = group("Reviewers").await;
            group_changes::rename_group(tx, actor, &g, &GroupName::parse("Critics").unwrap(), now)
                .await
                .unwrap();
            expected(
                "group.rename",
                "group",
                "Critics",
                Some(json!({ "name": "Reviewers" })),
                Some(json!({ "name": "Critics" })),
            )
        }
        Kind::GrantGroup | Kind::RevokeGroup => {
            let g = group("Critics").await;
            let grant = matches!(kind, Kind::GrantGroup);
            let perms = names(&["blog.view_post"]);
            let changed = if grant {
                grants::grant(tx, actor, Grantee::Group(&g), &perms, now).await
            } else {
                grants::revoke(tx, actor, Grantee::Group(&g), &perms, now).await
            }
            .unwrap();
            assert_eq!(changed, perms);
            permission_event(grant, "group", "Critics")
        }
        Kind::MemberAdd | Kind::MemberRemove => {
            let g = group("Critics").await;
            let add = matches!(kind, Kind::MemberAdd);
            let changed = if add {
                groups::add_member(tx, actor, &g, &carol().await, now).await
            } else {
                groups::remove_member(tx, actor, &g, &carol().await, now).await
            }
            .unwrap();
            assert!(changed);
            let action = if add {
                "group.add_user"
            } else {
                "group.remove_user"
            };
            expected(
                action,
                "user",
                "carol",
                Some(json!({ "group": "Critics", "member": !add })),
                Some(json!({ "group": "Critics", "member": add })),
            )
        }
        Kind::GrantUser | Kind::RevokeUser => {
            let grant = matches!(kind, Kind::GrantUser);
            let perms = names(&["blog.view_post"]);
            let carol = carol().await;
            let changed = if grant {
                grants::grant(tx, actor, Grantee::User(&carol), &perms, now).await
            } else {
                grants::revoke(tx, actor, Grantee::User(&carol), &perms, now).await
            }
            .unwrap();
            assert_eq!(changed, perms);
            permission_event(grant, "user", "carol")
        }
        Kind::GroupDelete => {
            let g = group("Critics").await;
            // A member and a permission, so the event has something to keep.
            let carol = carol().await;
            groups::add_member(tx, &t.system(), &g, &carol, now)
                .await
                .unwrap();
            grants::grant(
                tx,
                &t.system(),
                Grantee::Group(&g),
                &names(&["blog.view_post"]),
                now,
            )
            .await
            .unwrap();
            let mark = max_event_id_in(tx).await;
            group_changes::delete_group(tx, actor, &g, now)
                .await
                .unwrap();
            // Only the deletion's own event is counted.
            let events: i64 =
                sqlx::query_scalar("select count(*) from audit_events where audit_event_id > $1")
                    .bind(mark)
                    .fetch_one(&mut **tx)
                    .await
                    .unwrap();
            assert_eq!(events, 1, "group.delete writes one event");
            expected(
                "group.delete",
                "group",
                "Critics",
                Some(json!({
                    "name": "Critics", "members": ["carol"], "permissions": ["blog.view_post"],
                })),
                None,
            )
        }
        Kind::TransferSuperuser => {
            users::transfer_superuser(tx, actor, &carol().await, now)
                .await
                .unwrap();
            expected(
                "user.transfer_superuser",
                "user",
                "carol",
                Some(json!({ "superuser": "admin" })),
                Some(json!({ "superuser": "carol" })),
            )
        }
    }
}

fn permission_event(grant: bool, target_type: &'static str, target_name: &'static str) -> Expected {
    let action = if grant {
        "permission.grant"
    } else {
        "permission.revoke"
    };
    Expected {
        action,
        target_type,
        target_name,
        before: Some(json!({ "permissions": ["blog.view_post"], "held": !grant })),
        after: Some(json!({ "permissions": ["blog.view_post"], "held": grant })),
    }
}

async fn max_event_id_in(tx: &mut crate::helpers::TestTx) -> i64 {
    sqlx::query_scalar("select coalesce(max(audit_event_id), 0) from audit_events")
        .fetch_one(&mut **tx)
        .await
        .unwrap()
}

async fn events_after(t: &TestLadder, id: i64) -> Vec<AuditEvent> {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let sql: &mut dyn Sql = &mut conn;
    sql.fetch_all(
        "select audit_event_id, actor_id, actor_name, action, target_type, target_id, target_name, \
         before_state, after_state, source, token_name, created_at from audit_events \
         where audit_event_id > $1 order by audit_event_id",
        ladder::binds![id],
    )
    .await
    .unwrap()
}

fn parse(state: &Option<String>) -> Option<Value> {
    state
        .as_deref()
        .map(|s| serde_json::from_str(s).expect("audit state is JSON"))
}

async fn every_kind_of_change_writes_one_event_and_a_rolled_back_one_writes_none(t: TestLadder) {
    let admin = t.superuser("admin").await;
    let actor = Actor::user(admin.clone(), Source::Web);
    for kind in ALL {
        // Rolled back: no event, and no other trace either.
        let before = t.fingerprint().await;
        let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
        let mark = max_event_id_in(&mut tx).await;
        apply(&t, &mut tx, &actor, kind).await;
        assert!(
            max_event_id_in(&mut tx).await > mark,
            "{kind:?} wrote its event in the change's own transaction"
        );
        tx.rollback().await.unwrap();
        assert_unchanged(
            &before,
            &t.fingerprint().await,
            &format!("{kind:?} rolled back"),
        );

        // Committed: exactly one event, saying who did what to whom.
        let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
        let mark = max_event_id_in(&mut tx).await;
        let started = t.now();
        let want = apply(&t, &mut tx, &actor, kind).await;
        tx.commit().await.unwrap();
        let events = events_after(&t, mark).await;
        let events: Vec<&AuditEvent> = match kind {
            // The setup inside the transaction (a member, a permission) writes its own events, by the system.
            Kind::GroupDelete => events.iter().filter(|e| e.actor_name == "admin").collect(),
            _ => events.iter().collect(),
        };
        assert_eq!(events.len(), 1, "{kind:?}: {events:#?}");
        let e = events[0];
        assert_eq!(e.action, want.action, "{kind:?}");
        assert_eq!(e.actor_id, Some(admin.user_id), "{kind:?}");
        assert_eq!(e.actor_name, "admin", "{kind:?}");
        assert_eq!(e.source, "web", "{kind:?}");
        assert_eq!(e.target_type, want.target_type, "{kind:?}");
        assert_eq!(e.target_name, want.target_name, "{kind:?}");
        let target_id = match want.target_type {
            "user" => user_named(&t, want.target_name).await.user_id,
            _ => {
                let row: Option<i64> =
                    sqlx::query_scalar("select group_id from groups where name = $1")
                        .bind(want.target_name)
                        .fetch_optional(t.ladder.db.pool())
                        .await
                        .unwrap();
                // A deleted group is gone; its id stays on the event.
                row.unwrap_or(e.target_id.unwrap())
            }
        };
        assert_eq!(e.target_id, Some(target_id), "{kind:?}");
        assert_eq!(parse(&e.before_state), want.before, "{kind:?} before");
        assert_eq!(parse(&e.after_state), want.after, "{kind:?} after");
        assert!((started..=t.now()).contains(&e.created_at), "{kind:?} time");
    }
    // The password hash never reaches the log.
    let carol = user_named(&t, "carol").await;
    let hash = carol.password_hash.clone().unwrap();
    let leaked: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where before_state like $1 or after_state like $1",
    )
    .bind(format!("%{hash}%"))
    .fetch_one(t.ladder.db.pool())
    .await
    .unwrap();
    assert_eq!(leaked, 0);
}
