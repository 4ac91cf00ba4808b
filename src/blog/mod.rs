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

use crate::{
    Error, Result, binds,
    db::{Finish, Sql, Transaction},
    permissions::EffectivePermissions,
    text::{self, Lines},
};

#[derive(Debug, Clone, Serialize)]
pub struct Post {
    pub post_id: i64,
    pub author_id: i64,
    pub author: String,
    pub title: String,
    pub body: String,
    pub state: String,
    pub is_featured: bool,
    pub published_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

crate::from_row!(Post {
    post_id,
    author_id,
    author,
    title,
    body,
    state,
    is_featured,
    published_at,
    created_at,
    updated_at,
});

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

/// What a person asks to do to a post, each with its ownership rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Edit,
    Publish,
    Feature,
    Delete,
}

impl Action {
    /// Allowed, or the refusal that says why.
    pub fn check(self, perms: &EffectivePermissions, post: &Post) -> Result<()> {
        let (allowed, verb) = match self {
            Action::Edit => (may_edit(perms, post), "edit"),
            Action::Publish => (may_publish(perms, post), "publish"),
            Action::Delete => (may_delete(perms, post), "delete"),
            Action::Feature if may_feature(perms, post) => return Ok(()),
            Action::Feature => {
                return Err(Error::Conflict(
                    "Only published posts can be featured.".into(),
                ));
            }
        };
        if allowed {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "You may {verb} only your own posts; doing it to someone else's needs blog.feature_post."
        )))
    }
}

/// A post the viewer may see. A draft they may not see is "not found",
/// exactly like a missing post, on every route: a 403 would tell that it exists.
pub async fn visible(
    sql: &mut dyn Sql,
    perms: Option<&EffectivePermissions>,
    post_id: i64,
) -> Result<Post> {
    find(sql, post_id)
        .await?
        .filter(|post| may_view(perms, post))
        .ok_or_else(|| Error::NotFound("That post".into()))
}

pub async fn find(sql: &mut dyn Sql, post_id: i64) -> Result<Option<Post>> {
    sql.fetch_optional(&format!("{SELECT} where p.post_id = $1"), binds![post_id])
        .await
}

/// Published posts, featured first, newest first.
pub async fn published(sql: &mut dyn Sql, limit: i64) -> Result<Vec<Post>> {
    sql.fetch_all(
        &format!(
            "{SELECT} where p.state = 'published' \
             order by p.is_featured desc, p.published_at desc, p.post_id desc limit $1"
        ),
        binds![limit],
    )
    .await
}

pub async fn by_author(sql: &mut dyn Sql, author_id: i64) -> Result<Vec<Post>> {
    sql.fetch_all(
        &format!("{SELECT} where p.author_id = $1 order by p.post_id desc"),
        binds![author_id],
    )
    .await
}

pub async fn create(sql: &mut dyn Sql, author_id: i64, draft: &Draft, now: i64) -> Result<i64> {
    sql.fetch_i64(
        "insert into posts (author_id, title, body, state, is_featured, created_at, updated_at) \
         values ($1, $2, $3, 'draft', $4, $5, $5) returning post_id",
        binds![author_id, &draft.title, &draft.body, false, now],
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("insert into posts returned no post_id").into())
}

/// Publishes a draft; a second click finds nothing to do.
pub async fn publish(sql: &mut dyn Sql, post_id: i64, now: i64) -> Result<bool> {
    let done = sql
        .execute(
            "update posts set state = 'published', published_at = $1, updated_at = $1 \
             where post_id = $2 and state = 'draft'",
            binds![now, post_id],
        )
        .await?;
    Ok(done == 1)
}

/// A new draft by `author_id`; answers its id.
pub struct CreateDraft {
    pub author_id: i64,
    pub draft: Draft,
    pub now: i64,
}

impl Transaction for CreateDraft {
    type Output = i64;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<i64>> {
        let post_id = create(sql, self.author_id, &self.draft, self.now).await?;
        Ok(Finish::Commit(post_id))
    }
}

/// A post's new title and body.
pub struct EditPost {
    pub post_id: i64,
    pub draft: Draft,
    pub now: i64,
}

impl Transaction for EditPost {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        sql.execute(
            "update posts set title = $1, body = $2, updated_at = $3 where post_id = $4",
            binds![self.draft.title, self.draft.body, self.now, self.post_id],
        )
        .await?;
        Ok(Finish::Commit(()))
    }
}

/// Publishes a draft; answers false when it was published meanwhile.
pub struct PublishPost {
    pub post_id: i64,
    pub now: i64,
}

impl Transaction for PublishPost {
    type Output = bool;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<bool>> {
        Ok(Finish::Commit(publish(sql, self.post_id, self.now).await?))
    }
}

/// Features a published post, or stops featuring it.
pub struct FeaturePost {
    pub post_id: i64,
    pub featured: bool,
    pub now: i64,
}

impl Transaction for FeaturePost {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        sql.execute(
            "update posts set is_featured = $1, updated_at = $2 where post_id = $3",
            binds![self.featured, self.now, self.post_id],
        )
        .await?;
        Ok(Finish::Commit(()))
    }
}

/// Deletes a post.
pub struct DeletePost {
    pub post_id: i64,
}

impl Transaction for DeletePost {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        sql.execute("delete from posts where post_id = $1", binds![self.post_id])
            .await?;
        Ok(Finish::Commit(()))
    }
}
