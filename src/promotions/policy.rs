//! Who may ask, who may decide and who may see. Each rule is one function
//! here; the pages, the API and the transitions all call it, and a page that
//! offers a button asks the same function in a dry run.

use super::{
    Request, State, Track,
    track::{self, Role},
};
use crate::{
    Error, Ladder, Result,
    accounts::{Group, User, groups, promotion_grant, users},
    actor::Actor,
    binds,
    db::Sql,
    permissions::catalog,
};

/// Why someone may not be promoted on a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    Inactive,
    /// Not a member of the track's from group.
    NotInFrom,
    /// Already a member of the track's to group.
    AlreadyInTo,
}

/// The eligibility rule: who may be promoted on `track` is an active member
/// of its from group who is not yet in its to group (on a track that is not
/// bound, nobody is in any of its groups). Asking (`ineligibility`) and
/// deciding (`still_eligible`) both go through it, and so does the write:
/// `accounts::promotion_grant::grant_promotion` inserts the membership only where the
/// same three conditions hold in SQL, which re-checks this rule at write
/// time, race-proof, in the approval's transaction.
pub async fn eligibility(
    sql: &mut dyn Sql,
    track: &Track,
    user: &User,
) -> Result<Result<(), Ineligible>> {
    if !user.is_active {
        return Ok(Err(Ineligible::Inactive));
    }
    if !track::in_role(sql, track, Role::From, user.user_id).await? {
        return Ok(Err(Ineligible::NotInFrom));
    }
    if track::in_role(sql, track, Role::To, user.user_id).await? {
        return Ok(Err(Ineligible::AlreadyInTo));
    }
    Ok(Ok(()))
}

/// Why someone may not ask for a track right now, told to them; None if they may.
pub async fn ineligibility(
    sql: &mut dyn Sql,
    track: &Track,
    user: &User,
) -> Result<Option<String>> {
    // A closed track is news only to someone who could otherwise ask.
    if user.is_active
        && let Err(closed) = track.bound()
    {
        return Ok(Some(closed.to_string()));
    }
    let why = match eligibility(sql, track, user).await? {
        Err(Ineligible::Inactive) => "The account is inactive.".to_string(),
        Err(Ineligible::NotInFrom) => {
            format!("Only members of {} can ask for this.", track.from_group)
        }
        Err(Ineligible::AlreadyInTo) => format!("Already a member of {}.", track.to_group),
        Ok(()) => match open_request(sql, track, user).await? {
            Some(id) => format!("There is already an open request (#{id}) on this track."),
            None => return Ok(None),
        },
    };
    Ok(Some(why))
}

/// The requester's open request on `track`, if any: one at a time.
async fn open_request(sql: &mut dyn Sql, track: &Track, user: &User) -> Result<Option<i64>> {
    sql.fetch_i64(
        "select request_id from promotion_requests where requester_id = $1 and track = $2 and state = 'pending'",
        binds![user.user_id, &track.name],
    )
    .await
}

/// Re-checks, at decision time, that the requester may still be promoted;
/// the refusal is told to the decider.
pub async fn still_eligible(sql: &mut dyn Sql, track: &Track, request: &Request) -> Result<User> {
    let requester = users::find_by_id(sql, request.requester_id)
        .await?
        .ok_or_else(|| Error::NotFound("the requester".into()))?;
    let name = &requester.username;
    match eligibility(sql, track, &requester).await? {
        Ok(()) => Ok(requester),
        Err(Ineligible::Inactive) => Err(Error::Conflict(format!(
            "{name} is no longer active, so this cannot be approved."
        ))),
        Err(Ineligible::NotInFrom) => Err(Error::Conflict(format!(
            "{name} is no longer in {}, so this cannot be approved.",
            track.from_group
        ))),
        Err(Ineligible::AlreadyInTo) => Err(Error::Conflict(format!(
            "{name} is already in {}.",
            track.to_group
        ))),
    }
}

/// Everyone in the track's approver group (the group it is bound to, by id),
/// active or not, by username; nobody while the track is refused.
pub(super) async fn approver_group(sql: &mut dyn Sql, track: &Track) -> Result<Vec<User>> {
    let Some(ids) = track.groups else {
        return Ok(vec![]);
    };
    sql.fetch_all(
        "select u.user_id, u.username, u.email, u.display_name, u.password_hash, u.is_active, \
                u.is_staff, u.is_superuser, u.is_service, u.last_login, u.created_at \
           from promotion_track_groups b \
           join user_groups ug on ug.group_id = b.group_id \
           join users u on u.user_id = ug.user_id \
          where b.track = $1 and b.role = $2 and b.group_id = $3 order by u.username_key",
        binds![&track.name, Role::Approver.as_str(), ids.approver],
    )
    .await
}

/// Who of `members` gets a track's emails: the active ones with an email, except `except`.
pub(super) fn mailable(members: Vec<User>, except: Option<i64>) -> Vec<User> {
    members
        .into_iter()
        .filter(|u| u.is_active && !u.email.is_empty() && Some(u.user_id) != except)
        .collect()
}

/// Active members of the approver group who have an email, except `except`.
pub async fn approvers(sql: &mut dyn Sql, track: &Track, except: Option<i64>) -> Result<Vec<User>> {
    Ok(mailable(approver_group(sql, track).await?, except))
}

/// Whether `user` decides requests on `track`: an active member of its approver group, or the superuser.
pub async fn is_approver(sql: &mut dyn Sql, track: &Track, user: &User) -> Result<bool> {
    if !user.is_active || user.is_superuser {
        return Ok(decides(user, false));
    }
    let member = track::in_role(sql, track, Role::Approver, user.user_id).await?;
    Ok(decides(user, member))
}

/// The rule behind `is_approver`, given whether `user` is in the approver group.
pub(super) fn decides(user: &User, in_approver_group: bool) -> bool {
    user.is_active && (user.is_superuser || in_approver_group)
}

/// The request, if `user` may see it: its requester and the track's approvers
/// may; to anyone else it does not exist (404, not 403, so ids reveal nothing).
pub async fn visible_to(
    ladder: &Ladder,
    sql: &mut dyn Sql,
    user: &User,
    request_id: i64,
) -> Result<Request> {
    let hidden = || Error::NotFound(format!("promotion request {request_id}"));
    let request = super::find(sql, request_id).await?.ok_or_else(hidden)?;
    let track = ladder.track(&request.track)?;
    if request.requester_id == user.user_id || is_approver(sql, track, user).await? {
        Ok(request)
    } else {
        Err(hidden())
    }
}

/// Narrows a list of requests to what `user` may see: the requests on the
/// tracks they approve, or, when they approve none or ask for `mine` only,
/// their own. The list form of `visible_to`; the filter's own conditions
/// still apply on top (a requester filter naming someone else then finds nothing).
pub async fn visible_list(
    ladder: &Ladder,
    sql: &mut dyn Sql,
    user: &User,
    mine: bool,
    filter: &mut super::RequestFilter,
) -> Result<()> {
    let tracks = if mine {
        vec![]
    } else {
        approved_tracks(ladder, sql, user).await?
    };
    if !tracks.is_empty() {
        filter.tracks = Some(tracks);
        return Ok(());
    }
    let own = crate::accounts::username_key(&user.username);
    match &filter.requester {
        Some(other) if crate::accounts::username_key(other.trim()) != own => {
            // No track at all: the list is empty.
            filter.tracks = Some(vec![]);
        }
        _ => filter.requester = Some(user.username.clone()),
    }
    Ok(())
}

/// The tracks `user` approves.
pub async fn approved_tracks(
    ladder: &Ladder,
    sql: &mut dyn Sql,
    user: &User,
) -> Result<Vec<String>> {
    let mut tracks = Vec::new();
    for track in ladder.tracks.iter() {
        if is_approver(sql, track, user).await? {
            tracks.push(track.name.clone());
        }
    }
    Ok(tracks)
}

/// "Already decided": the request is no longer pending.
pub(super) fn already(request: &Request) -> Error {
    let by = request
        .decided_by
        .as_deref()
        .map(|d| format!(" by {d}"))
        .unwrap_or_default();
    Error::Conflict(format!(
        "Request #{} is already {}{by}.",
        request.request_id,
        request.state.as_str()
    ))
}

/// Refuses a decider who is the requester (403) or who does not approve the
/// track (404: to them the request does not exist, as in `visible_to`).
fn check_decider(request: &Request, decider: &User, approves: bool) -> Result<()> {
    if decider.user_id == request.requester_id {
        return Err(Error::Forbidden(
            "You cannot decide your own request.".into(),
        ));
    }
    if !approves {
        return Err(Error::NotFound(format!(
            "promotion request {}",
            request.request_id
        )));
    }
    Ok(())
}

/// What an API token narrowed with `--perm` may decide: a request whose
/// approval would grant nothing outside the token's scope, so every
/// permission of the track's to group must be named in it. A rejection asks
/// the same (a token that may not approve on a track may not reject there
/// either). Tokens without a scope, the console and the CLI are not asked:
/// the approver's own rights apply to them. 403 naming every missing
/// permission.
async fn check_token_scope(sql: &mut dyn Sql, track: &Track, actor: &Actor) -> Result<()> {
    let Some(token) = &actor.token else {
        return Ok(());
    };
    let Some(scope) = &token.scope else {
        return Ok(());
    };
    let missing: Vec<String> = catalog::of_group(sql, track.bound()?.to)
        .await?
        .iter()
        .map(|p| p.name().to_string())
        .filter(|name| !scope.contains(name))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Forbidden(format!(
            "Deciding on track {} needs {}, which approval grants; the token {:?} is \
             narrowed to {} and does not name {}.",
            track.name,
            missing.join(", "),
            token.name,
            scope.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
        )));
    }
    Ok(())
}

/// A decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// The one rule for deciding: may `decider` (acting as `actor`; `approves`
/// from `is_approver`) make `decision` on `request` now? Refuses the requester
/// (403) and non-approvers (404), a narrowed token whose scope does not cover
/// what approval grants (403, `check_token_scope`), a decided request (409), and, for an
/// approval: a track that is closed or whose approvers lack a permission it
/// grants (409), a requester who may no longer be promoted (409), a second
/// approval by the same person (409) and an approver who does not hold every
/// permission of the target group (403). `approve` and `reject` call it before
/// they write; the request page calls it in a dry run, so it offers only the
/// decisions that would go through.
pub async fn may_decide(
    sql: &mut dyn Sql,
    track: &Track,
    request: &Request,
    decider: &User,
    actor: &Actor,
    approves: bool,
    decision: Decision,
) -> Result<()> {
    match decision {
        Decision::Reject => {
            // Before the state: someone who may not see the request learns nothing.
            check_decider(request, decider, approves)?;
            check_token_scope(sql, track, actor).await?;
            if request.state != State::Pending {
                return Err(already(request));
            }
            Ok(())
        }
        Decision::Approve => may_approve(sql, track, request, decider, actor, approves)
            .await
            .map(|_| ()),
    }
}

/// `may_decide` for an approval; returns the requester and the target group as read.
pub(super) async fn may_approve(
    sql: &mut dyn Sql,
    track: &Track,
    request: &Request,
    approver: &User,
    actor: &Actor,
    approves: bool,
) -> Result<(User, Group)> {
    check_decider(request, approver, approves)?;
    check_token_scope(sql, track, actor).await?;
    if request.state != State::Pending {
        return Err(already(request));
    }
    track::check_open(sql, track).await?;
    let requester = still_eligible(sql, track, request).await?;
    let approved = sql
        .fetch_i64(
            "select 1 from promotion_approvals where request_id = $1 and approver_id = $2",
            binds![request.request_id, approver.user_id],
        )
        .await?;
    if approved.is_some() {
        return Err(Error::Conflict(
            "You have already approved this request.".into(),
        ));
    }
    let to_group = groups::get_by_id(sql, track.bound()?.to).await?;
    promotion_grant::authorize_promotion(sql, actor, &to_group).await?;
    Ok((requester, to_group))
}
