//! Promotion tracks from config, parsed and checked.

use std::collections::BTreeSet;

use crate::{
    Error, Result, accounts::groups, config::TrackSettings, db::Conn, permissions::catalog,
};

/// A track: members of `from_group` ask to join `to_group`; members of
/// `approver_group` decide.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Track {
    pub name: String,
    pub from_group: String,
    pub to_group: String,
    pub approver_group: String,
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

    /// Checks the track against the database: the groups exist, and the
    /// approvers hold every permission of the target group (so approving never
    /// grants more than the approvers hold).
    pub async fn check_against(&self, conn: &mut Conn) -> Result<()> {
        let bad = |m: String| Error::Invalid {
            field: "promotions",
            message: format!("track {}: {m}", self.name),
        };
        let mut ids = Vec::new();
        for name in [&self.from_group, &self.to_group, &self.approver_group] {
            let group = groups::find_by_name(conn, name)
                .await?
                .ok_or_else(|| bad(format!("group {name:?} does not exist")))?;
            ids.push(group.group_id);
        }
        let target: BTreeSet<String> = catalog::of_group(conn, ids[1])
            .await?
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        let approvers: BTreeSet<String> = catalog::of_group(conn, ids[2])
            .await?
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        let missing: Vec<&String> = target.difference(&approvers).collect();
        if !missing.is_empty() {
            let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Err(bad(format!(
                "approver group {:?} lacks {} held by {:?}; approvers may grant only what they hold",
                self.approver_group,
                list.join(", "),
                self.to_group
            )));
        }
        Ok(())
    }
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
