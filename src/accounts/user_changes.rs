//! The write transactions on users, run by `Db::run`: one struct per change,
//! the same for the console and the CLI. Each reads the account it changes
//! inside the transaction, so the rules judge it as it is now; passwords are
//! hashed before, and arrive as a field.

use super::{
    Email, PasswordHash, User, Username,
    users::{self, NewUser, Profile},
};
use crate::{
    Result,
    actor::Actor,
    db::{Finish, Sql, Transaction},
};

/// Creates a user (`users::create`: `auth.add_user`, staff only by the
/// superuser); one created inactive is then deactivated in the same
/// transaction, under the rule for that (`users::set_active`).
pub struct CreateUser {
    pub actor: Actor,
    pub new: NewUser,
    pub active: bool,
    pub now: i64,
}

impl Transaction for CreateUser {
    type Output = User;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<User>> {
        let (actor, now) = (&self.actor, self.now);
        let mut user = users::create(sql, actor, self.new, now).await?;
        if !self.active {
            user = users::set_active(sql, actor, &user, false, now).await?;
        }
        Ok(Finish::Commit(user))
    }
}

/// What an update sets on a user's account; each field given is set, each
/// under its own rule (`users::set_profile`, `set_staff`, `set_active`).
#[derive(Debug, Default)]
pub struct UserUpdate {
    pub profile: Profile,
    pub active: Option<bool>,
    pub staff: Option<bool>,
}

/// Updates the user named `username`, all or nothing: one refused field
/// leaves every field as it was.
pub struct UpdateUser {
    pub actor: Actor,
    pub username: String,
    pub update: UserUpdate,
    pub now: i64,
}

impl Transaction for UpdateUser {
    type Output = User;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<User>> {
        let (actor, now) = (&self.actor, self.now);
        let UserUpdate {
            profile,
            active,
            staff,
        } = self.update;
        let mut user = users::get_by_username(sql, &self.username).await?;
        user = users::set_profile(sql, actor, &user, profile, now).await?;
        if let Some(staff) = staff {
            user = users::set_staff(sql, actor, &user, staff, now).await?;
        }
        if let Some(active) = active {
            user = users::set_active(sql, actor, &user, active, now).await?;
        }
        Ok(Finish::Commit(user))
    }
}

/// Sets another user's password, under the `delegation::Change::Account`
/// rule; answers the user as changed.
pub struct SetPassword {
    pub actor: Actor,
    pub username: String,
    pub password: PasswordHash,
    pub now: i64,
}

impl Transaction for SetPassword {
    type Output = User;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<User>> {
        let target = users::get_by_username(sql, &self.username).await?;
        let hash = self.password.as_str().to_string();
        users::set_password(sql, &self.actor, &target, self.password, self.now).await?;
        Ok(Finish::Commit(User {
            password_hash: Some(hash),
            ..target
        }))
    }
}

/// A flag of a user's account, and its new value.
#[derive(Debug, Clone, Copy)]
pub enum Flag {
    /// Deactivates or reactivates (`users::set_active`).
    Active(bool),
    /// Staff or not (`users::set_staff`: only the superuser).
    Staff(bool),
}

/// Sets a flag of the account of the user named `username`.
pub struct SetFlag {
    pub actor: Actor,
    pub username: String,
    pub flag: Flag,
    pub now: i64,
}

impl Transaction for SetFlag {
    type Output = User;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<User>> {
        let target = users::get_by_username(sql, &self.username).await?;
        let (actor, now) = (&self.actor, self.now);
        let user = match self.flag {
            Flag::Active(active) => users::set_active(sql, actor, &target, active, now).await?,
            Flag::Staff(staff) => users::set_staff(sql, actor, &target, staff, now).await?,
        };
        Ok(Finish::Commit(user))
    }
}

/// A user changes their own password, having proved the current one.
pub struct ChangeOwnPassword {
    pub actor: Actor,
    pub user: User,
    pub password: PasswordHash,
    pub now: i64,
}

impl Transaction for ChangeOwnPassword {
    type Output = User;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<User>> {
        let user =
            users::change_own_password(sql, &self.actor, &self.user, self.password, self.now)
                .await?;
        Ok(Finish::Commit(user))
    }
}

/// Creates the one superuser; refused if one exists.
pub struct CreateSuperuser {
    pub actor: Actor,
    pub username: Username,
    pub email: Email,
    pub password: PasswordHash,
    pub now: i64,
}

impl Transaction for CreateSuperuser {
    type Output = User;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<User>> {
        let CreateSuperuser {
            actor,
            username,
            email,
            password,
            now,
        } = self;
        let user = users::create_superuser(sql, &actor, username, email, password, now).await?;
        Ok(Finish::Commit(user))
    }
}

/// Hands the superuser role to the user named `to`.
pub struct TransferSuperuser {
    pub actor: Actor,
    pub to: String,
    pub now: i64,
}

impl Transaction for TransferSuperuser {
    type Output = User;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<User>> {
        let to = users::get_by_username(sql, &self.to).await?;
        let user = users::transfer_superuser(sql, &self.actor, &to, self.now).await?;
        Ok(Finish::Commit(user))
    }
}
