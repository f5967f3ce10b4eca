//! What lists of users show beside each account and no user backend keeps: whether logins
//! need a second factor, and when the user last logged in. Both live in the state store
//! (the `totp` and `last_logins` tables), so they are the same whatever the backend, and one
//! query reads them for every user at once.

use std::collections::BTreeMap;

use rusqlite::params;

use crate::Username;
use crate::authenticator::Authenticator;
use crate::clock::Timestamp;
use crate::sqlite::StoreError;

/// The state store's facts about one user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserActivity {
    /// Logins need a TOTP code or a recovery code (enrolment confirmed).
    pub totp_enabled: bool,
    /// The last successful login, if the user ever logged in.
    pub last_login: Option<Timestamp>,
}

/// Every user with a confirmed second factor or a login, or only `?1` when it is not NULL.
const ACTIVITY: &str = "
    SELECT username, max(totp), max(at) FROM (
        SELECT username, 1 AS totp, NULL AS at FROM totp WHERE confirmed = 1
        UNION ALL
        SELECT username, 0, at FROM last_logins
    )
    WHERE ?1 IS NULL OR username = ?1
    GROUP BY username";

impl Authenticator {
    /// The activity of every user the state store knows something of, by user name; a user
    /// missing from the map has no second factor and never logged in.
    pub async fn user_activity(&self) -> Result<BTreeMap<String, UserActivity>, StoreError> {
        self.read_activity(None).await
    }

    /// The activity of `user`.
    pub async fn activity_of(&self, user: &Username) -> Result<UserActivity, StoreError> {
        let name = user.as_str().to_owned();
        let mut found = self.read_activity(Some(name.clone())).await?;
        Ok(found.remove(&name).unwrap_or_default())
    }

    async fn read_activity(
        &self,
        only: Option<String>,
    ) -> Result<BTreeMap<String, UserActivity>, StoreError> {
        self.state
            .run(move |connection| {
                let mut statement = connection.prepare_cached(ACTIVITY)?;
                let rows = statement.query_map(params![only], |row| {
                    let totp: i64 = row.get(1)?;
                    let at: Option<i64> = row.get(2)?;
                    Ok((
                        row.get::<_, String>(0)?,
                        UserActivity {
                            totp_enabled: totp == 1,
                            last_login: at.map(Timestamp),
                        },
                    ))
                })?;
                rows.collect()
            })
            .await
    }
}
