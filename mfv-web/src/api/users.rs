//! Users and roles: administrators list, add, change and delete users; every signed-in user
//! changes their own password and sees the rules a new one must meet (so forms say them
//! before the API refuses); anyone who sees the host sees what each role may do.
//!
//! An administrator may not delete, disable or demote their own account, nor set its
//! password without the current one: another administrator must do the first three (so the
//! host always keeps an administrator who can sign in: the one who did it), and
//! `PUT /api/v1/session/password` the last. A change to a user reaches their sessions at
//! once: the dispatcher forgets its recent checks of them.

use mfv_auth::{Permission, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};

use super::accounts::{AuthPolicyView, NewUser, UserChange, UserView};
use super::dispatch::SESSION_COOKIE;
use super::doc::{Answer, Done, schema};
use super::session::signed_in;
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use super::{ApiError, Credential};
use crate::reply::json_response;
use crate::request::with_cookie;

/// The routes.
pub fn routes() -> Vec<Route> {
    let manage = Access::Allowed(Permission::ManageUsers);
    vec![
        Route {
            method: Method::GET,
            path: "/api/v1/users",
            access: manage,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<UserList>),
            operation: "listUsers",
            summary: "Every user: name, display name, role, whether disabled, whether logins \
                      need TOTP, the last login",
            handler: list_users,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/users",
            access: manage,
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<AddUser>),
            answer: Answer::Created(schema::<UserView>),
            operation: "addUser",
            summary: "Add a user: username, password, role, display_name",
            handler: add_user,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/users/{name}",
            access: manage,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<UserView>),
            operation: "getUser",
            summary: "One user",
            handler: get_user,
        },
        Route {
            method: Method::PATCH,
            path: "/api/v1/users/{name}",
            access: manage,
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<ChangeUser>),
            answer: Answer::Ok(schema::<UserView>),
            operation: "changeUser",
            summary: "Change a user's role, display name or password, or disable or enable \
                      them; their sessions see it at their next request",
            handler: change_user,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/users/{name}",
            access: manage,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<Done>),
            operation: "deleteUser",
            summary: "Delete a user with their sessions, API tokens and TOTP",
            handler: delete_user,
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/session/password",
            access: Access::SignedIn,
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<OwnPassword>),
            answer: Answer::Ok(schema::<PasswordChanged>),
            operation: "changeOwnPassword",
            summary: "Change the caller's own password, given the current one; ends every \
                      session of theirs",
            handler: change_own_password,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/auth/policy",
            access: Access::SignedIn,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<AuthPolicyView>),
            operation: "authPolicy",
            summary: "The rules for new passwords and API tokens: min_password_chars, \
                      api_token_max_days",
            handler: auth_policy,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/roles",
            access: Access::Allowed(Permission::ViewInventory),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<RoleList>),
            operation: "listRoles",
            summary: "Each role with the permissions it grants",
            handler: list_roles,
        },
    ]
}

/// A role named in a request body, or a refusal naming `field`.
pub(crate) fn role(name: &str, field: &str) -> Result<Role, ApiError> {
    name.parse()
        .map_err(|error: mfv_auth::UnknownNameError| ApiError::invalid(field, error.to_string()))
}

/// `POST /api/v1/users`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddUser {
    username: String,
    password: String,
    #[schemars(with = "Role")]
    role: String,
    #[serde(default)]
    display_name: String,
}

/// `PATCH /api/v1/users/{name}`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChangeUser {
    #[serde(default)]
    #[schemars(with = "Option<Role>")]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `PUT /api/v1/session/password`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OwnPassword {
    current: String,
    new: String,
}

fn list_users(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let users = call.state.authority.list_users().await?;
        Ok(json_response(StatusCode::OK, &UserList { users }))
    })
}

fn add_user(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let body: AddUser = call.json()?;
        let user = NewUser {
            username: body.username,
            password: mfv_api::Secret::new(body.password),
            role: role(&body.role, "role")?,
            display_name: body.display_name,
        };
        let added = call
            .state
            .authority
            .add_user(caller, call.client.ip(), user)
            .await?;
        Ok(json_response(StatusCode::CREATED, &added))
    })
}

fn auth_policy(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let policy = call.state.authority.policy().await?;
        Ok(json_response(StatusCode::OK, &policy))
    })
}

fn get_user(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let user = call.state.authority.find_user(call.param("name")).await?;
        Ok(json_response(StatusCode::OK, &user))
    })
}

/// `409` for an administrator's change of their own account another must make.
fn not_on_oneself(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        format!("you cannot {what} your own account: another administrator must do it"),
    )
}

fn change_user(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let name = call.param("name");
        let body: ChangeUser = call.json()?;
        let change = UserChange {
            role: body
                .role
                .as_deref()
                .map(|name| role(name, "role"))
                .transpose()?,
            disabled: body.disabled,
            display_name: body.display_name,
            password: body.password.map(mfv_api::Secret::new),
        };
        if name == caller.username {
            if change.disabled == Some(true) {
                return Err(not_on_oneself("disable").with_field("disabled"));
            }
            if change.role.is_some_and(|role| role < caller.role) {
                return Err(not_on_oneself("demote").with_field("role"));
            }
            if change.password.is_some() {
                return Err(ApiError::invalid(
                    "password",
                    "change your own password with PUT /api/v1/session/password, which \
                     asks for the current one",
                ));
            }
        }
        let result = call
            .state
            .authority
            .change_user(caller, call.client.ip(), name, change)
            .await;
        call.state.forget_user(name);
        Ok(json_response(StatusCode::OK, &result?))
    })
}

fn delete_user(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let name = call.param("name");
        if name == caller.username {
            return Err(not_on_oneself("delete"));
        }
        call.state
            .authority
            .delete_user(caller, call.client.ip(), name)
            .await?;
        call.state.forget_user(name);
        Ok(json_response(StatusCode::OK, &Done {}))
    })
}

/// What a change of one's own password answers.
#[derive(Debug, Serialize, JsonSchema)]
struct PasswordChanged {
    /// Every session of the user ended: sign in again with the new password.
    sessions_ended: bool,
}

fn change_own_password(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let body: OwnPassword = call.json()?;
        let result = call
            .state
            .authority
            .change_own_password(
                caller,
                call.client.ip(),
                mfv_api::Secret::new(body.current),
                mfv_api::Secret::new(body.new),
            )
            .await;
        call.state.forget_user(&caller.username);
        result?;
        let response = json_response(
            StatusCode::OK,
            &PasswordChanged {
                sessions_ended: true,
            },
        );
        Ok(match caller.credential {
            Credential::Session => with_cookie(response, SESSION_COOKIE, ""),
            Credential::Token { .. } => response,
        })
    })
}

/// What `GET /api/v1/users` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct UserList {
    users: Vec<UserView>,
}

/// What `GET /api/v1/roles` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct RoleList {
    roles: Vec<RoleView>,
}

/// One role as `GET /api/v1/roles` shows it.
#[derive(Debug, Serialize, JsonSchema)]
struct RoleView {
    name: Role,
    permissions: Vec<Permission>,
}

fn list_roles(_call: Call) -> HandlerFuture {
    Box::pin(async move {
        let roles: Vec<RoleView> = Role::ALL
            .into_iter()
            .map(|role| RoleView {
                name: role,
                permissions: Permission::ALL
                    .into_iter()
                    .filter(|permission| role.allows(*permission))
                    .collect(),
            })
            .collect();
        Ok(json_response(StatusCode::OK, &RoleList { roles }))
    })
}
