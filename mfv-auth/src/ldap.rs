//! The LDAP user backend: users and their roles come from a directory (OpenLDAP, 389 DS,
//! Active Directory), read-only.
//!
//! A login runs: connect (plain, StartTLS or LDAPS) → bind as the service account → search
//! the user's entry with the configured filter (the user name escaped per RFC 4515) → search
//! the groups that list the user as a member → check the entry against the disabled filter →
//! bind as the user with the password. The user gets the highest role of the groups mapped in
//! [`LdapConfig::group_roles`], each matched by its whole DN, so a group of the same name
//! created elsewhere in the directory grants nothing; a user in no mapped group has no access
//! and is answered like a wrong password (`Ok(None)`); [`UserBackend::check`] names that case
//! (`group` step) for the operator. A user whose entry matches
//! [`LdapConfig::disabled_filter`] (by default OpenLDAP's `pwdAccountLockedTime` or Active
//! Directory's disabled bit in `userAccountControl`) is answered the same way, and
//! [`UserBackend::find_user`] reports them `disabled`, so their sessions and API tokens stop
//! at the next re-check: the directory's own bind may still accept a locked account.
//!
//! The entry's `entryUUID` (OpenLDAP, 389 DS) or `objectGUID` (Active Directory) is the
//! user's [`UserRecord::account_id`]: an entry deleted and added again with the same `uid` is
//! another account, and the sessions and API tokens of the earlier one end.
//!
//! An unknown user costs the same round trips as a known one (the group search and the
//! bind run against the DN the user would have), so the two are not told apart by timing.
//! Any failure to reach or use the directory is a [`BackendError`]: no login.
//!
//! A new connection serves each request; directories answer a bind in about a millisecond
//! and this avoids a pool holding connections bound as some user.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use rustls::ClientConfig;

use crate::backend::{
    BoxFuture, CheckReport, ServerCheckError, ServerStep, StepOutcome, UserBackend, UserCount,
    UserRecord,
};
use crate::tls::{refuse_cleartext, trusted_certificates};
use crate::{BackendError, Password, Role, Username};

/// The backend's name in messages and reports.
const BACKEND: &str = "ldap";

/// The operational attribute that identifies an entry in OpenLDAP and 389 DS (RFC 4530).
const ENTRY_UUID: &str = "entryUUID";

/// The attribute that identifies an entry in Active Directory.
const OBJECT_GUID: &str = "objectGUID";

/// The placeholder in [`LdapConfig::user_filter`] replaced by the escaped user name.
pub const USERNAME_PLACEHOLDER: &str = "{username}";

/// The default user filter: an `inetOrgPerson` whose `uid` is the user name.
pub const DEFAULT_USER_FILTER: &str = "(&(objectClass=inetOrgPerson)(uid={username}))";

/// The default group filter: `groupOfNames` entries (members listed by DN in `member`).
pub const DEFAULT_GROUP_FILTER: &str = "(objectClass=groupOfNames)";

/// The default disabled filter: an account locked by OpenLDAP's password policy
/// (`pwdAccountLockedTime` present) or disabled in Active Directory (`userAccountControl`
/// with the ACCOUNTDISABLE bit, 2, tested with the bitwise-AND matching rule). A directory
/// that does not know one of the attributes evaluates that part as undefined, which matches
/// nothing, so the default serves both.
pub const DEFAULT_DISABLED_FILTER: &str =
    "(|(pwdAccountLockedTime=*)(userAccountControl:1.2.840.113556.1.4.803:=2))";

/// How long one step (connect, bind, search) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// LDAP result code: the DN or password is wrong (RFC 4511).
const RC_INVALID_CREDENTIALS: u32 = 49;
/// LDAP result code: the search base does not exist.
const RC_NO_SUCH_OBJECT: u32 = 32;
/// LDAP result code: the search found more entries than the server's size limit lets it send.
const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;
/// LDAP result codes meaning the server cannot serve now: busy, unavailable.
const RC_SERVER_BUSY: [u32; 2] = [51, 52];

/// What a group's member attribute holds for each member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberValue {
    /// The member's DN (`groupOfNames`/`member`, `groupOfUniqueNames`/`uniqueMember`).
    #[default]
    Dn,
    /// The member's user name (`posixGroup`/`memberUid`).
    Username,
}

/// A group that grants a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRole {
    /// The group's full DN (`cn=mfv-admins,ou=groups,dc=example,dc=com`), or, without any
    /// `=`, its `cn` standing for `cn=NAME,` followed by [`LdapConfig::group_base_dn`]. Groups
    /// are always matched by their whole DN (without regard to case or spaces around `,` and
    /// `=`), so a group of the same name elsewhere in the directory grants nothing.
    pub group: String,
    /// The role its members get.
    pub role: Role,
}

/// Where the directory is and how users and groups are found in it.
#[derive(Clone)]
pub struct LdapConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    /// A PEM file with the CA certificate(s) that sign the server's certificate, for LDAPS
    /// and StartTLS. `None`: the system's trusted CAs.
    pub ca_certificate: Option<PathBuf>,
    /// Accept an `ldap://` url without StartTLS to a host that is not loopback, where the
    /// passwords cross the network in cleartext. Off: such a configuration is refused.
    pub insecure: bool,
    /// The service account used to search; empty for anonymous search.
    pub bind_dn: String,
    /// Its password (never shown by `Debug`).
    pub bind_password: String,
    /// Where users are searched (whole subtree).
    pub user_base_dn: String,
    /// The filter that finds one user; [`USERNAME_PLACEHOLDER`] stands for the escaped name.
    pub user_filter: String,
    /// The filter a user's entry matches when the account is disabled or locked
    /// ([`DEFAULT_DISABLED_FILTER`]): such a user cannot log in, and their sessions and API
    /// tokens stop working at the next re-check.
    pub disabled_filter: String,
    /// The attribute holding the user name, read when listing users (`uid`).
    pub username_attribute: String,
    /// The attribute holding the display name (`cn`; `displayName` also common).
    pub display_name_attribute: String,
    /// Where groups are searched (whole subtree).
    pub group_base_dn: String,
    /// Which entries are groups.
    pub group_filter: String,
    /// The group attribute listing members (`member`, `uniqueMember`, `memberUid`).
    pub member_attribute: String,
    /// What that attribute holds.
    pub member_value: MemberValue,
    /// Groups that grant roles; the highest role of a user's groups wins.
    pub group_roles: Vec<GroupRole>,
    /// Limit for each step: connecting, each bind, each search.
    pub timeout: Duration,
}

impl LdapConfig {
    /// A configuration with the defaults for OpenLDAP's standard schemas: users are
    /// `inetOrgPerson` entries found by `uid`, named by `cn`; groups are `groupOfNames`
    /// listing member DNs in `member`. Map groups to roles in `group_roles`.
    pub fn new(
        url: impl Into<String>,
        bind_dn: impl Into<String>,
        bind_password: impl Into<String>,
        user_base_dn: impl Into<String>,
        group_base_dn: impl Into<String>,
    ) -> Self {
        LdapConfig {
            url: url.into(),
            starttls: false,
            ca_certificate: None,
            insecure: false,
            bind_dn: bind_dn.into(),
            bind_password: bind_password.into(),
            user_base_dn: user_base_dn.into(),
            user_filter: DEFAULT_USER_FILTER.to_owned(),
            disabled_filter: DEFAULT_DISABLED_FILTER.to_owned(),
            username_attribute: "uid".to_owned(),
            display_name_attribute: "cn".to_owned(),
            group_base_dn: group_base_dn.into(),
            group_filter: DEFAULT_GROUP_FILTER.to_owned(),
            member_attribute: "member".to_owned(),
            member_value: MemberValue::Dn,
            group_roles: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The user filter for `username`, escaped per RFC 4515 (`*`, `(`, `)`, `\` and NUL
    /// become `\2a`, `\28`, `\29`, `\5c`, `\00`), so no value can change the filter's
    /// structure. Takes any text, not only a valid [`Username`], so this can be tested
    /// with hostile input.
    pub fn user_filter_for(&self, username: &str) -> String {
        self.user_filter
            .replace(USERNAME_PLACEHOLDER, &escape_filter_value(username))
    }

    /// Checks the configuration without contacting the server.
    fn validate(&self) -> Result<(), BackendError> {
        let scheme_ok = self.url.starts_with("ldap://") || self.url.starts_with("ldaps://");
        if !scheme_ok {
            return Err(misconfigured(format!(
                "url {:?} must start with ldap:// or ldaps://",
                self.url
            )));
        }
        if self.starttls && self.url.starts_with("ldaps://") {
            return Err(misconfigured(format!(
                "starttls is set but {} is already LDAPS: use one or the other",
                self.url
            )));
        }
        if !self.starttls && self.url.starts_with("ldap://") {
            let url = url::Url::parse(&self.url).map_err(|error| {
                misconfigured(format!("url {:?} is not a URL: {error}", self.url))
            })?;
            refuse_cleartext(
                BACKEND,
                &self.url,
                url.host_str().unwrap_or_default(),
                self.insecure,
                "set starttls = true or use an ldaps:// url",
            )?;
        }
        if !self.bind_dn.is_empty() && self.bind_password.is_empty() {
            return Err(misconfigured(format!(
                "bind_dn {} has an empty password: an empty password is an unauthenticated \
                 bind, which servers accept without checking anything",
                self.bind_dn
            )));
        }
        if self.user_base_dn.trim().is_empty() || self.group_base_dn.trim().is_empty() {
            return Err(misconfigured(
                "user_base_dn and group_base_dn must not be empty".to_owned(),
            ));
        }
        if self.user_filter.matches(USERNAME_PLACEHOLDER).count() == 0 {
            return Err(misconfigured(format!(
                "user_filter {:?} does not contain {USERNAME_PLACEHOLDER}",
                self.user_filter
            )));
        }
        for (what, filter) in [
            ("user_filter", &self.user_filter),
            ("disabled_filter", &self.disabled_filter),
            ("group_filter", &self.group_filter),
        ] {
            if !is_parenthesized_filter(filter) {
                return Err(misconfigured(format!(
                    "{what} {filter:?} must be one parenthesized LDAP filter with balanced parentheses"
                )));
            }
        }
        for (what, attribute) in [
            ("username_attribute", &self.username_attribute),
            ("display_name_attribute", &self.display_name_attribute),
            ("member_attribute", &self.member_attribute),
        ] {
            if !is_attribute_name(attribute) {
                return Err(misconfigured(format!(
                    "{what} {attribute:?} is not an LDAP attribute name"
                )));
            }
        }
        if self.group_roles.is_empty() {
            return Err(misconfigured(
                "group_roles is empty: no group grants a role, so nobody could log in".to_owned(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(misconfigured("timeout must be more than zero".to_owned()));
        }
        Ok(())
    }
}

impl fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("ca_certificate", &self.ca_certificate)
            .field("insecure", &self.insecure)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &"<hidden>")
            .field("user_base_dn", &self.user_base_dn)
            .field("user_filter", &self.user_filter)
            .field("disabled_filter", &self.disabled_filter)
            .field("username_attribute", &self.username_attribute)
            .field("display_name_attribute", &self.display_name_attribute)
            .field("group_base_dn", &self.group_base_dn)
            .field("group_filter", &self.group_filter)
            .field("member_attribute", &self.member_attribute)
            .field("member_value", &self.member_value)
            .field("group_roles", &self.group_roles)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Escapes a value for an LDAP filter per RFC 4515: `*`, `(`, `)`, `\` and NUL become
/// `\2a`, `\28`, `\29`, `\5c` and `\00`; everything else (including UTF-8) stays.
pub fn escape_filter_value(value: &str) -> Cow<'_, str> {
    ldap3::ldap_escape(value)
}

/// Users and roles from an LDAP directory.
#[derive(Debug)]
pub struct LdapBackend {
    config: LdapConfig,
    tls: Arc<ClientConfig>,
}

/// A user's entry as found by the search.
#[derive(Debug)]
struct UserEntry {
    dn: String,
    display_name: String,
    account_id: Option<String>,
}

impl LdapBackend {
    /// Checks `config` and loads the CA certificates; does not contact the server.
    pub fn new(config: LdapConfig) -> Result<Self, BackendError> {
        config.validate()?;
        let tls = tls_config(&config)?;
        Ok(LdapBackend { config, tls })
    }

    /// The configuration.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// Connects and binds as the service account.
    async fn connect_and_bind(&self) -> Result<Ldap, BackendError> {
        let mut ldap = self.connect().await?;
        self.bind_service(&mut ldap).await?;
        Ok(ldap)
    }

    /// Opens a connection (TCP, then TLS for LDAPS or StartTLS).
    async fn connect(&self) -> Result<Ldap, BackendError> {
        self.open()
            .await
            .map_err(|error| self.connect_error(&error))
    }

    /// Opens a connection, keeping the client's error.
    async fn open(&self) -> Result<Ldap, LdapError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout)
            .set_starttls(self.config.starttls)
            .set_config(Arc::clone(&self.tls));
        let (connection, ldap) = LdapConnAsync::with_settings(settings, &self.config.url).await?;
        tokio::spawn(async move {
            // The connection's errors reach the caller through the next operation on `ldap`.
            let _ = connection.drive().await;
        });
        Ok(ldap)
    }

    /// A connection's failure, with a hint when TLS was asked for.
    fn connect_error(&self, error: &LdapError) -> BackendError {
        let tls_hint = if self.uses_tls() {
            " (TLS: is the port an LDAPS port, and is the server's certificate signed by the configured CA?)"
        } else {
            ""
        };
        unavailable(format!(
            "cannot connect to {}: {error}{tls_hint}",
            self.config.url
        ))
    }

    /// Whether the connection is TLS: LDAPS or StartTLS.
    fn uses_tls(&self) -> bool {
        self.config.url.starts_with("ldaps://") || self.config.starttls
    }

    /// Connects, binds as the service account and counts the entries the user filter finds
    /// under the user base, changing nothing: whether this configuration can reach and use
    /// the directory, for an operator about to rely on it. The count includes entries no
    /// group grants a role to. A directory's size limit ends the count early
    /// ([`UserCount::limited`]).
    pub async fn count_users(&self) -> Result<UserCount, ServerCheckError> {
        let mut ldap = self.open().await.map_err(|error| {
            let step = if self.uses_tls() && is_tls_failure(&error) {
                ServerStep::Tls
            } else {
                ServerStep::Connect
            };
            ServerCheckError::new(step, self.connect_error(&error))
        })?;
        self.bind_service(&mut ldap)
            .await
            .map_err(|error| ServerCheckError::new(ServerStep::Login, error))?;
        const WHAT: &str = "counting the users";
        let base = &self.config.user_base_dn;
        let every_user = self.config.user_filter.replace(USERNAME_PLACEHOLDER, "*");
        let result = ldap
            .with_timeout(self.config.timeout)
            .search(base, Scope::Subtree, &every_user, vec!["1.1"])
            .await
            .map_err(|error| {
                ServerCheckError::new(ServerStep::Users, transport_error(WHAT, &error))
            })?;
        let _ = ldap.unbind().await;
        let ldap3::SearchResult(entries, status) = result;
        let users = u64::try_from(entries.len()).unwrap_or(u64::MAX);
        match status.rc {
            0 => Ok(UserCount {
                users,
                limited: false,
            }),
            RC_SIZE_LIMIT_EXCEEDED => Ok(UserCount {
                users,
                limited: true,
            }),
            RC_NO_SUCH_OBJECT => Err(ServerCheckError::new(
                ServerStep::Users,
                misconfigured(format!("{WHAT}: the base DN {base} does not exist")),
            )),
            rc => Err(ServerCheckError::new(
                ServerStep::Users,
                result_error(WHAT, rc, &status.text),
            )),
        }
    }

    /// Binds as the service account (nothing to do for anonymous search).
    async fn bind_service(&self, ldap: &mut Ldap) -> Result<(), BackendError> {
        if self.config.bind_dn.is_empty() {
            return Ok(());
        }
        let result = ldap
            .with_timeout(self.config.timeout)
            .simple_bind(&self.config.bind_dn, &self.config.bind_password)
            .await
            .map_err(|error| transport_error("binding as the service account", &error))?;
        match result.rc {
            0 => Ok(()),
            RC_INVALID_CREDENTIALS => Err(misconfigured(format!(
                "the server refused the service account {}: invalid credentials (check bind_dn and bind_password)",
                self.config.bind_dn
            ))),
            _ => Err(result_error(
                &format!("binding as the service account {}", self.config.bind_dn),
                result.rc,
                &result.text,
            )),
        }
    }

    /// Searches the subtree under `base` and returns the entries.
    async fn search(
        &self,
        ldap: &mut Ldap,
        what: &str,
        base: &str,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<SearchEntry>, BackendError> {
        let result = ldap
            .with_timeout(self.config.timeout)
            .search(base, Scope::Subtree, filter, attributes.to_vec())
            .await
            .map_err(|error| transport_error(what, &error))?;
        let ldap3::SearchResult(entries, status) = result;
        match status.rc {
            0 => Ok(entries.into_iter().map(SearchEntry::construct).collect()),
            RC_NO_SUCH_OBJECT => Err(misconfigured(format!(
                "{what}: the base DN {base} does not exist"
            ))),
            rc => Err(result_error(what, rc, &status.text)),
        }
    }

    /// Whether the entry `dn` matches [`LdapConfig::disabled_filter`]. An entry that does
    /// not exist (an unknown user's placeholder DN) does not match.
    async fn is_disabled(&self, ldap: &mut Ldap, dn: &str) -> Result<bool, BackendError> {
        const WHAT: &str = "checking whether the user is disabled";
        let result = ldap
            .with_timeout(self.config.timeout)
            .search(dn, Scope::Base, &self.config.disabled_filter, vec!["1.1"])
            .await
            .map_err(|error| transport_error(WHAT, &error))?;
        let ldap3::SearchResult(entries, status) = result;
        match status.rc {
            0 => Ok(!entries.is_empty()),
            RC_NO_SUCH_OBJECT => Ok(false),
            rc => Err(result_error(WHAT, rc, &status.text)),
        }
    }

    /// Finds the entry of `user`, if there is exactly one.
    async fn find_entry(
        &self,
        ldap: &mut Ldap,
        user: &Username,
    ) -> Result<Option<UserEntry>, BackendError> {
        let filter = self.config.user_filter_for(user.as_str());
        let mut entries = self
            .search(
                ldap,
                "searching the user",
                &self.config.user_base_dn,
                &filter,
                &[
                    self.config.display_name_attribute.as_str(),
                    ENTRY_UUID,
                    OBJECT_GUID,
                ],
            )
            .await?;
        if entries.len() > 1 {
            return Err(misconfigured(format!(
                "user_filter {filter} matches {} entries under {}: it must find at most one",
                entries.len(),
                self.config.user_base_dn
            )));
        }
        Ok(entries.pop().map(|entry| UserEntry {
            display_name: first_value(&entry, &self.config.display_name_attribute)
                .unwrap_or_default(),
            account_id: account_id(&entry),
            dn: entry.dn,
        }))
    }

    /// The groups that list `user` (whose entry is `dn`) as a member, and the role they grant.
    async fn role_of(
        &self,
        ldap: &mut Ldap,
        user: &Username,
        dn: &str,
    ) -> Result<(Vec<String>, Option<Role>), BackendError> {
        let member = match self.config.member_value {
            MemberValue::Dn => dn,
            MemberValue::Username => user.as_str(),
        };
        let filter = format!(
            "(&{}({}={}))",
            self.config.group_filter,
            self.config.member_attribute,
            escape_filter_value(member)
        );
        let groups = self
            .search(
                ldap,
                "searching the user's groups",
                &self.config.group_base_dn,
                &filter,
                &["1.1"],
            )
            .await?;
        let role = groups
            .iter()
            .filter_map(|group| self.role_of_group(group))
            .max();
        Ok((groups.into_iter().map(|group| group.dn).collect(), role))
    }

    /// The role `group` grants, if it is mapped: by its whole DN, a bare name standing for
    /// `cn=NAME` directly under the group base.
    fn role_of_group(&self, group: &SearchEntry) -> Option<Role> {
        let dn = normalize_dn(&group.dn);
        self.config
            .group_roles
            .iter()
            .filter(|mapping| {
                let mapped = if mapping.group.contains('=') {
                    normalize_dn(&mapping.group)
                } else {
                    normalize_dn(&format!(
                        "cn={},{}",
                        ldap3::dn_escape(mapping.group.as_str()),
                        self.config.group_base_dn
                    ))
                };
                mapped == dn
            })
            .map(|mapping| mapping.role)
            .max()
    }

    /// Binds as `dn` with `password`: `true` if the directory accepted it.
    async fn bind_user(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        password: &Password,
    ) -> Result<bool, BackendError> {
        // `Password` is never empty, so this is never an unauthenticated bind (which a server
        // "accepts" without checking anything).
        let result = ldap
            .with_timeout(self.config.timeout)
            .simple_bind(dn, password.expose())
            .await
            .map_err(|error| transport_error("binding as the user", &error))?;
        match result.rc {
            0 => Ok(true),
            RC_INVALID_CREDENTIALS => Ok(false),
            rc => Err(result_error("binding as the user", rc, &result.text)),
        }
    }

    /// The DN an unknown `user` would have, so that its login costs the same steps.
    fn placeholder_dn(&self, user: &Username) -> String {
        format!(
            "{}={},{}",
            self.config.username_attribute,
            ldap3::dn_escape(user.as_str()),
            self.config.user_base_dn
        )
    }

    async fn verify(
        &self,
        user: &Username,
        password: &Password,
    ) -> Result<Option<UserRecord>, BackendError> {
        let mut ldap = self.connect_and_bind().await?;
        let entry = self.find_entry(&mut ldap, user).await?;
        let dn = match &entry {
            Some(entry) => entry.dn.clone(),
            None => self.placeholder_dn(user),
        };
        let (_, role) = self.role_of(&mut ldap, user, &dn).await?;
        let disabled = self.is_disabled(&mut ldap, &dn).await?;
        let accepted = self.bind_user(&mut ldap, &dn, password).await?;
        let _ = ldap.unbind().await;
        match (entry, role, disabled, accepted) {
            (Some(entry), Some(role), false, true) => Ok(Some(UserRecord {
                username: user.clone(),
                display_name: entry.display_name,
                role,
                disabled: false,
                account_id: entry.account_id,
            })),
            _ => Ok(None),
        }
    }

    async fn find(&self, user: &Username) -> Result<Option<UserRecord>, BackendError> {
        let mut ldap = self.connect_and_bind().await?;
        let Some(entry) = self.find_entry(&mut ldap, user).await? else {
            return Ok(None);
        };
        let (_, role) = self.role_of(&mut ldap, user, &entry.dn).await?;
        let disabled = self.is_disabled(&mut ldap, &entry.dn).await?;
        let _ = ldap.unbind().await;
        Ok(role.map(|role| UserRecord {
            username: user.clone(),
            display_name: entry.display_name,
            role,
            disabled,
            account_id: entry.account_id,
        }))
    }

    async fn list(&self) -> Result<Vec<UserRecord>, BackendError> {
        let mut ldap = self.connect_and_bind().await?;
        let member_attribute = self.config.member_attribute.as_str();
        let groups = self
            .search(
                &mut ldap,
                "searching the groups",
                &self.config.group_base_dn,
                &self.config.group_filter,
                &[member_attribute],
            )
            .await?;
        // Member (normalized DN or user name) → the highest role its groups grant.
        let mut roles: BTreeMap<String, Role> = BTreeMap::new();
        for group in &groups {
            let Some(role) = self.role_of_group(group) else {
                continue;
            };
            for member in group.attrs.get(member_attribute).into_iter().flatten() {
                let key = self.member_key(member);
                let entry = roles.entry(key).or_insert(role);
                *entry = (*entry).max(role);
            }
        }
        let every_user = self.config.user_filter.replace(USERNAME_PLACEHOLDER, "*");
        let users = self
            .search(
                &mut ldap,
                "listing the users",
                &self.config.user_base_dn,
                &every_user,
                &[
                    self.config.username_attribute.as_str(),
                    self.config.display_name_attribute.as_str(),
                    ENTRY_UUID,
                    OBJECT_GUID,
                ],
            )
            .await?;
        let disabled: BTreeSet<String> = self
            .search(
                &mut ldap,
                "listing the disabled users",
                &self.config.user_base_dn,
                &format!("(&{every_user}{})", self.config.disabled_filter),
                &["1.1"],
            )
            .await?
            .into_iter()
            .map(|entry| normalize_dn(&entry.dn))
            .collect();
        let _ = ldap.unbind().await;
        let mut records: Vec<UserRecord> = users
            .into_iter()
            .filter_map(|entry| {
                // Entries whose name is not a valid `Username` (say `Admin`) cannot log in
                // here and are left out.
                let username =
                    Username::new(first_value(&entry, &self.config.username_attribute)?).ok()?;
                let key = match self.config.member_value {
                    MemberValue::Dn => normalize_dn(&entry.dn),
                    MemberValue::Username => username.as_str().to_owned(),
                };
                let role = *roles.get(&key)?;
                Some(UserRecord {
                    display_name: first_value(&entry, &self.config.display_name_attribute)
                        .unwrap_or_default(),
                    username,
                    role,
                    disabled: disabled.contains(&normalize_dn(&entry.dn)),
                    account_id: account_id(&entry),
                })
            })
            .collect();
        records.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(records)
    }

    /// How a member value is compared: normalized DN or the user name as is.
    fn member_key(&self, member: &str) -> String {
        match self.config.member_value {
            MemberValue::Dn => normalize_dn(member),
            MemberValue::Username => member.to_owned(),
        }
    }

    async fn run_check(&self, user: &Username) -> CheckReport {
        let mut report = CheckReport::new(BACKEND, user.clone());
        let tls = if self.config.starttls {
            " with StartTLS"
        } else if self.config.url.starts_with("ldaps://") {
            " with TLS"
        } else {
            ""
        };
        let mut ldap = match self.connect().await {
            Ok(ldap) => {
                report.push(
                    "connect",
                    StepOutcome::Passed(format!("connected to {}{tls}", self.config.url)),
                );
                ldap
            }
            Err(error) => {
                report.push("connect", StepOutcome::Failed(error.to_string()));
                skip(&mut report, &["bind", "search", "group"], "cannot connect");
                return report;
            }
        };
        match self.bind_service(&mut ldap).await {
            Ok(()) if self.config.bind_dn.is_empty() => report.push(
                "bind",
                StepOutcome::Passed("no bind_dn: searching anonymously".to_owned()),
            ),
            Ok(()) => report.push(
                "bind",
                StepOutcome::Passed(format!("bound as {}", self.config.bind_dn)),
            ),
            Err(error) => {
                report.push("bind", StepOutcome::Failed(error.to_string()));
                skip(&mut report, &["search", "group"], "the service bind failed");
                return report;
            }
        }
        let entry = match self.find_entry(&mut ldap, user).await {
            Ok(Some(entry)) => {
                report.push(
                    "search",
                    StepOutcome::Passed(format!("found {} ({:?})", entry.dn, entry.display_name)),
                );
                entry
            }
            Ok(None) => {
                report.push(
                    "search",
                    StepOutcome::Failed(format!(
                        "no entry matches {} under {}",
                        self.config.user_filter_for(user.as_str()),
                        self.config.user_base_dn
                    )),
                );
                skip(&mut report, &["group"], "the user was not found");
                return report;
            }
            Err(error) => {
                report.push("search", StepOutcome::Failed(error.to_string()));
                skip(&mut report, &["group"], "the search failed");
                return report;
            }
        };
        let outcome = match self.role_of(&mut ldap, user, &entry.dn).await {
            Ok((groups, Some(role))) => {
                StepOutcome::Passed(format!("role {role} from groups: {}", groups.join("; ")))
            }
            Ok((groups, None)) if groups.is_empty() => StepOutcome::Failed(format!(
                "{} is in no group under {}: no access (add the user to a group in group_roles)",
                entry.dn, self.config.group_base_dn
            )),
            Ok((groups, None)) => StepOutcome::Failed(format!(
                "none of the user's groups ({}) is mapped in group_roles: no access",
                groups.join("; ")
            )),
            Err(error) => StepOutcome::Failed(error.to_string()),
        };
        report.push("group", outcome);
        let _ = ldap.unbind().await;
        report
    }
}

impl UserBackend for LdapBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn verify_password<'a>(
        &'a self,
        user: &'a Username,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        Box::pin(self.verify(user, password))
    }

    fn find_user<'a>(
        &'a self,
        user: &'a Username,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        Box::pin(self.find(user))
    }

    fn list_users<'a>(&'a self) -> BoxFuture<'a, Result<Vec<UserRecord>, BackendError>> {
        Box::pin(self.list())
    }

    fn check<'a>(&'a self, user: &'a Username) -> BoxFuture<'a, CheckReport> {
        Box::pin(self.run_check(user))
    }
}

/// Marks `steps` as skipped because of `reason`.
fn skip(report: &mut CheckReport, steps: &[&'static str], reason: &str) {
    for step in steps {
        report.push(step, StepOutcome::Skipped(reason.to_owned()));
    }
}

/// The TLS client configuration: the configured CA file or the system's CAs, ring crypto.
fn tls_config(config: &LdapConfig) -> Result<Arc<ClientConfig>, BackendError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(trusted_certificates(
        BACKEND,
        config.ca_certificate.as_deref(),
    )?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| misconfigured(format!("TLS setup: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

/// The first value of `attribute` in `entry` (attribute names compare case-insensitively).
fn first_value(entry: &SearchEntry, attribute: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .and_then(|(_, values)| values.first().cloned())
}

/// The entry's identity ([`UserRecord::account_id`]): its `entryUUID` (RFC 4530: OpenLDAP,
/// 389 DS) as text, else its `objectGUID` (Active Directory, 16 bytes) as hex. Both are set
/// by the server when the entry is created and never reused.
fn account_id(entry: &SearchEntry) -> Option<String> {
    if let Some(uuid) = first_value(entry, ENTRY_UUID) {
        return Some(uuid.to_ascii_lowercase());
    }
    // ldap3 keeps a value that happens to be valid UTF-8 as text, any other as bytes.
    let text = first_value(entry, OBJECT_GUID).map(String::into_bytes);
    let bytes = text.or_else(|| {
        entry
            .bin_attrs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(OBJECT_GUID))
            .and_then(|(_, values)| values.first().cloned())
    })?;
    Some(crate::secret::hex(&bytes))
}

/// A DN in a form for comparison: lowercase, no spaces around `,`, `=` and `+`.
fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| {
            rdn.split('+')
                .map(|pair| pair.split('=').map(str::trim).collect::<Vec<_>>().join("="))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// Whether `filter` is one parenthesized filter with balanced parentheses (escaped
/// parentheses in values are written `\28`/`\29`, so every `(` and `)` counts).
fn is_parenthesized_filter(filter: &str) -> bool {
    let mut depth = 0usize;
    for (index, character) in filter.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => {
                let Some(less) = depth.checked_sub(1) else {
                    return false;
                };
                depth = less;
                if depth == 0 && index + 1 != filter.len() {
                    return false;
                }
            }
            _ if depth == 0 => return false,
            _ => {}
        }
    }
    depth == 0 && !filter.is_empty()
}

/// Whether `name` is an attribute description: a letter then letters, digits and `-`, or
/// a numeric OID.
fn is_attribute_name(name: &str) -> bool {
    let descriptor = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !name.is_empty()
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    descriptor || oid
}

fn misconfigured(reason: String) -> BackendError {
    BackendError::Misconfigured {
        backend: BACKEND,
        reason,
    }
}

fn unavailable(reason: String) -> BackendError {
    BackendError::Unavailable {
        backend: BACKEND,
        reason,
    }
}

/// Whether a connection failed in TLS: the handshake (a certificate that does not verify, a
/// server that does not speak TLS on the port) or the server refusing StartTLS.
fn is_tls_failure(error: &LdapError) -> bool {
    match error {
        LdapError::Rustls { .. } | LdapError::DNSName { .. } | LdapError::LdapResult { .. } => true,
        LdapError::Io { source } => source
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

/// An error from the LDAP client while doing `what`: the connection broke or timed out, or
/// the server answered with an error code.
fn transport_error(what: &str, error: &LdapError) -> BackendError {
    match error {
        LdapError::LdapResult { result } => result_error(what, result.rc, &result.text),
        _ => unavailable(format!("{what}: {error}")),
    }
}

/// A server answer with result code `rc` while doing `what`.
fn result_error(what: &str, rc: u32, text: &str) -> BackendError {
    let detail = if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    };
    if RC_SERVER_BUSY.contains(&rc) {
        unavailable(format!(
            "{what}: the server is busy or unavailable (result code {rc}){detail}"
        ))
    } else {
        BackendError::Query {
            backend: BACKEND,
            reason: format!("{what}: result code {rc}{detail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn account_ids_come_from_entry_uuid_or_object_guid() {
        let entry = |attrs: &[(&str, &str)], bin_attrs: &[(&str, &[u8])]| SearchEntry {
            dn: "uid=carol,ou=people,dc=example,dc=test".into(),
            attrs: attrs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), vec![(*value).to_owned()]))
                .collect(),
            bin_attrs: bin_attrs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), vec![value.to_vec()]))
                .collect::<HashMap<_, _>>(),
        };
        let uuid = "5C3F2E1A-0B4D-4E6F-8A9B-0C1D2E3F4A5B";
        assert_eq!(
            account_id(&entry(&[("entryuuid", uuid)], &[])).as_deref(),
            Some("5c3f2e1a-0b4d-4e6f-8a9b-0c1d2e3f4a5b")
        );
        let guid: &[u8] = &[0xff, 0x01, 0x80, 0x7f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        assert_eq!(
            account_id(&entry(&[], &[("objectGUID", guid)])).as_deref(),
            Some("ff01807f000102030405060708090a0b")
        );
        // Sixteen bytes that happen to be UTF-8 arrive as text, and read the same way.
        assert_eq!(
            account_id(&entry(&[("objectGUID", "0123456789abcdef")], &[])).as_deref(),
            Some("30313233343536373839616263646566")
        );
        assert_eq!(account_id(&entry(&[("cn", "Carol")], &[])), None);
    }

    fn config() -> LdapConfig {
        let mut config = LdapConfig::new(
            "ldap://127.0.0.1:389",
            "cn=svc,dc=example,dc=test",
            "secret",
            "ou=people,dc=example,dc=test",
            "ou=groups,dc=example,dc=test",
        );
        config.group_roles.push(GroupRole {
            group: "mfv-admins".into(),
            role: Role::Admin,
        });
        config
    }

    fn check_misconfigured(change: impl FnOnce(&mut LdapConfig), expected: &str) {
        let mut config = config();
        change(&mut config);
        let error = LdapBackend::new(config).unwrap_err();
        assert!(
            matches!(error, BackendError::Misconfigured { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }

    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        for (value, escaped) in [
            ("alice", "alice"),
            ("*)(uid=*", "\\2a\\29\\28uid=\\2a"),
            ("admin)(|(a=*", "admin\\29\\28|\\28a=\\2a"),
            ("' OR 1=1 --", "' OR 1=1 --"),
            ("back\\slash", "back\\5cslash"),
            ("nul\0", "nul\\00"),
            ("jörg", "jörg"),
        ] {
            assert_eq!(escape_filter_value(value), escaped, "value {value:?}");
        }
        assert_eq!(
            config().user_filter_for("*)(uid=*"),
            "(&(objectClass=inetOrgPerson)(uid=\\2a\\29\\28uid=\\2a))"
        );
    }

    #[test]
    fn cleartext_to_another_host_is_refused_unless_insecure() {
        for url in [
            "ldap://192.0.2.1",
            "ldap://ldap.example.org:389/",
            "ldap://[2001:db8::1]",
        ] {
            check_misconfigured(
                |c| c.url = url.into(),
                &format!("{url} is not on this machine and the connection has no TLS"),
            );
            check_misconfigured(
                |c| c.url = url.into(),
                "set starttls = true or use an ldaps:// url, or set insecure = true",
            );
            let mut config = config();
            config.url = url.into();
            config.insecure = true;
            LdapBackend::new(config.clone()).unwrap();
            config.insecure = false;
            config.starttls = true;
            LdapBackend::new(config).unwrap();
        }
        for url in [
            "ldaps://192.0.2.1",
            "ldap://127.0.0.1",
            "ldap://127.1.2.3:1389",
            "ldap://[::1]:389",
            "ldap://localhost/",
            "ldap://LOCALHOST",
        ] {
            let mut config = config();
            config.url = url.into();
            LdapBackend::new(config).unwrap();
        }
    }

    #[test]
    fn configuration_errors_are_caught_before_connecting() {
        check_misconfigured(|c| c.url = "http://x".into(), "must start with ldap://");
        check_misconfigured(
            |c| {
                c.url = "ldaps://x".into();
                c.starttls = true;
            },
            "use one or the other",
        );
        check_misconfigured(|c| c.bind_password.clear(), "unauthenticated bind");
        check_misconfigured(|c| c.user_base_dn.clear(), "must not be empty");
        check_misconfigured(|c| c.user_filter = "(uid=alice)".into(), "does not contain");
        check_misconfigured(|c| c.user_filter = "uid={username}".into(), "parenthesized");
        check_misconfigured(
            |c| c.group_filter = "(objectClass=groupOfNames))".into(),
            "parenthesized",
        );
        check_misconfigured(
            |c| c.member_attribute = "member)(x".into(),
            "attribute name",
        );
        check_misconfigured(|c| c.group_roles.clear(), "nobody could log in");
        check_misconfigured(|c| c.timeout = Duration::ZERO, "timeout");
        check_misconfigured(
            |c| c.ca_certificate = Some("/nonexistent/ca.pem".into()),
            "/nonexistent/ca.pem",
        );
        let anonymous = LdapConfig {
            bind_dn: String::new(),
            bind_password: String::new(),
            ..config()
        };
        LdapBackend::new(anonymous).unwrap();
    }

    #[test]
    fn the_bind_password_is_not_shown() {
        let shown = format!("{:?}", config());
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<hidden>"));
    }

    #[test]
    fn dns_compare_without_case_and_spaces() {
        assert_eq!(
            normalize_dn("CN=MFV-Admins, OU = Groups,dc=Example,dc=test"),
            "cn=mfv-admins,ou=groups,dc=example,dc=test"
        );
    }

    #[test]
    fn filter_and_attribute_syntax() {
        for good in ["(a=b)", "(&(a=b)(c=d))", DEFAULT_USER_FILTER] {
            assert!(is_parenthesized_filter(good), "{good}");
        }
        for bad in ["", "a=b", "(a=b)(c=d)", "(a=b", "a=b)", "((a=b)", "(a=b))"] {
            assert!(!is_parenthesized_filter(bad), "{bad}");
        }
        for good in ["uid", "displayName", "x-custom", "2.5.4.3"] {
            assert!(is_attribute_name(good), "{good}");
        }
        for bad in ["", "1uid", "uid=", "a b", "2.5..3"] {
            assert!(!is_attribute_name(bad), "{bad}");
        }
    }
}
