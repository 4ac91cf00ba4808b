//! Who a command acts as.

use super::ActorArg;
use crate::{
    Ladder, Result,
    accounts::users as accounts,
    actor::{Actor, Source},
};

/// `--as USER`, else the superuser, else Ladder itself (no superuser exists yet).
pub(super) async fn resolve_actor(ladder: &Ladder, arg: &ActorArg) -> Result<Actor> {
    let mut conn = ladder.db.acquire().await?;
    let user = match &arg.actor {
        Some(name) => Some(accounts::get_by_username(&mut conn, name).await?),
        None => accounts::superuser(&mut conn).await?,
    };
    Ok(match user {
        Some(user) => Actor::user(user, Source::Cli),
        None => Actor::system(Source::Cli),
    })
}
