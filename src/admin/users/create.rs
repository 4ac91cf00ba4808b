//! Creating a user from the console.

use axum::{Form, response::Response};
use serde::{Deserialize, Serialize};

use super::user_url;
use crate::web::outcome::Changer;
use crate::{
    Error, Result,
    accounts::{
        Email, NewPassword, Username, parse_display_name, user_changes::CreateUser, users::NewUser,
    },
    web::{
        form::{FieldErrors, form_page},
        outcome::flash_and_redirect,
        page::Page,
    },
};

#[derive(Deserialize, Serialize, Default)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    staff: Option<String>,
}

fn new_user_page(page: Page, form: &NewUserForm, errors: &FieldErrors) -> Result<Response> {
    let ctx = crate::ctx! {
        page,
        username => form.username, email => form.email, display_name => form.display_name,
        staff => form.staff.is_some(),
    };
    form_page("admin/user_new.html", ctx, errors)
}

pub async fn new_form(page: Page) -> Result<Response> {
    new_user_page(page, &NewUserForm::default(), &FieldErrors::default())
}

pub async fn create(c: Changer, page: Page, Form(form): Form<NewUserForm>) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let mut errors = FieldErrors::default();
    let Some(new) = form.parse(&mut errors).await? else {
        return new_user_page(page, &form, &errors);
    };
    let (actor, now) = (current.web_actor(), state.ladder.clock.now());
    let user = match state
        .ladder
        .db
        .run(CreateUser {
            actor,
            new,
            active: true,
            now,
        })
        .await
    {
        Ok(user) => user,
        Err(e) => {
            // A taken name is the username's problem; a refusal, the staff box's.
            let field = if matches!(e, Error::Conflict(_)) {
                "username"
            } else {
                "staff"
            };
            errors.refusal(field, e)?;
            return new_user_page(page, &form, &errors);
        }
    };
    let created = Ok(format!("User {} created.", user.username));
    flash_and_redirect(&session, created, &user_url(&user.username)).await
}

impl NewUserForm {
    /// The new user, its password hashed; None with every field's problem
    /// filed in `errors` at once, so the form shows them all.
    async fn parse(&self, errors: &mut FieldErrors) -> Result<Option<NewUser>> {
        let username = errors.check(Username::parse(self.username.trim()));
        let email = errors.check(Email::parse(&self.email));
        let display_name = errors.check(parse_display_name(&self.display_name));
        let pw = match self.password.as_str() {
            "" => None,
            given => errors.check(NewPassword::parse(given, self.username.trim())),
        };
        let (Some(username), Some(email), Some(display_name), true) =
            (username, email, display_name, errors.is_empty())
        else {
            return Ok(None);
        };
        let password = match pw {
            Some(pw) => Some(pw.hash().await?),
            None => None,
        };
        Ok(Some(NewUser {
            username,
            email,
            display_name,
            password,
            is_staff: self.staff.is_some(),
            is_service: false,
        }))
    }
}
