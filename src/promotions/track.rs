//! Promotion tracks from config, parsed and checked.

//!
//! A track names its groups in config, but follows them by id: at start
//! (`Ladder::open`) each name is resolved once and the id stored in
//! `promotion_track_groups` and in the `Track`. From then on renaming groups
//! cannot move a track to another group, and the rules below read the
//! bindings, not the names:
//!
//! - only the superuser may rename or delete a group a track is bound to
//!   (`group_changes`, the way in to renaming or deleting any group);
//! - a change to a group's permissions that leaves a track's approvers without
//!   a permission that approval grants is refused ([`check_rules_for_group`],
//!   called by `grants::grant`/`revoke`);
//! - an approval goes ahead only while the track's bindings are intact and
//!   that rule holds, read at decision time ([`check_open`]).

use std::collections::BTreeSet;

use sqlx::FromRow;

use crate::{
    Error, Result,
    accounts::groups,
    actor::Actor,
    binds,
    config::TrackSettings,
    db::{Conn, Sql},
};

/// The part a group plays in a track; stored as `promotion_track_groups.role`,
/// named like the config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    From,
    To,
    Approver,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::From, Role::To, Role::Approver];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::From => "from_group",
            Role::To => "to_group",
            Role::Approver => "approver_group",
        }
    }
}

/// The ids of a track's groups, resolved from the config's names at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrackGroups {
    pub from: i64,
    pub to: i64,
    pub approver: i64,
}

impl TrackGroups {
    pub fn id(&self, role: Role) -> i64 {
        match role {
            Role::From => self.from,
            Role::To => self.to,
            Role::Approver => self.approver,
        }
    }
}

/// A track: members of `from_group` ask to join `to_group`; members of
/// `approver_group` decide.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Track {
    pub name: String,
    /// The group names as written in config; the track itself follows `groups`.
    pub from_group: String,
    pub to_group: String,
    pub approver_group: String,
    /// The groups, bound by id at start; None while the track is refused.
    pub groups: Option<TrackGroups>,
    /// Why the track is refused (set when `groups` is None).
    pub problem: Option<String>,
    pub approvals_required: u32,
    pub reason_required: bool,
    /// Seconds until an undecided request expires; None: never.
    pub pending_expires_after: Option<i64>,
    /// Seconds before approvers are reminded (and between reminders); None: never.
    pub remind_after: Option<i64>,
    /// Seconds a granted membership lasts; None: permanent.
    pub grant_duration: Option<i64>,
}

/// "14d", "36h", "30m", "90s"; empty means none.
pub fn parse_duration(field: &str, raw: &str) -> Result<Option<i64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let (number, unit) = raw.split_at(raw.len() - 1);
    let scale = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => {
            return Err(format!(
                "{field} {raw:?} must end in d, h, m or s (e.g. \"14d\")"
            ));
        }
    };
    match number.parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(n * scale)),
        _ => Err(format!(
            "{field} {raw:?} must be a positive whole number and a unit, e.g. \"14d\""
        )),
    }
}

impl Track {
    pub fn parse(s: &TrackSettings) -> Result<Track, String> {
        let name = s.name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "track name {:?} must be letters, digits, - and _",
                s.name
            ));
        }
        let ctx = |e: String| format!("{name}: {e}");
        for (field, group) in [
            ("from_group", &s.from_group),
            ("to_group", &s.to_group),
            ("approver_group", &s.approver_group),
        ] {
            if group.trim().is_empty() {
                return Err(ctx(format!("{field} must name a group")));
            }
        }
        if s.from_group == s.to_group {
            return Err(ctx("from_group and to_group must differ".into()));
        }
        if s.approvals_required == 0 {
            return Err(ctx("approvals_required must be at least 1".into()));
        }
        Ok(Track {
            name: name.to_string(),
            from_group: s.from_group.trim().to_string(),
            to_group: s.to_group.trim().to_string(),
            approver_group: s.approver_group.trim().to_string(),
            groups: None,
            problem: Some("its groups are not bound yet".into()),
            approvals_required: s.approvals_required,
            reason_required: s.reason_required,
            pending_expires_after: parse_duration(
                "pending_expires_after",
                &s.pending_expires_after,
            )
            .map_err(ctx)?,
            remind_after: parse_duration("remind_after", &s.remind_after).map_err(ctx)?,
            grant_duration: parse_duration("grant_duration", &s.grant_duration).map_err(ctx)?,
        })
    }

    /// Parses every track; names must be unique.
    pub fn parse_all(settings: &[TrackSettings]) -> Result<Vec<Track>, String> {
        let mut seen = BTreeSet::new();
        let mut tracks = Vec::new();
        for s in settings {
            let track = Track::parse(s)?;
            if !seen.insert(track.name.clone()) {
                return Err(format!("track {:?} is declared twice", track.name));
            }
            tracks.push(track);
        }
        Ok(tracks)
    }

    /// The name config gives the group in `role`.
    pub fn config_name(&self, role: Role) -> &str {
        match role {
            Role::From => &self.from_group,
            Role::To => &self.to_group,
            Role::Approver => &self.approver_group,
        }
    }

    /// The track's groups, or a 409 saying why the track is refused.
    pub fn bound(&self) -> Result<TrackGroups> {
        self.groups.ok_or_else(|| {
            Error::Conflict(format!(
                "Promotion track {} is closed until an administrator fixes it: {}.",
                self.name,
                self.problem
                    .as_deref()
                    .unwrap_or("its groups are not bound")
            ))
        })
    }
}

/// What binding the tracks found and did.
#[derive(Debug, Default)]
pub struct Binding {
    /// The tracks, each bound or with its problem.
    pub tracks: Vec<Track>,
    /// What an explicit setup did, one line each ("created group X for track Y").
    pub done: Vec<String>,
}

#[derive(FromRow)]
struct Bound {
    group_id: i64,
    name: String,
}

async fn stored(conn: &mut Conn, track: &str, role: Role) -> Result<Option<Bound>> {
    Ok(sqlx::query_as(
        "select b.group_id, g.name from promotion_track_groups b join groups g on g.group_id = b.group_id \
         where b.track = $1 and b.role = $2",
    )
    .bind(track)
    .bind(role.as_str())
    .fetch_optional(conn)
    .await?)
}

async fn store(conn: &mut Conn, track: &str, role: Role, group_id: i64, now: i64) -> Result<()> {
    sqlx::query(
        "insert into promotion_track_groups (track, role, group_id, created_at) values ($1, $2, $3, $4) \
         on conflict (track, role) do update set group_id = excluded.group_id, created_at = excluded.created_at",
    )
    .bind(track)
    .bind(role.as_str())
    .bind(group_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Binds each track's groups by id: a role already bound keeps its group
/// (whatever it is called now); an unbound one is bound to the group config
/// names. Bindings of tracks no longer in config are dropped.
///
/// A plain start (`setup` None) never creates or rebinds a group: a track
/// whose config names a group that does not exist, or that is no longer the
/// group it was bound to (the superuser renamed it), is refused, with its
/// problem in `Track::problem`. An explicit setup (`ladder migrate`, the demo)
/// creates a missing group that no track role was bound to, and rebinds a role
/// to the group config now names; `Binding::done` says what it did.
pub async fn bind(
    conn: &mut Conn,
    tracks: &[Track],
    setup: Option<&Actor>,
    now: i64,
) -> Result<Binding> {
    let mut binding = Binding::default();
    let names: Vec<&str> = tracks.iter().map(|t| t.name.as_str()).collect();
    let stale: Vec<String> =
        sqlx::query_scalar("select distinct track from promotion_track_groups order by track")
            .fetch_all(&mut *conn)
            .await?;
    for gone in stale.iter().filter(|t| !names.contains(&t.as_str())) {
        sqlx::query("delete from promotion_track_groups where track = $1")
            .bind(gone)
            .execute(&mut *conn)
            .await?;
    }
    for track in tracks {
        let mut ids = Vec::with_capacity(3);
        let mut problems = Vec::new();
        for role in Role::ALL {
            let wanted = track.config_name(role);
            let by_name = groups::find_by_name(conn, wanted).await?;
            let before = stored(conn, &track.name, role).await?;
            let field = role.as_str();
            match (by_name, before, setup) {
                (Some(g), Some(b), _) if g.group_id == b.group_id => ids.push(g.group_id),
                (Some(g), None, _) => {
                    store(conn, &track.name, role, g.group_id, now).await?;
                    ids.push(g.group_id);
                }
                (Some(g), Some(b), Some(_)) => {
                    store(conn, &track.name, role, g.group_id, now).await?;
                    binding.done.push(format!(
                        "track {}: {field} is now the group named {wanted:?} (it was the group now named {:?})",
                        track.name, b.name
                    ));
                    ids.push(g.group_id);
                }
                (Some(_), Some(b), None) => problems.push(format!(
                    "{field} {wanted:?} is not the group the track was bound to, which is now named {:?}; \
                     name that group in config, or run `ladder migrate` to bind the track to the group now named {wanted:?}",
                    b.name
                )),
                (None, Some(b), _) => problems.push(format!(
                    "{field} {wanted:?} no longer exists: the group was renamed to {:?}; update the config",
                    b.name
                )),
                (None, None, Some(actor)) => {
                    let (g, _) = groups::find_or_create(conn, actor, wanted, now).await?;
                    store(conn, &track.name, role, g.group_id, now).await?;
                    binding
                        .done
                        .push(format!("created group {wanted} for track {}", track.name));
                    ids.push(g.group_id);
                }
                (None, None, None) => problems.push(format!(
                    "{field} {wanted:?} does not exist; `ladder migrate` creates it"
                )),
            }
        }
        let mut track = track.clone();
        if problems.is_empty() {
            track.groups = Some(TrackGroups {
                from: ids[0],
                to: ids[1],
                approver: ids[2],
            });
            track.problem = None;
        } else {
            track.groups = None;
            track.problem = Some(problems.join("; "));
        }
        binding.tracks.push(track);
    }
    Ok(binding)
}

/// The rule of every track: its approvers hold every permission that approval
/// grants (so approving never grants more than the approvers hold). Reads the
/// current state; says how it is broken, naming the track, or None.
pub async fn rule_violation(
    sql: &mut dyn Sql,
    track: &str,
    to: i64,
    approver: i64,
) -> Result<Option<String>> {
    let missing: Vec<(String, String)> = sql
        .fetch_all(
            "select p.app_label, p.codename from group_permissions t \
               join permissions p on p.permission_id = t.permission_id \
              where t.group_id = $1 and not exists \
                    (select 1 from group_permissions a where a.group_id = $2 and a.permission_id = t.permission_id) \
              order by p.app_label, p.codename",
            binds![to, approver],
        )
        .await?;
    if missing.is_empty() {
        return Ok(None);
    }
    let name = async |sql: &mut dyn Sql, id| -> Result<String> {
        Ok(groups::find_by_id(sql, id)
            .await?
            .map_or_else(|| format!("#{id}"), |g| g.name))
    };
    let list: Vec<String> = missing.iter().map(|(a, c)| format!("{a}.{c}")).collect();
    Ok(Some(format!(
        "track {track}: approver group {:?} lacks {} held by {:?}; approvers may grant only what they hold",
        name(sql, approver).await?,
        list.join(", "),
        name(sql, to).await?,
    )))
}

/// Whether approvals on `track` may go ahead now: it is bound, its groups
/// still exist as bound, and its rule holds, all read now (so fixing the
/// groups reopens it without a restart). A 409 naming the track otherwise.
pub async fn check_open(conn: &mut Conn, track: &Track) -> Result<()> {
    let ids = track.bound()?;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select role, group_id from promotion_track_groups where track = $1")
            .bind(&track.name)
            .fetch_all(&mut *conn)
            .await?;
    for role in Role::ALL {
        if !rows
            .iter()
            .any(|(r, id)| r == role.as_str() && *id == ids.id(role))
        {
            return Err(Error::Conflict(format!(
                "Promotion track {} is closed until an administrator fixes it: its {} was deleted or rebound.",
                track.name,
                role.as_str()
            )));
        }
    }
    if let Some(why) = rule_violation(conn, &track.name, ids.to, ids.approver).await? {
        return Err(Error::Conflict(format!(
            "Approvals are paused until an administrator fixes the groups: {why}."
        )));
    }
    Ok(())
}

/// Whether `user_id` is a member of the group `track` is bound to in `role`
/// (read through the binding, so a group deleted since start counts for nothing).
pub async fn in_role(conn: &mut Conn, track: &Track, role: Role, user_id: i64) -> Result<bool> {
    let Some(ids) = track.groups else {
        return Ok(false);
    };
    let found: Option<i64> = sqlx::query_scalar(
        "select 1 from promotion_track_groups b join user_groups ug on ug.group_id = b.group_id \
         where b.track = $1 and b.role = $2 and b.group_id = $3 and ug.user_id = $4",
    )
    .bind(&track.name)
    .bind(role.as_str())
    .bind(ids.id(role))
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// The tracks a group is bound to, with its role in each: (track, role).
pub async fn bound_to(sql: &mut dyn Sql, group_id: i64) -> Result<Vec<(String, String)>> {
    sql.fetch_all(
        "select track, role from promotion_track_groups where group_id = $1 order by track, role",
        binds![group_id],
    )
    .await
}

/// After a change to a group's permissions (in the same transaction): refuses
/// it, naming the track, when a track the group is bound to would break its rule.
pub async fn check_rules_for_group(sql: &mut dyn Sql, group_id: i64) -> Result<()> {
    let tracks: Vec<String> = sql
        .fetch_all(
            "select distinct track from promotion_track_groups where group_id = $1 \
             and role in ('to_group', 'approver_group') order by track",
            binds![group_id],
        )
        .await?;
    for track in tracks {
        let rows: Vec<(String, i64)> = sql
            .fetch_all(
                "select role, group_id from promotion_track_groups where track = $1",
                binds![&track],
            )
            .await?;
        let id = |role: Role| rows.iter().find(|(r, _)| r == role.as_str()).map(|r| r.1);
        if let (Some(to), Some(approver)) = (id(Role::To), id(Role::Approver))
            && let Some(why) = rule_violation(sql, &track, to, approver).await?
        {
            return Err(Error::Conflict(format!(
                "Refused: {why}. Give the approver group the permission first."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_days_hours_minutes_seconds_and_empty() {
        assert_eq!(parse_duration("x", "14d"), Ok(Some(14 * 86_400)));
        assert_eq!(parse_duration("x", "36h"), Ok(Some(36 * 3_600)));
        assert_eq!(parse_duration("x", "30m"), Ok(Some(1_800)));
        assert_eq!(parse_duration("x", ""), Ok(None));
        for bad in ["14", "d", "0d", "-3d", "2w", "1.5d"] {
            assert!(parse_duration("x", bad).is_err(), "{bad}");
        }
    }
}
