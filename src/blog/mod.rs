//! The blog that ships with Ladder, so a promotion visibly changes what a
//! person can do: writers draft, senior writers publish, editors feature.
//!
//! Rules (the route guard checks the permission; `may_*` add the ownership part):
//! - writing needs `blog.add_post`;
//! - editing, publishing or deleting someone else's post also needs `blog.feature_post`
//!   (an editor's permission); one's own needs only the action's permission;
//! - drafts are visible to their author and to holders of `blog.feature_post`.

pub mod handlers;

use serde::Serialize;
use sqlx::FromRow;

use crate::{
    Error, Result,
    db::{Conn, Flag},
    permissions::EffectivePermissions,
    text::{self, Lines},
};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Post {
    pub post_id: i64,
    pub author_id: i64,
    pub author: String,
    pub title: String,
    pub body: String,
    pub state: String,
    #[sqlx(try_from = "Flag")]
    pub is_featured: bool,
    pub published_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Post {
    pub fn is_published(&self) -> bool {
        self.state == "published"
    }
}

const SELECT: &str = "select p.post_id, p.author_id, u.username as author, p.title, p.body, p.state, \
     p.is_featured, p.published_at, p.created_at, p.updated_at \
     from posts p join users u on u.user_id = p.author_id";

/// A title and body that passed validation.
pub struct Draft {
    pub title: String,
    pub body: String,
}

impl Draft {
    /// Title 1–200 characters on one line, body up to 100,000; no control
    /// characters but the body's line breaks and tabs. Errors name the field.
    pub fn parse(title: &str, body: &str) -> Result<Draft> {
        let title = title.trim();
        if title.is_empty() {
            return Err(Error::invalid("title", "A post needs a title."));
        }
        if title.chars().count() > 200 {
            return Err(Error::invalid(
                "title",
                "Keep the title under 200 characters.",
            ));
        }
        if body.chars().count() > 100_000 {
            return Err(Error::invalid(
                "body",
                "Keep the body under 100,000 characters.",
            ));
        }
        text::check("title", title, Lines::One)?;
        text::check("body", body, Lines::Many)?;
        Ok(Draft {
            title: title.to_string(),
            body: body.trim_end().to_string(),
        })
    }
}

fn is_own(perms: &EffectivePermissions, post: &Post) -> bool {
    perms.user_id == post.author_id
}

/// Editing: one's own with change_post; anyone's with change_post and feature_post.
pub fn may_edit(perms: &EffectivePermissions, post: &Post) -> bool {
    perms.has_perm("blog.change_post")
        && (is_own(perms, post) || perms.has_perm("blog.feature_post"))
}

pub fn may_publish(perms: &EffectivePermissions, post: &Post) -> bool {
    !post.is_published()
        && perms.has_perm("blog.publish_post")
        && (is_own(perms, post) || perms.has_perm("blog.feature_post"))
}

pub fn may_feature(perms: &EffectivePermissions, post: &Post) -> bool {
    post.is_published() && perms.has_perm("blog.feature_post")
}

pub fn may_delete(perms: &EffectivePermissions, post: &Post) -> bool {
    perms.has_perm("blog.delete_post")
        && (is_own(perms, post) || perms.has_perm("blog.feature_post"))
}

/// Drafts are private to their author and editors.
pub fn may_view(perms: Option<&EffectivePermissions>, post: &Post) -> bool {
    post.is_published()
        || perms
            .is_some_and(|p| p.is_active && (is_own(p, post) || p.has_perm("blog.feature_post")))
}

pub async fn find(conn: &mut Conn, post_id: i64) -> Result<Option<Post>> {
    Ok(sqlx::query_as(&format!("{SELECT} where p.post_id = $1"))
        .bind(post_id)
        .fetch_optional(conn)
        .await?)
}

/// Published posts, featured first, newest first.
pub async fn published(conn: &mut Conn, limit: i64) -> Result<Vec<Post>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} where p.state = 'published' \
         order by p.is_featured desc, p.published_at desc, p.post_id desc limit $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn by_author(conn: &mut Conn, author_id: i64) -> Result<Vec<Post>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} where p.author_id = $1 order by p.post_id desc"
    ))
    .bind(author_id)
    .fetch_all(conn)
    .await?)
}

pub async fn create(conn: &mut Conn, author_id: i64, draft: &Draft, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "insert into posts (author_id, title, body, state, is_featured, created_at, updated_at) \
         values ($1, $2, $3, 'draft', $4, $5, $5) returning post_id",
    )
    .bind(author_id)
    .bind(&draft.title)
    .bind(&draft.body)
    .bind(false)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

pub async fn update(conn: &mut Conn, post_id: i64, draft: &Draft, now: i64) -> Result<()> {
    sqlx::query("update posts set title = $1, body = $2, updated_at = $3 where post_id = $4")
        .bind(&draft.title)
        .bind(&draft.body)
        .bind(now)
        .bind(post_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Publishes a draft; a second click finds nothing to do.
pub async fn publish(conn: &mut Conn, post_id: i64, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "update posts set state = 'published', published_at = $1, updated_at = $1 \
         where post_id = $2 and state = 'draft'",
    )
    .bind(now)
    .bind(post_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

pub async fn set_featured(conn: &mut Conn, post_id: i64, featured: bool, now: i64) -> Result<()> {
    sqlx::query("update posts set is_featured = $1, updated_at = $2 where post_id = $3")
        .bind(featured)
        .bind(now)
        .bind(post_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, post_id: i64) -> Result<()> {
    sqlx::query("delete from posts where post_id = $1")
        .bind(post_id)
        .execute(conn)
        .await?;
    Ok(())
}
