//! Login throttling: failures are counted per user name and per source address in a fixed
//! window; reaching the limit locks the name or address for a while.
//!
//! An attempt is reserved before its password is checked ([`reserve`]): one `BEGIN
//! IMMEDIATE` transaction checks both lockouts and counts the failures in the window plus the
//! attempts under way, so logins running at once, in this process or in another one sharing
//! the database file, never get more password checks than the limit allows. The attempt ends
//! as a failure ([`release`] and [`record_failure`] in one transaction), a success
//! ([`finish_success`], which answers with the lockout if one began meanwhile and then clears
//! nothing) or neither ([`release`]). An attempt whose end never comes (a process killed
//! mid-check) counts until its window passes.
//!
//! Names are counted whether or not such a user exists, so a lockout says nothing about
//! existence. IPv6 sources are counted per /64, the block one client usually holds;
//! IPv4-mapped IPv6 addresses count as their IPv4 address.

use std::net::IpAddr;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::clock::Timestamp;

/// How many failures within how long lock for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Failures within `window` that cause a lockout.
    pub max_failures: u32,
    /// The counting window.
    pub window: Duration,
    /// How long a lockout lasts.
    pub lockout: Duration,
}

/// What a throttle counter is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    User,
    Address,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Address => "address",
        }
    }
}

/// The counter key for a source address: the IPv4 address, or the IPv6 /64.
pub(crate) fn address_key(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Until when `key` is locked, if it is locked at `now`.
pub(crate) fn locked_until(
    connection: &Connection,
    scope: Scope,
    key: &str,
    now: Timestamp,
) -> rusqlite::Result<Option<Timestamp>> {
    let until: Option<Option<i64>> = connection
        .prepare_cached("SELECT locked_until FROM throttle WHERE scope = ?1 AND key = ?2")?
        .query_row(params![scope.as_str(), key], |row| row.get(0))
        .optional()?;
    Ok(until.flatten().map(Timestamp).filter(|until| *until > now))
}

/// Counts one failure; returns the lockout's end when this failure started one.
pub(crate) fn record_failure(
    connection: &Connection,
    scope: Scope,
    key: &str,
    rule: ThrottleRule,
    now: Timestamp,
) -> rusqlite::Result<Option<Timestamp>> {
    let window_open_since = now.minus(rule.window);
    // A new window starts when the old one has passed; then the count restarts at one.
    let failures: u32 = connection
        .prepare_cached(
            "INSERT INTO throttle (scope, key, failures, window_start) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (scope, key) DO UPDATE SET
                 failures = CASE WHEN window_start <= ?4 THEN 1 ELSE failures + 1 END,
                 window_start = CASE WHEN window_start <= ?4 THEN ?3 ELSE window_start END
             RETURNING failures",
        )?
        .query_row(
            params![scope.as_str(), key, now.0, window_open_since.0],
            |row| row.get(0),
        )?;
    if failures < rule.max_failures {
        return Ok(None);
    }
    // Locking restarts the count, so one more failure after the lockout does not relock.
    let until = now.plus(rule.lockout);
    connection
        .prepare_cached(
            "UPDATE throttle SET locked_until = ?3, failures = 0, window_start = ?4
             WHERE scope = ?1 AND key = ?2",
        )?
        .execute(params![scope.as_str(), key, until.0, now.0])?;
    Ok(Some(until))
}

/// Forgets the failures of `key` (after a successful login).
fn clear(connection: &Connection, scope: Scope, key: &str) -> rusqlite::Result<()> {
    connection
        .prepare_cached("DELETE FROM throttle WHERE scope = ?1 AND key = ?2")?
        .execute(params![scope.as_str(), key])?;
    Ok(())
}

/// What a login attempt counts against: a user name and a source address key
/// ([`address_key`]), each with its rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptKeys<'a> {
    pub(crate) name: &'a str,
    pub(crate) address: &'a str,
    pub(crate) name_rule: ThrottleRule,
    pub(crate) address_rule: ThrottleRule,
}

impl AttemptKeys<'_> {
    fn scopes(&self) -> [(Scope, &str, ThrottleRule); 2] {
        [
            (Scope::User, self.name, self.name_rule),
            (Scope::Address, self.address, self.address_rule),
        ]
    }

    /// The later of the name's and the address's lockout ends, if either is locked.
    fn locked_until(
        &self,
        connection: &Connection,
        now: Timestamp,
    ) -> rusqlite::Result<Option<Timestamp>> {
        let by_name = locked_until(connection, Scope::User, self.name, now)?;
        let by_address = locked_until(connection, Scope::Address, self.address, now)?;
        Ok(by_name.max(by_address))
    }
}

/// A login attempt under way: its row in `login_attempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttemptId(i64);

/// What [`reserve`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reservation {
    /// The password may be checked; the attempt must then be finished.
    Granted(AttemptId),
    /// The name or the address is locked until then.
    Locked(Timestamp),
    /// The failures in the window and the attempts under way reach the limit already.
    Busy,
}

/// Checks the lockouts and reserves an attempt, atomically across connections.
pub(crate) fn reserve(
    connection: &mut Connection,
    keys: AttemptKeys<'_>,
    now: Timestamp,
) -> rusqlite::Result<Reservation> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(until) = keys.locked_until(&transaction, now)? {
        return Ok(Reservation::Locked(until));
    }
    let longest_window = keys.name_rule.window.max(keys.address_rule.window);
    transaction
        .prepare_cached("DELETE FROM login_attempts WHERE started_at <= ?1")?
        .execute([now.minus(longest_window).0])?;
    for (scope, key, rule) in keys.scopes() {
        if counted(&transaction, scope, key, rule, now)? >= rule.max_failures {
            return Ok(Reservation::Busy);
        }
    }
    transaction
        .prepare_cached(
            "INSERT INTO login_attempts (username, address, started_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![keys.name, keys.address, now.0])?;
    let attempt = AttemptId(transaction.last_insert_rowid());
    transaction.commit()?;
    Ok(Reservation::Granted(attempt))
}

/// The failures of `key` in the current window plus its attempts under way that started in
/// it.
fn counted(
    connection: &Connection,
    scope: Scope,
    key: &str,
    rule: ThrottleRule,
    now: Timestamp,
) -> rusqlite::Result<u32> {
    let window_open_since = now.minus(rule.window).0;
    let failures: Option<u32> = connection
        .prepare_cached(
            "SELECT failures FROM throttle WHERE scope = ?1 AND key = ?2 AND window_start > ?3",
        )?
        .query_row(params![scope.as_str(), key, window_open_since], |row| {
            row.get(0)
        })
        .optional()?;
    let under_way = match scope {
        Scope::User => {
            "SELECT count(*) FROM login_attempts WHERE username = ?1 AND started_at > ?2"
        }
        Scope::Address => {
            "SELECT count(*) FROM login_attempts WHERE address = ?1 AND started_at > ?2"
        }
    };
    let under_way: u32 = connection
        .prepare_cached(under_way)?
        .query_row(params![key, window_open_since], |row| row.get(0))?;
    Ok(failures.unwrap_or(0) + under_way)
}

/// Ends `attempt`: it is no longer under way. A failed one is then counted by
/// [`record_failure`] in the same transaction; one the backend could not answer, or whose
/// password was right but the second factor missing, is not counted at all.
pub(crate) fn release(connection: &Connection, attempt: AttemptId) -> rusqlite::Result<()> {
    connection
        .prepare_cached("DELETE FROM login_attempts WHERE id = ?1")?
        .execute([attempt.0])?;
    Ok(())
}

/// Ends `attempt` as a success. When the name or the address became locked while the password
/// was checked, returns the lockout's end and clears nothing: a success never lifts a
/// lockout. Otherwise forgets the name's failures (not the address's, so one valid account
/// does not reset an address that guesses at others).
pub(crate) fn finish_success(
    connection: &mut Connection,
    attempt: AttemptId,
    keys: AttemptKeys<'_>,
    now: Timestamp,
) -> rusqlite::Result<Option<Timestamp>> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    release(&transaction, attempt)?;
    let locked = keys.locked_until(&transaction, now)?;
    if locked.is_none() {
        clear(&transaction, Scope::User, keys.name)?;
    }
    transaction.commit()?;
    Ok(locked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_keys() {
        for (address, key) in [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2::99", "2001:db8:1:2::/64"),
            ("::1", "0:0:0:0::/64"),
        ] {
            assert_eq!(address_key(address.parse().unwrap()), key, "{address}");
        }
    }

    #[test]
    fn window_lockout_and_expiry() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE throttle (scope TEXT NOT NULL, key TEXT NOT NULL, failures INTEGER NOT NULL,
                 window_start INTEGER NOT NULL, locked_until INTEGER, PRIMARY KEY (scope, key))",
            )
            .unwrap();
        let rule = ThrottleRule {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
        };
        let fail = |at: i64| {
            record_failure(&connection, Scope::User, "alice", rule, Timestamp(at)).unwrap()
        };
        let locked =
            |at: i64| locked_until(&connection, Scope::User, "alice", Timestamp(at)).unwrap();

        // Two failures, then the window passes: the count restarts.
        assert_eq!((fail(0), fail(10)), (None, None));
        assert_eq!(fail(70), None);
        assert_eq!(fail(80), None);
        assert_eq!(locked(80), None);
        // Third failure within the window locks for five minutes.
        assert_eq!(fail(90), Some(Timestamp(390)));
        assert_eq!(locked(91), Some(Timestamp(390)));
        assert_eq!(locked(389), Some(Timestamp(390)));
        assert_eq!(locked(390), None, "the lockout has expired");
        // The count restarted at the lockout: one more failure does not relock.
        assert_eq!(fail(391), None);
        assert_eq!(locked(391), None);
        // Other keys and scopes are independent; clear forgets.
        assert_eq!(
            locked_until(&connection, Scope::Address, "alice", Timestamp(100)).unwrap(),
            None
        );
        clear(&connection, Scope::User, "alice").unwrap();
        assert_eq!(fail(400), None);
        assert_eq!(fail(401), None);
        assert_eq!(fail(402), Some(Timestamp(702)));
    }
}
