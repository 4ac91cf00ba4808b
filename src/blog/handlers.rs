//! Blog pages. The route guard has checked the permission; these check the
//! post itself (whose it is, its state) through the rules in `blog`.

use crate::web::error::Id;

use axum::{
    Form,
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};

use super::{Action, CreateDraft, DeletePost, Draft, EditPost, FeaturePost, Post, PublishPost};
use crate::web::outcome::Changer;
use crate::{
    Result,
    permissions::EffectivePermissions,
    web::{
        auth::flash,
        form::{FieldErrors, form_page},
        outcome::flash_and_redirect,
        page::Page,
        state::AppState,
        templates::render,
        viewer::{SignedIn, Viewer},
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
    let check =
        |rule: fn(&EffectivePermissions, &Post) -> bool| perms.is_some_and(|p| rule(p, &post));
    PostView {
        can_edit: check(super::may_edit),
        can_publish: check(super::may_publish),
        can_feature: check(super::may_feature),
        can_delete: check(super::may_delete),
        post,
    }
}

fn views(viewer: &Viewer, posts: Vec<Post>) -> Vec<PostView> {
    posts.into_iter().map(|p| view(viewer, p)).collect()
}

/// Loads a post the viewer may see (see `blog::visible`) and, with an
/// `action`, may do that to.
async fn load(
    state: &AppState,
    perms: Option<&EffectivePermissions>,
    post_id: i64,
    action: Option<Action>,
) -> Result<Post> {
    let mut conn = state.ladder.db.acquire().await?;
    let post = super::visible(&mut conn, perms, post_id).await?;
    if let (Some(action), Some(perms)) = (action, perms) {
        action.check(perms, &post)?;
    }
    Ok(post)
}

fn post_url(post_id: i64) -> String {
    format!("/posts/{post_id}")
}

pub async fn published(
    State(state): State<AppState>,
    viewer: Viewer,
    page: Page,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let posts = views(&viewer, super::published(&mut conn, 100).await?);
    Ok(render("posts/list.html", crate::ctx! { page, posts })?.into_response())
}

pub async fn mine(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    page: Page,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let posts = super::by_author(&mut conn, current.user.user_id).await?;
    let posts = views(&viewer, posts);
    Ok(render("posts/mine.html", crate::ctx! { page, posts })?.into_response())
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    page: Page,
    Id(post_id): Id,
) -> Result<Response> {
    let perms = viewer.0.as_deref().map(|c| c.perms.as_ref());
    let post = view(&viewer, load(&state, perms, post_id, None).await?);
    Ok(render("posts/show.html", crate::ctx! { page, post })?.into_response())
}

#[derive(Deserialize, Default)]
pub struct PostForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

fn post_form(
    page: Page,
    post_id: Option<i64>,
    form: &PostForm,
    errors: &FieldErrors,
) -> Result<Response> {
    let ctx = crate::ctx! { page, post_id, title => form.title, body => form.body };
    form_page("posts/form.html", ctx, errors)
}

pub async fn new_form(page: Page) -> Result<Response> {
    post_form(page, None, &PostForm::default(), &FieldErrors::default())
}

pub async fn create(c: Changer, page: Page, Form(form): Form<PostForm>) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let mut errors = FieldErrors::default();
    let Some(draft) = errors.check(Draft::parse(&form.title, &form.body)) else {
        return post_form(page, None, &form, &errors);
    };
    let new = CreateDraft {
        author_id: current.user.user_id,
        draft,
        now: state.ladder.clock.now(),
    };
    let post_id = state.ladder.db.run(new).await?;
    flash_and_redirect(&session, Ok("Draft saved.".into()), &post_url(post_id)).await
}

pub async fn edit_form(
    State(state): State<AppState>,
    page: Page,
    SignedIn(current): SignedIn,
    Id(post_id): Id,
) -> Result<Response> {
    let post = load(&state, Some(&current.perms), post_id, Some(Action::Edit)).await?;
    let form = PostForm {
        title: post.title,
        body: post.body,
    };
    post_form(page, Some(post_id), &form, &FieldErrors::default())
}

pub async fn edit(
    c: Changer,
    page: Page,
    Id(post_id): Id,
    Form(form): Form<PostForm>,
) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    load(&state, Some(&current.perms), post_id, Some(Action::Edit)).await?;
    let mut errors = FieldErrors::default();
    let Some(draft) = errors.check(Draft::parse(&form.title, &form.body)) else {
        return post_form(page, Some(post_id), &form, &errors);
    };
    let now = state.ladder.clock.now();
    state
        .ladder
        .db
        .run(EditPost {
            post_id,
            draft,
            now,
        })
        .await?;
    flash_and_redirect(&session, Ok("Post saved.".into()), &post_url(post_id)).await
}

pub async fn publish(c: Changer, Id(post_id): Id) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let post = load(&state, Some(&current.perms), post_id, None).await?;
    if post.is_published() {
        flash(&session, "info", "That post is already published.").await?;
        return Ok(Redirect::to(&post_url(post_id)).into_response());
    }
    Action::Publish.check(&current.perms, &post)?;
    let now = state.ladder.clock.now();
    state.ladder.db.run(PublishPost { post_id, now }).await?;
    flash_and_redirect(&session, Ok("Published.".into()), &post_url(post_id)).await
}

#[derive(Deserialize)]
pub struct FeatureForm {
    featured: String,
}

pub async fn feature(
    c: Changer,
    Id(post_id): Id,
    Form(form): Form<FeatureForm>,
) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let perms = Some(current.perms.as_ref());
    load(&state, perms, post_id, Some(Action::Feature)).await?;
    let featured = form.featured == "true";
    let now = state.ladder.clock.now();
    let change = FeaturePost {
        post_id,
        featured,
        now,
    };
    state.ladder.db.run(change).await?;
    let message = if featured {
        "Featured."
    } else {
        "No longer featured."
    };
    flash_and_redirect(&session, Ok(message.into()), &post_url(post_id)).await
}

pub async fn delete_form(
    State(state): State<AppState>,
    page: Page,
    SignedIn(current): SignedIn,
    Id(post_id): Id,
) -> Result<Response> {
    let post = load(&state, Some(&current.perms), post_id, Some(Action::Delete)).await?;
    Ok(render("posts/delete.html", crate::ctx! { page, post })?.into_response())
}

pub async fn delete(c: Changer, Id(post_id): Id) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let post = load(&state, Some(&current.perms), post_id, Some(Action::Delete)).await?;
    state.ladder.db.run(DeletePost { post_id }).await?;
    let done = format!("Deleted \"{}\".", post.title);
    flash_and_redirect(&session, Ok(done), "/posts/mine").await
}
