//! The configuration model: plain data types that serialize to and from `mfv.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A whole host configuration, as stored in `mfv.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Schema version of the file; this release writes and reads [`super::CURRENT_VERSION`].
    pub version: u32,
    /// Host identity and time.
    pub host: HostConfig,
    /// Network interfaces, the bridge VMs attach to, and DNS.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Storage pools VM disks live in.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Where users and passwords come from.
    #[serde(default)]
    pub auth: AuthConfig,
    /// The web interface and REST API.
    #[serde(default)]
    pub web: WebConfig,
    /// Where the host's log lines also go.
    #[serde(default, skip_serializing_if = "LogConfig::is_default")]
    pub log: LogConfig,
}

/// `[host]`: the host's name and clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Host name: one RFC 1123 label (`vmhost1`) or a fully qualified name (`vmhost1.example.org`).
    pub hostname: String,
    /// IANA time zone name such as `Europe/Berlin`, or `UTC` (the default).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// NTP servers (host names or IP addresses); empty means no time synchronisation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ntp_servers: Vec<String>,
    /// Seconds running VMs get to shut down (ACPI) when the host shuts down, before they are
    /// forced off ([`VM_SHUTDOWN_TIMEOUT_RANGE`], default [`DEFAULT_VM_SHUTDOWN_TIMEOUT`]).
    #[serde(
        default = "default_vm_shutdown_timeout",
        skip_serializing_if = "is_default_vm_shutdown_timeout"
    )]
    pub vm_shutdown_timeout: u32,
    /// Autostart VMs started first at boot, in this order (VM names); the other autostart
    /// VMs follow by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub autostart_order: Vec<String>,
}

/// The default of `host.vm_shutdown_timeout`, in seconds.
pub const DEFAULT_VM_SHUTDOWN_TIMEOUT: u32 = 60;
/// The values `host.vm_shutdown_timeout` may take, in seconds.
pub const VM_SHUTDOWN_TIMEOUT_RANGE: (i64, i64) = (1, 3600);

/// [`DEFAULT_VM_SHUTDOWN_TIMEOUT`], for serde.
pub fn default_vm_shutdown_timeout() -> u32 {
    DEFAULT_VM_SHUTDOWN_TIMEOUT
}

/// Whether `seconds` is [`DEFAULT_VM_SHUTDOWN_TIMEOUT`]: the default is not written out.
fn is_default_vm_shutdown_timeout(seconds: &u32) -> bool {
    *seconds == DEFAULT_VM_SHUTDOWN_TIMEOUT
}

/// The default time zone, `UTC`.
pub fn default_time_zone() -> String {
    "UTC".to_owned()
}

/// `[network]`: interfaces, the VM bridge and DNS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// `[[network.interfaces]]`: every link the host configures, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceConfig>,
    /// `[network.bridge]`: the bridge VMs attach to; absent means no bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeConfig>,
    /// `[network.dns]`: resolvers and search domains.
    #[serde(default)]
    pub dns: DnsConfig,
}

/// One `[[network.interfaces]]` entry: a NIC, a VLAN link or the bridge, and its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Kernel link name (`eth0`, `enp3s0`, `br0`, `eth0.10`): 1 to 15 bytes.
    pub name: String,
    /// How the interface gets its addresses.
    #[serde(default)]
    pub mode: InterfaceMode,
    /// Static addresses with prefix length (`192.0.2.10/24`, `2001:db8::10/64`); only with
    /// `mode = "static"`, where at least one is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpCidr>,
    /// IPv4 default gateway; needs an IPv4 address in `addresses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 default gateway; needs an IPv6 address in `addresses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    /// Link MTU in bytes (68 to 65535, at least 1280 with an IPv6 address); absent keeps the
    /// kernel's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Makes this interface an 802.1Q VLAN link on top of another declared interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<VlanConfig>,
    /// Makes this interface an active-backup bond of other declared interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bond: Option<BondConfig>,
}

/// How an interface gets its addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceMode {
    /// DHCPv4 client (the default).
    #[default]
    Dhcp,
    /// The addresses and gateways given in the file.
    Static,
    /// Link up without addresses: bridge ports and VLAN parents.
    Manual,
}

impl InterfaceMode {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dhcp => "dhcp",
            Self::Static => "static",
            Self::Manual => "manual",
        }
    }
}

/// `bond = { ports = ["eth0", "eth1"], primary = "eth0" }`: an active-backup bond. One port
/// carries the traffic; when its link goes, another takes over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BondConfig {
    /// The declared interfaces enslaved to the bond (they must use `mode = "manual"`).
    pub ports: Vec<String>,
    /// The port that is active whenever it has link; one of `ports`. Absent: the first port
    /// with link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
}

/// `vlan = { parent = "eth0", id = 10 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanConfig {
    /// The declared interface the VLAN link sits on.
    pub parent: String,
    /// 802.1Q VLAN id, 1 to 4094.
    pub id: u16,
}

/// `[network.bridge]`: the Linux bridge VM NICs attach to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// Bridge link name (default `br0`). Give it addresses with an interface entry of this name.
    #[serde(default = "default_bridge_name")]
    pub name: String,
    /// Declared interfaces enslaved to the bridge (they must use `mode = "manual"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Spanning tree protocol (default off).
    #[serde(default)]
    pub stp: bool,
}

/// The default bridge name, `br0`.
pub fn default_bridge_name() -> String {
    "br0".to_owned()
}

/// `[network.dns]`: resolvers and search domains written to resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers, at most 3 (the resolver's limit). Empty: those learned by DHCP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<IpAddr>,
    /// Search domains, tried in order for short names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
}

/// `[storage]`: storage pools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `[[storage.pools]]`: each pool VM disks can be created in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolConfig>,
}

/// One `[[storage.pools]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Pool name, unique: letters, digits, `.`, `_`, `-` (libvirt's pool name).
    pub name: String,
    /// What backs the pool.
    pub kind: PoolKind,
    /// `dir`: the directory holding the disk images (required). `nfs`: where the export is
    /// mounted (optional). Absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `logical`: the block device holding the LVM volume group named after the pool. Absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// `nfs`: the NFS server's host name or IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `nfs`: the exported directory on the server. Absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
}

/// What backs a storage pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// A directory of image files.
    Dir,
    /// An LVM volume group; each disk is a logical volume.
    Logical,
    /// An NFS export mounted on the host; each disk is an image file.
    Nfs,
}

impl PoolKind {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dir => "dir",
            Self::Logical => "logical",
            Self::Nfs => "nfs",
        }
    }
}

/// `[auth]`: where users, passwords and roles come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The backend in use (default `sqlite`).
    #[serde(default)]
    pub backend: AuthBackend,
    /// `[auth.sqlite]`: optional, defaults apply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqlite: Option<SqliteAuthConfig>,
    /// `[auth.ldap]`: required when `backend = "ldap"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapAuthConfig>,
    /// `[auth.mysql]`: required when `backend = "mysql"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysql: Option<MysqlAuthConfig>,
    /// The fewest characters a password set on this host may have
    /// ([`MIN_PASSWORD_LENGTH_RANGE`], default [`DEFAULT_MIN_PASSWORD_LENGTH`]).
    #[serde(default = "default_min_password_length")]
    pub min_password_length: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            backend: AuthBackend::default(),
            sqlite: None,
            ldap: None,
            mysql: None,
            min_password_length: DEFAULT_MIN_PASSWORD_LENGTH,
        }
    }
}

/// The default `[auth] min_password_length`.
pub const DEFAULT_MIN_PASSWORD_LENGTH: u32 = 8;

/// The values `[auth] min_password_length` may take: never below the default, at most the
/// longest password (4096 bytes).
pub const MIN_PASSWORD_LENGTH_RANGE: (i64, i64) = (8, 4096);

/// [`DEFAULT_MIN_PASSWORD_LENGTH`], for serde.
pub fn default_min_password_length() -> u32 {
    DEFAULT_MIN_PASSWORD_LENGTH
}

/// The authentication backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthBackend {
    /// Local users in an SQLite database on the config volume (the default).
    #[default]
    Sqlite,
    /// Users from an LDAP directory.
    Ldap,
    /// Users in a shared MySQL/MariaDB database.
    Mysql,
}

impl AuthBackend {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Ldap => "ldap",
            Self::Mysql => "mysql",
        }
    }
}

/// `[auth.sqlite]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteAuthConfig {
    /// The database file; a relative path is relative to the config volume (default `users.sqlite`).
    #[serde(default = "default_sqlite_path")]
    pub path: String,
}

/// The default user database, `users.sqlite` on the config volume.
pub fn default_sqlite_path() -> String {
    "users.sqlite".to_owned()
}

impl Default for SqliteAuthConfig {
    fn default() -> Self {
        Self {
            path: default_sqlite_path(),
        }
    }
}

/// `[auth.ldap]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapAuthConfig {
    /// Server URL, `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Where users are searched, e.g. `ou=people,dc=example,dc=org`.
    pub base_dn: String,
    /// DN to bind as for searches; absent means an anonymous search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// File holding the bind password (required with `bind_dn`); relative paths are on the
    /// config volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<String>,
    /// Search filter; `{username}` is replaced by the escaped login name.
    #[serde(default = "default_ldap_user_filter")]
    pub user_filter: String,
    /// The filter an account's entry matches when it is disabled or locked; absent: the
    /// LDAP backend's default (OpenLDAP's `pwdAccountLockedTime`, Active Directory's
    /// disabled bit in `userAccountControl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_filter: Option<String>,
    /// Where groups are searched (whole subtree); absent: the parent of `base_dn`
    /// ([`LdapAuthConfig::group_base_dn`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_base: Option<String>,
    /// Upgrade the `ldap://` connection with StartTLS before binding (default off; not with
    /// an `ldaps://` url).
    #[serde(default)]
    pub starttls: bool,
    /// PEM file with the CA certificate(s) that sign the server's certificate, for `ldaps://`
    /// or StartTLS; relative paths are on the config volume. Absent: the system's CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Accept an `ldap://` url without StartTLS to a host that is not loopback, where
    /// passwords cross the network in cleartext (default off: such a section is refused).
    #[serde(default)]
    pub insecure: bool,
    /// `[auth.ldap.group_roles]`: a group (its `cn`, or its whole DN) and the role its members
    /// get; a user in several groups gets the highest role (default
    /// [`DEFAULT_LDAP_GROUP_ROLES`]).
    #[serde(default = "default_ldap_group_roles")]
    pub group_roles: BTreeMap<String, AuthRole>,
}

impl LdapAuthConfig {
    /// Where groups are searched: `group_base`, else the parent of `base_dn`; `None` when
    /// `group_base` is absent and `base_dn` has no parent (validation refuses that).
    pub fn group_base_dn(&self) -> Option<&str> {
        match &self.group_base {
            Some(base) => Some(base),
            None => parent_dn(&self.base_dn),
        }
    }
}

/// What a user may do on the host, as named in `[auth.ldap.group_roles]`: the same three
/// roles as the access-control model, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthRole {
    /// Sees the host and its VMs; changes nothing.
    Viewer,
    /// Runs VMs.
    Operator,
    /// Everything.
    Admin,
}

impl AuthRole {
    /// Every role, lowest first.
    pub const ALL: [AuthRole; 3] = [AuthRole::Viewer, AuthRole::Operator, AuthRole::Admin];

    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

/// The LDAP groups that grant roles when `[auth.ldap.group_roles]` is absent, named by their
/// `cn`.
pub const DEFAULT_LDAP_GROUP_ROLES: [(&str, AuthRole); 3] = [
    ("mfv-admins", AuthRole::Admin),
    ("mfv-operators", AuthRole::Operator),
    ("mfv-viewers", AuthRole::Viewer),
];

/// [`DEFAULT_LDAP_GROUP_ROLES`] as the field's map.
pub fn default_ldap_group_roles() -> BTreeMap<String, AuthRole> {
    DEFAULT_LDAP_GROUP_ROLES
        .iter()
        .map(|&(group, role)| (group.to_owned(), role))
        .collect()
}

/// The relative distinguished names of `dn`, split at the commas that are not escaped with
/// `\` (`cn=Smith\, J,dc=org` has two). Nothing is trimmed or unescaped.
pub fn dn_components(dn: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(dn);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut escaped = false;
        for (index, character) in text.char_indices() {
            match character {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                ',' => {
                    rest = Some(&text[index + 1..]);
                    return Some(&text[..index]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

/// `ou=people,dc=example,dc=org` → `dc=example,dc=org`: the DN without its first RDN; `None`
/// when nothing follows it.
pub fn parent_dn(dn: &str) -> Option<&str> {
    let first = dn_components(dn).next()?;
    let parent = dn.get(first.len() + 1..)?.trim_start();
    (!parent.is_empty()).then_some(parent)
}

/// The default LDAP user filter, `(uid={username})`.
pub fn default_ldap_user_filter() -> String {
    "(uid={username})".to_owned()
}

/// `[auth.mysql]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlAuthConfig {
    /// Server host name or IP address.
    pub host: String,
    /// Server TCP port (default 3306).
    #[serde(default = "default_mysql_port")]
    pub port: u16,
    /// Database holding the user tables.
    pub database: String,
    /// User to connect as.
    pub user: String,
    /// File holding that user's password; relative paths are on the config volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// Connect with TLS and verify the server's certificate (default off).
    #[serde(default)]
    pub tls: bool,
    /// PEM file with the CA certificate(s) that sign the server's certificate, with
    /// `tls = true`; relative paths are on the config volume. Absent: the system's CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Accept a connection without TLS to a host that is not loopback, where the password
    /// exchange and the hashes cross the network in cleartext (default off: such a section
    /// is refused).
    #[serde(default)]
    pub insecure: bool,
}

/// The default MySQL port, 3306.
pub fn default_mysql_port() -> u16 {
    3306
}

/// `[web]`: the HTTPS server for the web interface and the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// TCP port (default 443).
    #[serde(default = "default_web_port")]
    pub port: u16,
    /// PEM certificate chain; with `tls_key`. Absent: the self-signed certificate generated at
    /// first boot. Relative paths are on the config volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    /// PEM private key for `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
}

/// The default web port, 443.
pub fn default_web_port() -> u16 {
    443
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            port: default_web_port(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[log]`: where the host's log lines go besides its own memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The syslog server every boot and service line is forwarded to; absent: the lines stay
    /// on the host (in RAM) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteLogServer>,
}

impl LogConfig {
    /// Whether nothing is set: the section is then not written out.
    pub fn is_default(&self) -> bool {
        *self == LogConfig::default()
    }
}

/// How log lines travel to a remote syslog server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogTransport {
    /// One datagram per line (RFC 5426); nothing tells whether it arrived.
    Udp,
    /// A connection carrying octet-counted messages (RFC 6587).
    Tcp,
}

impl LogTransport {
    /// The URL scheme: `udp` or `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogTransport::Udp => "udp",
            LogTransport::Tcp => "tcp",
        }
    }

    /// The port used when the URL names none: 514 for UDP (RFC 5426), 601 for TCP (the
    /// port IANA lists for syslog over a connection).
    pub fn default_port(self) -> u16 {
        match self {
            LogTransport::Udp => 514,
            LogTransport::Tcp => 601,
        }
    }
}

/// A remote syslog server, written `udp://HOST[:PORT]` or `tcp://HOST[:PORT]`; HOST is a host
/// name or an IP address (an IPv6 address in brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RemoteLogServer {
    transport: LogTransport,
    host: String,
    port: Option<u16>,
}

impl RemoteLogServer {
    /// How lines travel.
    pub fn transport(&self) -> LogTransport {
        self.transport
    }

    /// The host name or IP address (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port: the one written, else the transport's default.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.transport.default_port())
    }
}

/// As written in the file: the port only when one was given.
impl fmt::Display for RemoteLogServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.transport.as_str())?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// Why text is not a remote syslog server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteLogServerError {
    /// Neither `udp://` nor `tcp://`.
    #[error("{url:?} does not start with udp:// or tcp://{hint}")]
    Scheme {
        /// The text given.
        url: String,
        /// What to write instead, when the scheme is a known one we do not speak.
        hint: &'static str,
    },
    /// The host or the port is not usable.
    #[error("{url:?}: {reason}")]
    Address {
        /// The text given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl FromStr for RemoteLogServer {
    type Err = RemoteLogServerError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let (transport, authority) = if let Some(rest) = url.strip_prefix("udp://") {
            (LogTransport::Udp, rest)
        } else if let Some(rest) = url.strip_prefix("tcp://") {
            (LogTransport::Tcp, rest)
        } else {
            let hint = if url.starts_with("tls://") || url.starts_with("syslog-tls://") {
                " (syslog over TLS is not supported)"
            } else if !url.contains("://") {
                " (for example udp://192.0.2.10 or tcp://loghost.example:601)"
            } else {
                ""
            };
            return Err(RemoteLogServerError::Scheme {
                url: url.to_owned(),
                hint,
            });
        };
        let (host, port) = super::validate::split_authority(authority).map_err(|reason| {
            RemoteLogServerError::Address {
                url: url.to_owned(),
                reason,
            }
        })?;
        Ok(RemoteLogServer {
            transport,
            host: host.to_owned(),
            port,
        })
    }
}

impl TryFrom<String> for RemoteLogServer {
    type Error = RemoteLogServerError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<RemoteLogServer> for String {
    fn from(server: RemoteLogServer) -> Self {
        server.to_string()
    }
}

/// An IP address with a prefix length, written `192.0.2.10/24` or `2001:db8::10/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpCidr {
    address: IpAddr,
    prefix: u8,
}

impl IpCidr {
    /// An address with a prefix length; fails when the prefix is longer than the address.
    pub fn new(address: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(CidrError::PrefixTooLong {
                prefix: prefix.into(),
                max,
            });
        }
        Ok(Self { address, prefix })
    }

    /// The address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Why text is not an address with a prefix length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// No `/PREFIX` part.
    #[error("missing the prefix length (write it as ADDRESS/PREFIX, e.g. 192.0.2.10/24)")]
    MissingPrefix,
    /// The part before `/` is not an IP address.
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    /// The part after `/` is not a number.
    #[error("prefix length {0:?} is not a number")]
    BadPrefix(String),
    /// The prefix is longer than the address.
    #[error("prefix length {prefix} is longer than {max}")]
    PrefixTooLong {
        /// The prefix given.
        prefix: u16,
        /// The longest prefix for the address family.
        max: u8,
    },
}

impl FromStr for IpCidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = text.split_once('/').ok_or(CidrError::MissingPrefix)?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| CidrError::BadAddress(address.to_owned()))?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
            return Err(CidrError::BadPrefix(prefix.to_owned()));
        }
        let prefix: u16 = prefix
            .parse()
            .map_err(|_| CidrError::BadPrefix(prefix.to_owned()))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        match u8::try_from(prefix) {
            Ok(short) if prefix <= max => Self::new(address, short),
            _ => Err(CidrError::PrefixTooLong {
                prefix,
                max: max as u8,
            }),
        }
    }
}

impl TryFrom<String> for IpCidr {
    type Error = CidrError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<IpCidr> for String {
    fn from(cidr: IpCidr) -> Self {
        cidr.to_string()
    }
}
