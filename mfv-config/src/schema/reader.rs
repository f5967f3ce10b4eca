//! Reads the parsed TOML tree into a [`Config`], recording every type error, unknown field and
//! missing field with its position, and the position of every value for later checks.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::types::*;
use super::{CURRENT_VERSION, closest};

/// A byte range in the configuration text.
pub(super) type Span = Range<usize>;

/// What reading the tree found: the configuration (with placeholders where values were
/// unusable), the problems, the span of every field path and the paths already reported.
#[derive(Debug, Default)]
pub(super) struct Reader {
    /// Problems found: span (when known), field path, message.
    pub(super) errors: Vec<(Span, String, String)>,
    /// The span of every value read, by field path.
    pub(super) spans: HashMap<String, Span>,
    /// Fields the value checks stay quiet about: lists whose indexes no longer match the file
    /// (a bad element was left out), and fields whose checks depend on an unusable value.
    pub(super) unchecked: Vec<String>,
}

/// What a document's `version` key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VersionField {
    /// No `version` key.
    Missing,
    /// Present but not a non-negative integer that fits; already reported.
    Unusable,
    /// A version number.
    Number(u32),
}

type Value<'i> = Spanned<DeValue<'i>>;

/// Joins a table path and a key: `network` + `dns` = `network.dns`.
pub(super) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A table key's path, quoted as TOML quotes it when it is not a bare key:
/// `auth.ldap.group_roles` + `mfv-admins` = `auth.ldap.group_roles.mfv-admins`,
/// + `cn=ops,dc=org` = `auth.ldap.group_roles."cn=ops,dc=org"`.
pub(super) fn keyed(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-'));
    if bare {
        child(path, key)
    } else {
        child(path, &format!("{key:?}"))
    }
}

/// An array element's path: `network.interfaces` + 1 = `network.interfaces[1]`.
pub(super) fn element(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// A TOML value's kind with its article, for "expected X, found Y" messages.
fn kind_of(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A table being read: its entries, its span and its field path.
struct Table<'v, 'i> {
    entries: &'v DeTable<'i>,
    span: Span,
    path: String,
}

impl<'v, 'i> Table<'v, 'i> {
    fn get(&self, key: &str) -> Option<&'v Value<'i>> {
        self.entries.get(key)
    }
}

impl Reader {
    fn report(&mut self, span: Span, path: &str, message: String) {
        self.errors.push((span, path.to_owned(), message));
    }

    /// Reads the `version` key of the document root.
    pub(super) fn version(&mut self, root: &DeTable<'_>) -> VersionField {
        let Some(value) = root.get("version") else {
            return VersionField::Missing;
        };
        self.spans.insert("version".to_owned(), value.span());
        match value.get_ref() {
            DeValue::Integer(integer) => {
                match i64::from_str_radix(integer.as_str(), integer.radix())
                    .ok()
                    .and_then(|number| u32::try_from(number).ok())
                {
                    Some(number) => VersionField::Number(number),
                    None => {
                        self.report(
                            value.span(),
                            "version",
                            format!(
                                "unknown version {integer}; this release reads version {CURRENT_VERSION}"
                            ),
                        );
                        VersionField::Unusable
                    }
                }
            }
            other => {
                let message = format!("expected an integer, found {}", kind_of(other));
                self.report(value.span(), "version", message);
                VersionField::Unusable
            }
        }
    }

    /// Reads a whole version 1 document.
    pub(super) fn config(&mut self, root: &DeTable<'_>, version: u32) -> Config {
        let root = Table {
            entries: root,
            span: 0..0,
            path: String::new(),
        };
        self.unknown_fields(
            &root,
            &[
                "version", "host", "network", "storage", "auth", "web", "log",
            ],
        );
        let host = match self.required_table(&root, "host") {
            Some(table) => self.host(&table),
            None => HostConfig {
                hostname: String::new(),
                time_zone: default_time_zone(),
                ntp_servers: Vec::new(),
                vm_shutdown_timeout: DEFAULT_VM_SHUTDOWN_TIMEOUT,
                autostart_order: Vec::new(),
            },
        };
        let network = self
            .optional_table(&root, "network")
            .map(|table| self.network(&table))
            .unwrap_or_default();
        let storage = self
            .optional_table(&root, "storage")
            .map(|table| self.storage(&table))
            .unwrap_or_default();
        let auth = self
            .optional_table(&root, "auth")
            .map(|table| self.auth(&table))
            .unwrap_or_default();
        let web = self
            .optional_table(&root, "web")
            .map(|table| self.web(&table))
            .unwrap_or_default();
        let log = self
            .optional_table(&root, "log")
            .map(|table| self.log(&table))
            .unwrap_or_default();
        Config {
            version,
            host,
            network,
            storage,
            auth,
            web,
            log,
        }
    }

    /// Reads a document that holds a `[network]` section and nothing else.
    pub(super) fn network_section(&mut self, root: &DeTable<'_>) -> NetworkConfig {
        let root = Table {
            entries: root,
            span: 0..0,
            path: String::new(),
        };
        self.unknown_fields(&root, &["network"]);
        self.required_table(&root, "network")
            .map(|table| self.network(&table))
            .unwrap_or_default()
    }

    fn host(&mut self, table: &Table<'_, '_>) -> HostConfig {
        self.unknown_fields(
            table,
            &[
                "hostname",
                "time_zone",
                "ntp_servers",
                "vm_shutdown_timeout",
                "autostart_order",
            ],
        );
        HostConfig {
            hostname: self.required_string(table, "hostname"),
            time_zone: self
                .optional_string(table, "time_zone")
                .unwrap_or_else(default_time_zone),
            ntp_servers: self.string_list(table, "ntp_servers"),
            vm_shutdown_timeout: self
                .optional_integer(table, "vm_shutdown_timeout", VM_SHUTDOWN_TIMEOUT_RANGE)
                .and_then(|seconds| u32::try_from(seconds).ok())
                .unwrap_or(DEFAULT_VM_SHUTDOWN_TIMEOUT),
            autostart_order: self.string_list(table, "autostart_order"),
        }
    }

    fn network(&mut self, table: &Table<'_, '_>) -> NetworkConfig {
        self.unknown_fields(table, &["interfaces", "bridge", "dns"]);
        let interfaces = self
            .table_list(table, "interfaces")
            .iter()
            .map(|entry| self.interface(entry))
            .collect();
        let bridge = self
            .optional_table(table, "bridge")
            .map(|bridge| self.bridge(&bridge));
        let dns = self
            .optional_table(table, "dns")
            .map(|dns| self.dns(&dns))
            .unwrap_or_default();
        NetworkConfig {
            interfaces,
            bridge,
            dns,
        }
    }

    fn interface(&mut self, table: &Table<'_, '_>) -> InterfaceConfig {
        self.unknown_fields(
            table,
            &[
                "name",
                "mode",
                "addresses",
                "gateway",
                "gateway6",
                "mtu",
                "vlan",
                "bond",
            ],
        );
        let name = self.required_string(table, "name");
        let mode_given = table.get("mode").is_some();
        let mode = self
            .optional_choice(
                table,
                "mode",
                &[
                    InterfaceMode::Dhcp,
                    InterfaceMode::Static,
                    InterfaceMode::Manual,
                ],
                |mode| mode.as_str(),
            )
            .unwrap_or_else(|| {
                if mode_given {
                    // The checks that depend on the mode would guess: keep them quiet.
                    self.quiet(table, &["addresses", "gateway", "gateway6"]);
                }
                InterfaceMode::default()
            });
        let addresses = self.parsed_list(table, "addresses", |text| {
            text.parse::<IpCidr>().map_err(|error| error.to_string())
        });
        let gateway = self.optional_parsed(table, "gateway", |text| match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(address)) => Ok(address),
            Ok(IpAddr::V6(_)) => Err(format!(
                "{text:?} is an IPv6 address; put the IPv6 gateway in gateway6"
            )),
            Err(_) => Err(format!("{text:?} is not an IPv4 address")),
        });
        let gateway6 =
            self.optional_parsed(table, "gateway6", |text| match text.parse::<IpAddr>() {
                Ok(IpAddr::V6(address)) => Ok(address),
                Ok(IpAddr::V4(_)) => Err(format!(
                    "{text:?} is an IPv4 address; put the IPv4 gateway in gateway"
                )),
                Err(_) => Err(format!("{text:?} is not an IPv6 address")),
            });
        let mtu = self
            .optional_integer(table, "mtu", super::validate::MTU_RANGE)
            .and_then(|mtu| u32::try_from(mtu).ok());
        let vlan = self
            .optional_table(table, "vlan")
            .map(|vlan| self.vlan(&vlan));
        let bond = self
            .optional_table(table, "bond")
            .map(|bond| self.bond(&bond));
        InterfaceConfig {
            name,
            mode,
            addresses,
            gateway,
            gateway6,
            mtu,
            vlan,
            bond,
        }
    }

    fn bond(&mut self, table: &Table<'_, '_>) -> BondConfig {
        self.unknown_fields(table, &["ports", "primary"]);
        if table.get("ports").is_none() {
            self.missing(table, "ports");
        }
        BondConfig {
            ports: self.string_list(table, "ports"),
            primary: self.optional_string(table, "primary"),
        }
    }

    fn vlan(&mut self, table: &Table<'_, '_>) -> VlanConfig {
        self.unknown_fields(table, &["parent", "id"]);
        let parent = self.required_string(table, "parent");
        let id = match table.get("id") {
            Some(_) => self
                .optional_integer(table, "id", super::validate::VLAN_ID_RANGE)
                .and_then(|id| u16::try_from(id).ok())
                .unwrap_or(0),
            None => {
                self.missing(table, "id");
                0
            }
        };
        VlanConfig { parent, id }
    }

    fn bridge(&mut self, table: &Table<'_, '_>) -> BridgeConfig {
        self.unknown_fields(table, &["name", "ports", "stp"]);
        BridgeConfig {
            name: self
                .optional_string(table, "name")
                .unwrap_or_else(default_bridge_name),
            ports: self.string_list(table, "ports"),
            stp: self.optional_bool(table, "stp").unwrap_or(false),
        }
    }

    fn dns(&mut self, table: &Table<'_, '_>) -> DnsConfig {
        self.unknown_fields(table, &["servers", "search"]);
        DnsConfig {
            servers: self.parsed_list(table, "servers", |text| {
                text.parse::<IpAddr>()
                    .map_err(|_| format!("{text:?} is not an IP address"))
            }),
            search: self.string_list(table, "search"),
        }
    }

    fn storage(&mut self, table: &Table<'_, '_>) -> StorageConfig {
        self.unknown_fields(table, &["pools"]);
        let pools = self
            .table_list(table, "pools")
            .iter()
            .map(|pool| self.pool(pool))
            .collect();
        StorageConfig { pools }
    }

    fn pool(&mut self, table: &Table<'_, '_>) -> PoolConfig {
        self.unknown_fields(
            table,
            &["name", "kind", "path", "device", "server", "export"],
        );
        let name = self.required_string(table, "name");
        let kinds = [PoolKind::Dir, PoolKind::Logical, PoolKind::Nfs];
        if table.get("kind").is_none() {
            self.missing(table, "kind");
        }
        let kind = self
            .optional_choice(table, "kind", &kinds, |kind| kind.as_str())
            .unwrap_or_else(|| {
                // Which locations a pool needs depends on its kind: keep those checks quiet.
                self.quiet(table, &["path", "device", "server", "export"]);
                PoolKind::Dir
            });
        PoolConfig {
            name,
            kind,
            path: self.optional_string(table, "path"),
            device: self.optional_string(table, "device"),
            server: self.optional_string(table, "server"),
            export: self.optional_string(table, "export"),
        }
    }

    fn auth(&mut self, table: &Table<'_, '_>) -> AuthConfig {
        self.unknown_fields(
            table,
            &["backend", "sqlite", "ldap", "mysql", "min_password_length"],
        );
        let backends = [AuthBackend::Sqlite, AuthBackend::Ldap, AuthBackend::Mysql];
        let backend = self
            .optional_choice(table, "backend", &backends, |backend| backend.as_str())
            .unwrap_or_default();
        let sqlite = self.optional_table(table, "sqlite").map(|sqlite| {
            self.unknown_fields(&sqlite, &["path"]);
            SqliteAuthConfig {
                path: self
                    .optional_string(&sqlite, "path")
                    .unwrap_or_else(default_sqlite_path),
            }
        });
        let ldap = self.optional_table(table, "ldap").map(|ldap| {
            self.unknown_fields(
                &ldap,
                &[
                    "url",
                    "base_dn",
                    "bind_dn",
                    "bind_password_file",
                    "user_filter",
                    "group_base",
                    "starttls",
                    "ca_certificate",
                    "insecure",
                    "group_roles",
                    "disabled_filter",
                ],
            );
            LdapAuthConfig {
                url: self.required_string(&ldap, "url"),
                base_dn: self.required_string(&ldap, "base_dn"),
                bind_dn: self.optional_string(&ldap, "bind_dn"),
                bind_password_file: self.optional_string(&ldap, "bind_password_file"),
                user_filter: self
                    .optional_string(&ldap, "user_filter")
                    .unwrap_or_else(default_ldap_user_filter),
                disabled_filter: self.optional_string(&ldap, "disabled_filter"),
                group_base: self.optional_string(&ldap, "group_base"),
                starttls: self.optional_bool(&ldap, "starttls").unwrap_or(false),
                ca_certificate: self.optional_string(&ldap, "ca_certificate"),
                insecure: self.optional_bool(&ldap, "insecure").unwrap_or(false),
                group_roles: self
                    .optional_table(&ldap, "group_roles")
                    .map(|table| self.group_roles(&table))
                    .unwrap_or_else(default_ldap_group_roles),
            }
        });
        let mysql = self.optional_table(table, "mysql").map(|mysql| {
            self.unknown_fields(
                &mysql,
                &[
                    "host",
                    "port",
                    "database",
                    "user",
                    "password_file",
                    "tls",
                    "ca_certificate",
                    "insecure",
                ],
            );
            MysqlAuthConfig {
                host: self.required_string(&mysql, "host"),
                port: self
                    .optional_integer(&mysql, "port", super::validate::PORT_RANGE)
                    .and_then(|port| u16::try_from(port).ok())
                    .unwrap_or_else(default_mysql_port),
                database: self.required_string(&mysql, "database"),
                user: self.required_string(&mysql, "user"),
                password_file: self.optional_string(&mysql, "password_file"),
                tls: self.optional_bool(&mysql, "tls").unwrap_or(false),
                ca_certificate: self.optional_string(&mysql, "ca_certificate"),
                insecure: self.optional_bool(&mysql, "insecure").unwrap_or(false),
            }
        });
        let min_password_length = self
            .optional_integer(table, "min_password_length", MIN_PASSWORD_LENGTH_RANGE)
            .and_then(|length| u32::try_from(length).ok())
            .unwrap_or(DEFAULT_MIN_PASSWORD_LENGTH);
        AuthConfig {
            backend,
            sqlite,
            ldap,
            mysql,
            min_password_length,
        }
    }

    /// `[auth.ldap.group_roles]`: group = role. Entries with an unknown role are reported and
    /// left out, and the checks of the whole table stay quiet (it is not what the file says).
    fn group_roles(&mut self, table: &Table<'_, '_>) -> BTreeMap<String, AuthRole> {
        let mut roles = BTreeMap::new();
        let mut any_bad = false;
        for (key, value) in table.entries.iter() {
            let group: &str = key.get_ref();
            let path = keyed(&table.path, group);
            self.spans.insert(path.clone(), value.span());
            match self.choice(value, &path, "role", &AuthRole::ALL, AuthRole::as_str) {
                Some(role) => {
                    roles.insert(group.to_owned(), role);
                }
                None => any_bad = true,
            }
        }
        if any_bad {
            self.unchecked.push(table.path.clone());
        }
        roles
    }

    fn web(&mut self, table: &Table<'_, '_>) -> WebConfig {
        self.unknown_fields(table, &["port", "tls_cert", "tls_key"]);
        WebConfig {
            port: self
                .optional_integer(table, "port", super::validate::PORT_RANGE)
                .and_then(|port| u16::try_from(port).ok())
                .unwrap_or_else(default_web_port),
            tls_cert: self.optional_string(table, "tls_cert"),
            tls_key: self.optional_string(table, "tls_key"),
        }
    }

    fn log(&mut self, table: &Table<'_, '_>) -> LogConfig {
        self.unknown_fields(table, &["remote"]);
        LogConfig {
            remote: self.optional_parsed(table, "remote", |text| {
                text.parse::<RemoteLogServer>()
                    .map_err(|error| error.to_string())
            }),
        }
    }

    /// Reports every key of `table` that is not in `known`, with the closest known key.
    fn unknown_fields(&mut self, table: &Table<'_, '_>, known: &[&str]) {
        for (key, _) in table.entries.iter() {
            let name: &str = key.get_ref();
            if known.contains(&name) {
                continue;
            }
            let message = match closest(name, known) {
                Some(suggestion) => {
                    format!("unknown field {name:?}; did you mean {suggestion:?}?")
                }
                None => format!(
                    "unknown field {name:?}; expected one of {}",
                    quoted_list(known)
                ),
            };
            self.report(key.span(), &child(&table.path, name), message);
        }
    }

    /// Keeps the value checks quiet about `keys` of `table`.
    fn quiet(&mut self, table: &Table<'_, '_>, keys: &[&str]) {
        self.unchecked
            .extend(keys.iter().map(|key| child(&table.path, key)));
    }

    fn missing(&mut self, table: &Table<'_, '_>, key: &str) {
        let path = child(&table.path, key);
        let message = if table.path.is_empty() {
            format!("missing required section [{key}]")
        } else {
            "missing required field".to_owned()
        };
        self.report(table.span.clone(), &path, message);
    }

    /// The value at `key`, recording its span; `None` when absent.
    fn value<'v, 'i>(&mut self, table: &Table<'v, 'i>, key: &str) -> Option<&'v Value<'i>> {
        let value = table.get(key)?;
        self.spans.insert(child(&table.path, key), value.span());
        Some(value)
    }

    fn wrong_type(&mut self, value: &Value<'_>, path: &str, expected: &str) {
        let message = format!("expected {expected}, found {}", kind_of(value.get_ref()));
        self.report(value.span(), path, message);
    }

    fn as_table<'v, 'i>(&mut self, value: &'v Value<'i>, path: String) -> Option<Table<'v, 'i>> {
        self.spans.insert(path.clone(), value.span());
        match value.get_ref() {
            DeValue::Table(entries) => Some(Table {
                entries,
                span: value.span(),
                path,
            }),
            _ => {
                self.wrong_type(value, &path, "a table");
                None
            }
        }
    }

    fn optional_table<'v, 'i>(
        &mut self,
        table: &Table<'v, 'i>,
        key: &str,
    ) -> Option<Table<'v, 'i>> {
        let value = table.get(key)?;
        self.as_table(value, child(&table.path, key))
    }

    fn required_table<'v, 'i>(
        &mut self,
        table: &Table<'v, 'i>,
        key: &str,
    ) -> Option<Table<'v, 'i>> {
        if table.get(key).is_none() {
            self.missing(table, key);
            return None;
        }
        self.optional_table(table, key)
    }

    /// The tables of an array of tables (`[[key]]` or an array of inline tables).
    fn table_list<'v, 'i>(&mut self, table: &Table<'v, 'i>, key: &str) -> Vec<Table<'v, 'i>> {
        let path = child(&table.path, key);
        let Some(value) = self.value(table, key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(value, &path, "an array of tables");
            return Vec::new();
        };
        let mut tables = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(entry) = self.as_table(item, element(&path, index)) {
                tables.push(entry);
            } else {
                // Keep the indexes of the following entries: an empty placeholder.
                tables.push(Table {
                    entries: &EMPTY_TABLE,
                    span: item.span(),
                    path: element(&path, index),
                });
            }
        }
        tables
    }

    fn string_from(&mut self, value: &Value<'_>, path: &str) -> Option<String> {
        match value.get_ref() {
            DeValue::String(text) => Some(text.to_string()),
            _ => {
                self.wrong_type(value, path, "a string");
                None
            }
        }
    }

    fn optional_string(&mut self, table: &Table<'_, '_>, key: &str) -> Option<String> {
        let value = self.value(table, key)?;
        self.string_from(value, &child(&table.path, key))
    }

    /// A required string; the empty string (already reported) when missing or not a string.
    fn required_string(&mut self, table: &Table<'_, '_>, key: &str) -> String {
        if table.get(key).is_none() {
            self.missing(table, key);
            return String::new();
        }
        self.optional_string(table, key).unwrap_or_default()
    }

    fn optional_bool(&mut self, table: &Table<'_, '_>, key: &str) -> Option<bool> {
        let value = self.value(table, key)?;
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(*flag),
            _ => {
                self.wrong_type(value, &child(&table.path, key), "a boolean (true or false)");
                None
            }
        }
    }

    /// An integer within `range`; out-of-range values are reported with the range.
    fn optional_integer(
        &mut self,
        table: &Table<'_, '_>,
        key: &str,
        range: (i64, i64),
    ) -> Option<i64> {
        let path = child(&table.path, key);
        let value = self.value(table, key)?;
        let DeValue::Integer(integer) = value.get_ref() else {
            self.wrong_type(value, &path, "an integer");
            return None;
        };
        let number = i64::from_str_radix(integer.as_str(), integer.radix()).ok();
        match number {
            Some(number) if (range.0..=range.1).contains(&number) => Some(number),
            _ => {
                let message = super::validate::out_of_range(&integer.to_string(), range);
                self.report(value.span(), &path, message);
                None
            }
        }
    }

    /// One of `choices`, written as its name.
    fn optional_choice<T: Copy>(
        &mut self,
        table: &Table<'_, '_>,
        key: &str,
        choices: &[T],
        name: impl Fn(T) -> &'static str,
    ) -> Option<T> {
        let value = self.value(table, key)?;
        self.choice(value, &child(&table.path, key), key, choices, name)
    }

    /// `value` as one of `choices`, written as its name; `what` names the kind of choice in
    /// the error (`unknown mode "dchp"; ...`).
    fn choice<T: Copy>(
        &mut self,
        value: &Value<'_>,
        path: &str,
        what: &str,
        choices: &[T],
        name: impl Fn(T) -> &'static str,
    ) -> Option<T> {
        let text = self.string_from(value, path)?;
        if let Some(choice) = choices.iter().find(|choice| name(**choice) == text) {
            return Some(*choice);
        }
        let names: Vec<&str> = choices.iter().map(|choice| name(*choice)).collect();
        let mut message = format!("unknown {what} {text:?}; expected {}", quoted_list(&names));
        if let Some(suggestion) = closest(&text, &names) {
            message.push_str(&format!(" (did you mean {suggestion:?}?)"));
        }
        self.report(value.span(), path, message);
        None
    }

    /// A string parsed with `parse`; its error message is reported at the value.
    fn optional_parsed<T>(
        &mut self,
        table: &Table<'_, '_>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let path = child(&table.path, key);
        let value = self.value(table, key)?;
        let text = self.string_from(value, &path)?;
        match parse(&text) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.report(value.span(), &path, message);
                None
            }
        }
    }

    fn array<'v, 'i>(&mut self, table: &Table<'v, 'i>, key: &str) -> Option<&'v [Value<'i>]> {
        let value = self.value(table, key)?;
        match value.get_ref() {
            DeValue::Array(items) => Some(items),
            _ => {
                self.wrong_type(value, &child(&table.path, key), "an array");
                None
            }
        }
    }

    /// An array of strings; elements that are not strings are reported and left out.
    fn string_list(&mut self, table: &Table<'_, '_>, key: &str) -> Vec<String> {
        self.parsed_list(table, key, |text| Ok(text.to_owned()))
    }

    /// An array of strings parsed with `parse`; bad elements are reported and left out (later
    /// checks never look at single elements of these lists by index).
    fn parsed_list<T>(
        &mut self,
        table: &Table<'_, '_>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let path = child(&table.path, key);
        let Some(items) = self.array(table, key) else {
            return Vec::new();
        };
        let mut parsed = Vec::new();
        let mut any_bad = false;
        for (index, item) in items.iter().enumerate() {
            let item_path = element(&path, index);
            self.spans.insert(item_path.clone(), item.span());
            let Some(text) = self.string_from(item, &item_path) else {
                any_bad = true;
                continue;
            };
            match parse(&text) {
                Ok(value) => parsed.push(value),
                Err(message) => {
                    any_bad = true;
                    self.report(item.span(), &item_path, message);
                }
            }
        }
        if any_bad {
            // Indexes no longer match the file: checks of this list would point at the wrong
            // element, so they stay quiet.
            self.unchecked.push(path);
        }
        parsed
    }
}

static EMPTY_TABLE: std::sync::LazyLock<DeTable<'static>> = std::sync::LazyLock::new(DeTable::new);

/// `"a", "b" or "c"`.
pub(super) fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("{name:?}")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}
