//! Blog pages. The route guard has checked the permission; these check the
//! post itself (whose it is, its state) through the rules in `blog`.

use crate::web::error::Id;
use std::collections::BTreeMap;

use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::{Draft, Post};
use crate::{
    Error, Result,
    web::{
        auth::{SignedIn, Viewer, flash},
        page::Page,
        state::AppState,
        templates::render,
    },
};

/// A post with what the viewer may do to it, for the buttons.
#[derive(Serialize)]
struct PostView {
    #[serde(flatten)]
    post: Post,
    can_edit: bool,
    can_publish: bool,
    can_feature: bool,
    can_delete: bool,
}

fn view(viewer: &Viewer, post: Post) -> PostView {
    let perms = viewer.0.as_deref().map(|c| c.perms.as_ref());
    let check = |rule: fn(&crate::permissions::EffectivePermissions, &Post) -> bool| {
        perms.is_some_and(|p| rule(p, &post))
    };
    PostView {
        can_edit: check(super::may_edit),
        can_publish: check(super::may_publish),
        can_feature: check(super::may_feature),
        can_delete: check(super::may_delete),
        post,
    }
}

/// Loads a post the viewer may see. A draft they may not see is "not found",
/// exactly like a missing post, on every route: a 403 would tell that it exists.
async fn visible(
    state: &AppState,
    perms: Option<&crate::permissions::EffectivePermissions>,
    post_id: i64,
) -> Result<Post> {
    let mut conn = state.ladder.db.acquire().await?;
    super::find(&mut conn, post_id)
        .await?
        .filter(|post| super::may_view(perms, post))
        .ok_or_else(|| Error::NotFound("That post".into()))
}

pub async fn published(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let posts: Vec<PostView> = super::published(&mut conn, 100)
        .await?
        .into_iter()
        .map(|p| view(&viewer, p))
        .collect();
    drop(conn);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("posts/list.html", crate::ctx! { page, posts })?.into_response())
}

pub async fn mine(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let posts: Vec<PostView> = super::by_author(&mut conn, current.user.user_id)
        .await?
        .into_iter()
        .map(|p| view(&viewer, p))
        .collect();
    drop(conn);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("posts/mine.html", crate::ctx! { page, posts })?.into_response())
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
    Id(post_id): Id,
) -> Result<Response> {
    let perms = viewer.0.as_deref().map(|c| c.perms.as_ref());
    let post = view(&viewer, visible(&state, perms, post_id).await?);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("posts/show.html", crate::ctx! { page, post })?.into_response())
}

#[derive(Deserialize)]
pub struct PostForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

async fn form_page(
    state: &AppState,
    viewer: &Viewer,
    session: &Session,
    post_id: Option<i64>,
    form: &PostForm,
    errors: BTreeMap<&'static str, String>,
) -> Result<Response> {
    let page = Page::new(state, viewer, session).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = render(
        "posts/form.html",
        crate::ctx! { page, post_id, title => form.title, body => form.body, errors },
    )?;
    Ok((status, body).into_response())
}

fn field_errors(err: Error) -> Result<BTreeMap<&'static str, String>> {
    match err {
        Error::Invalid { field, message } => Ok(BTreeMap::from([(field, message)])),
        other => Err(other),
    }
}

pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    let empty = PostForm {
        title: String::new(),
        body: String::new(),
    };
    form_page(&state, &viewer, &session, None, &empty, BTreeMap::new()).await
}

pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Form(form): Form<PostForm>,
) -> Result<Response> {
    let draft = match Draft::parse(&form.title, &form.body) {
        Ok(d) => d,
        Err(e) => return form_page(&state, &viewer, &session, None, &form, field_errors(e)?).await,
    };
    let mut tx = state.ladder.db.begin().await?;
    let post_id = super::create(
        &mut tx,
        current.user.user_id,
        &draft,
        state.ladder.clock.now(),
    )
    .await?;
    tx.commit().await?;
    flash(&session, "success", "Draft saved.").await?;
    Ok(Redirect::to(&format!("/posts/{post_id}")).into_response())
}

pub async fn edit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Id(post_id): Id,
) -> Result<Response> {
    let post = visible(&state, Some(&current.perms), post_id).await?;
    if !super::may_edit(&current.perms, &post) {
        return Err(not_yours("edit"));
    }
    let form = PostForm {
        title: post.title,
        body: post.body,
    };
    form_page(
        &state,
        &viewer,
        &session,
        Some(post_id),
        &form,
        BTreeMap::new(),
    )
    .await
}

fn not_yours(action: &str) -> Error {
    Error::Forbidden(format!(
        "You may {action} only your own posts; doing it to someone else's needs blog.feature_post."
    ))
}

pub async fn edit(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Id(post_id): Id,
    Form(form): Form<PostForm>,
) -> Result<Response> {
    let post = visible(&state, Some(&current.perms), post_id).await?;
    if !super::may_edit(&current.perms, &post) {
        return Err(not_yours("edit"));
    }
    let draft = match Draft::parse(&form.title, &form.body) {
        Ok(d) => d,
        Err(e) => {
            return form_page(
                &state,
                &viewer,
                &session,
                Some(post_id),
                &form,
                field_errors(e)?,
            )
            .await;
        }
    };
    let mut tx = state.ladder.db.begin().await?;
    super::update(&mut tx, post_id, &draft, state.ladder.clock.now()).await?;
    tx.commit().await?;
    flash(&session, "success", "Post saved.").await?;
    Ok(Redirect::to(&format!("/posts/{post_id}")).into_response())
}

pub async fn publish(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(post_id): Id,
) -> Result<Response> {
    let post = visible(&state, Some(&current.perms), post_id).await?;
    if post.is_published() {
        flash(&session, "info", "That post is already published.").await?;
        return Ok(Redirect::to(&format!("/posts/{post_id}")).into_response());
    }
    if !super::may_publish(&current.perms, &post) {
        return Err(not_yours("publish"));
    }
    let mut tx = state.ladder.db.begin().await?;
    super::publish(&mut tx, post_id, state.ladder.clock.now()).await?;
    tx.commit().await?;
    flash(&session, "success", "Published.").await?;
    Ok(Redirect::to(&format!("/posts/{post_id}")).into_response())
}

#[derive(Deserialize)]
pub struct FeatureForm {
    featured: String,
}

pub async fn feature(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(post_id): Id,
    Form(form): Form<FeatureForm>,
) -> Result<Response> {
    let post = visible(&state, Some(&current.perms), post_id).await?;
    if !super::may_feature(&current.perms, &post) {
        return Err(Error::Conflict(
            "Only published posts can be featured.".into(),
        ));
    }
    let featured = form.featured == "true";
    let mut tx = state.ladder.db.begin().await?;
    super::set_featured(&mut tx, post_id, featured, state.ladder.clock.now()).await?;
    tx.commit().await?;
    let message = if featured {
        "Featured."
    } else {
        "No longer featured."
    };
    flash(&session, "success", message).await?;
    Ok(Redirect::to(&format!("/posts/{post_id}")).into_response())
}

pub async fn delete_form(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Id(post_id): Id,
) -> Result<Response> {
    let post = visible(&state, Some(&current.perms), post_id).await?;
    if !super::may_delete(&current.perms, &post) {
        return Err(not_yours("delete"));
    }
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("posts/delete.html", crate::ctx! { page, post })?.into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(post_id): Id,
) -> Result<Response> {
    let post = visible(&state, Some(&current.perms), post_id).await?;
    if !super::may_delete(&current.perms, &post) {
        return Err(not_yours("delete"));
    }
    let mut tx = state.ladder.db.begin().await?;
    super::delete(&mut tx, post_id).await?;
    tx.commit().await?;
    flash(&session, "success", format!("Deleted \"{}\".", post.title)).await?;
    Ok(Redirect::to("/posts/mine").into_response())
}
