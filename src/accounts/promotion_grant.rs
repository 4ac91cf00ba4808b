//! The membership a promotion grants: authorised by the delegation rule for a
//! promotion (the actor holds every permission of the group; no
//! auth.change_user), written and audited like any other membership.

use super::{
    User,
    groups::{Group, Membership, perms_of, record_membership, write_membership},
};
use crate::{
    Result,
    actor::Actor,
    binds,
    db::Sql,
    permissions::{self, delegation::Change},
};

/// Adds or removes a membership on behalf of a promotion request. The actor
/// (the deciding approver, or Ladder's scheduler) needs no auth.change_user but
/// must hold every permission of the group. Returns false when nothing changed.
pub async fn change_membership_for_promotion(
    sql: &mut dyn Sql,
    actor: &Actor,
    group: &Group,
    user: &User,
    add: bool,
    request_id: i64,
    now: i64,
) -> Result<bool> {
    let membership = Membership {
        group,
        user,
        add,
        request_id: Some(request_id),
    };
    write_membership(sql, actor, membership, now).await
}

/// The first half of a promotion's grant, read before its write transaction
/// (so that, on SQLite, the write turn lasts only as long as the writes): the
/// delegation rule, that `actor` holds every permission of `group`.
pub async fn authorize_promotion(sql: &mut dyn Sql, actor: &Actor, group: &Group) -> Result<()> {
    let group_perms = perms_of(sql, group).await?;
    let actor_perms = actor.permissions(sql).await?;
    permissions::delegation::authorize(
        &actor_perms,
        &Change::PromotionGrant {
            group: &group.name,
            group_perms: &group_perms,
        },
    )
}

/// The second half, in the write transaction: adds `user` to `group` for
/// promotion `request_id` only while they are still active, in the group `from_group_id`
/// and not yet in `group`, all tested by the insert itself. Returns false,
/// having written nothing, when they no longer are. Those three conditions
/// are the eligibility rule of `promotions::policy::eligibility`, enforced
/// again here at write time so that a change made since the check cannot
/// slip through; a change to the rule changes both.
pub async fn grant_promotion(
    sql: &mut dyn Sql,
    actor: &Actor,
    group: &Group,
    from_group_id: i64,
    user: &User,
    request_id: i64,
    now: i64,
) -> Result<bool> {
    let added = sql
        .execute(
            "insert into user_groups (user_id, group_id, created_at) \
             select u.user_id, $2, $3 from users u where u.user_id = $1 and u.is_active = $4 \
                and exists (select 1 from user_groups f where f.user_id = u.user_id and f.group_id = $5) \
                and not exists (select 1 from user_groups t where t.user_id = u.user_id and t.group_id = $2)",
            binds![user.user_id, group.group_id, now, true, from_group_id],
        )
        .await?;
    if added == 0 {
        return Ok(false);
    }
    permissions::bump_user(sql, user.user_id).await?;
    let m = Membership {
        group,
        user,
        add: true,
        request_id: Some(request_id),
    };
    record_membership(sql, actor, &m, now).await?;
    Ok(true)
}
