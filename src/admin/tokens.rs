//! Revoking a user's API token from their admin page. The rule is the
//! tokens' own (`accounts::tokens`): the owner, or whoever may act on the
//! owner's account, so only the superuser revokes the superuser's tokens.

use axum::response::Response;

use super::users::user_url;
use crate::{
    Error, Result,
    accounts::{
        tokens::{self, RevokeToken},
        users,
    },
    web::{
        error::Id,
        outcome::{Changer, flash_and_redirect},
    },
};

/// Revokes the token and flashes the outcome on its owner's page; a token
/// that does not exist is a 404.
pub async fn revoke(c: Changer, Id(token_id): Id) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let not_found = || Error::NotFound(format!("token {token_id}"));
    let mut conn = state.ladder.db.acquire().await?;
    // A token's owner never changes: read here for the page to go back to.
    let token = tokens::find(&mut conn, token_id)
        .await?
        .ok_or_else(not_found)?;
    let owner = users::find_by_id(&mut conn, token.user_id)
        .await?
        .ok_or_else(not_found)?;
    drop(conn);
    let change = RevokeToken {
        actor: current.web_actor(),
        token_id,
        owned_by: None,
        now: state.ladder.clock.now(),
    };
    let outcome = state.ladder.db.run(change).await.map(|done| {
        let (name, owner) = (&done.token.name, &done.owner.username);
        match done.changed {
            true => format!("Revoked {owner}'s token {name:?}: it fails from its next use."),
            false => format!("{owner}'s token {name:?} was already revoked."),
        }
    });
    flash_and_redirect(&session, outcome, &user_url(&owner.username)).await
}
