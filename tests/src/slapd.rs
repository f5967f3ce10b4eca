//! A private OpenLDAP server for tests: slapd with an mdb database in a temp dir on a free
//! loopback port, seeded with users under ou=people and groups under ou=groups.
//!
//! [`Slapd::shared`] starts one per test binary (slapd takes ~1.5 s to stop on SIGTERM, so
//! starting one per test would be slow); [`Slapd::start`] starts a private one a test may
//! kill. Either way the watchdog in `server.rs` stops it when the test process ends.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::certificates::make_certificates;
use crate::free_local_port;
use crate::server::{ServerProcess, require_binary, run_checked};

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=test";
/// The directory administrator (slapd's rootdn), used only to seed the directory.
pub const ROOT_DN: &str = "cn=root,dc=example,dc=test";
/// The administrator's password.
pub const ROOT_PASSWORD: &str = "root-secret";
/// The service account the backend searches with; may read people and groups, nothing else.
pub const SERVICE_DN: &str = "cn=mfv-service,ou=services,dc=example,dc=test";
/// The service account's password.
pub const SERVICE_PASSWORD: &str = "service-secret";
/// Where the users are.
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=test";
/// Where the groups are.
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=test";

/// A user in the seeded directory.
#[derive(Debug, Clone)]
pub struct DirectoryUser {
    /// The `uid`.
    pub uid: &'static str,
    /// The `cn`.
    pub display_name: &'static str,
    /// The password (stored by slapd as {SSHA}).
    pub password: String,
    /// The `cn`s of the groups under ou=groups the user is a member of.
    pub groups: &'static [&'static str],
}

impl DirectoryUser {
    /// The user's DN.
    pub fn dn(&self) -> String {
        format!("uid={},{PEOPLE_DN}", self.uid)
    }
}

/// A password of exactly 4096 bytes (the longest the crate accepts), mostly two-byte UTF-8.
pub fn longest_password() -> String {
    // 2047 two-byte characters and two ASCII ones.
    "ü".repeat(2047) + "!x"
}

/// The seeded users. `alice` is in mfv-admins and mfv-viewers (the higher role wins), `dave`
/// in no group (no access), `joerg` has a Unicode display name and password, `erin` the
/// longest password.
pub fn users() -> Vec<DirectoryUser> {
    vec![
        DirectoryUser {
            uid: "alice",
            display_name: "Alice Admin",
            password: "alice-password-1".into(),
            groups: &["mfv-admins", "mfv-viewers"],
        },
        DirectoryUser {
            uid: "bob",
            display_name: "Bob Operator",
            password: "bob-password-2".into(),
            groups: &["mfv-operators"],
        },
        DirectoryUser {
            uid: "carol",
            display_name: "Carol Viewer",
            password: "carol-password-3".into(),
            groups: &["mfv-viewers"],
        },
        DirectoryUser {
            uid: "dave",
            display_name: "Dave Nogroup",
            password: "dave-password-4".into(),
            groups: &[],
        },
        DirectoryUser {
            uid: "erin",
            display_name: "Erin Longpass",
            password: longest_password(),
            groups: &["mfv-operators"],
        },
        DirectoryUser {
            uid: "joerg",
            display_name: "Jörg Ødegård 山田 🚀",
            password: "Jörg-пароль-密码-🔑".into(),
            groups: &["mfv-viewers"],
        },
    ]
}

/// The seeded groupOfNames groups under ou=groups.
pub const GROUPS: [&str; 3] = ["mfv-admins", "mfv-operators", "mfv-viewers"];

/// A posixGroup under ou=groups listing `bob` and `joerg` by user name in `memberUid`.
pub const POSIX_GROUP: &str = "mfv-posix-operators";

/// A running private slapd.
#[derive(Debug)]
pub struct Slapd {
    process: ServerProcess,
    port: u16,
    ldaps_port: u16,
}

impl Slapd {
    /// The slapd shared by every test of this binary, started on first use.
    pub fn shared() -> &'static Slapd {
        static SHARED: OnceLock<Slapd> = OnceLock::new();
        SHARED.get_or_init(|| match Slapd::start() {
            Ok(slapd) => slapd,
            Err(error) => panic!("starting the test slapd: {error:#}"),
        })
    }

    /// Starts a private slapd and seeds it. It serves plain LDAP (with StartTLS) on one port
    /// and LDAPS on another, with a certificate for 127.0.0.1 signed by a test CA.
    pub fn start() -> Result<Slapd> {
        let slapd = require_binary("slapd", "slapd")?;
        require_binary("ldapadd", "ldap-utils")?;
        let port = free_local_port()?;
        let ldaps_port = free_local_port()?;
        let mut process = ServerProcess::new("slapd", |dir| {
            let args = vec![
                "-f".to_owned(),
                dir.join("slapd.conf").display().to_string(),
                "-h".to_owned(),
                format!("ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"),
                "-d".to_owned(),
                "0".to_owned(),
            ];
            (slapd, args)
        })?;
        let dir = process.dir().to_owned();
        let database = dir.join("db");
        fs::create_dir(&database).with_context(|| format!("creating {}", database.display()))?;
        make_certificates(&dir)?;
        let config = dir.join("slapd.conf");
        fs::write(&config, slapd_conf(&dir))
            .with_context(|| format!("writing {}", config.display()))?;
        process.start()?;
        process.wait_for_port(port, Duration::from_secs(10))?;
        process.wait_for_port(ldaps_port, Duration::from_secs(10))?;
        let slapd = Slapd {
            process,
            port,
            ldaps_port,
        };
        slapd.seed()?;
        Ok(slapd)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_certificate(&self) -> PathBuf {
        self.process.dir().join("ca.pem")
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The port slapd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills slapd at once, as if the server crashed.
    pub fn kill(&mut self) -> Result<()> {
        self.process.kill()
    }

    /// Adds the entries, then sets every password with the Password Modify operation, so
    /// slapd stores them hashed ({SSHA}) as a real directory would.
    fn seed(&self) -> Result<()> {
        let ldif = self.process.dir().join("seed.ldif");
        fs::write(&ldif, seed_ldif()).with_context(|| format!("writing {}", ldif.display()))?;
        run_checked(self.as_root("ldapadd").arg("-f").arg(&ldif))?;
        let accounts = users()
            .into_iter()
            .map(|user| (user.dn(), user.password))
            .chain([(SERVICE_DN.to_owned(), SERVICE_PASSWORD.to_owned())]);
        let password_file = self.process.dir().join("password");
        for (dn, password) in accounts {
            fs::write(&password_file, &password)
                .with_context(|| format!("writing {}", password_file.display()))?;
            run_checked(
                self.as_root("ldappasswd")
                    .arg("-T")
                    .arg(&password_file)
                    .arg(&dn),
            )?;
        }
        Ok(())
    }

    /// An ldap-utils `tool` bound to this server as the directory administrator.
    fn as_root(&self, tool: &str) -> Command {
        let mut command = Command::new(tool);
        command.args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD]);
        command
    }
}

/// slapd.conf: the standard schemas, an mdb database with the password policy overlay (for
/// `pwdAccountLockedTime`, which marks an account locked; with no default policy slapd itself
/// still lets such an account bind), and access rules like a production directory's:
/// passwords are only usable for binding, people and groups readable by authenticated users
/// only (so the backend must bind as its service account to search). `allow bind_anon_dn`
/// makes it as lax as the directories that accept a bind with a DN and an empty password as
/// an anonymous ("unauthenticated") bind: the backend must never send one.
fn slapd_conf(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
allow bind_anon_dn
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
database mdb
maxsize 16777216
suffix \"{SUFFIX}\"
rootdn \"{ROOT_DN}\"
rootpw {ROOT_PASSWORD}
directory {dir}/db
overlay ppolicy
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by users read
  by * none
"
    )
}

/// The entries: the suffix, ou=people, ou=services, ou=groups, the users, the service
/// account and the groups (each group lists its members' DNs in `member`).
fn seed_ldif() -> String {
    let mut ldif = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: mfv-service\nuserPassword: placeholder-replaced-by-ldappasswd\n\n"
    );
    let users = users();
    for (number, user) in users.iter().enumerate() {
        let uid_number = 10_000 + number;
        // Display names may be non-ASCII: LDIF takes those base64-encoded (`cn:: ...`).
        let cn = base64(user.display_name.as_bytes());
        let _ = write!(
            ldif,
            "dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: {uid}\n\
             cn:: {cn}\nsn: {uid}\nuidNumber: {uid_number}\ngidNumber: {uid_number}\n\
             homeDirectory: /home/{uid}\n\n",
            dn = user.dn(),
            uid = user.uid,
        );
    }
    for group in GROUPS {
        let _ = write!(
            ldif,
            "dn: cn={group},{GROUPS_DN}\nobjectClass: groupOfNames\ncn: {group}\n"
        );
        for user in users.iter().filter(|user| user.groups.contains(&group)) {
            let _ = writeln!(ldif, "member: {}", user.dn());
        }
        ldif.push('\n');
    }
    let _ = write!(
        ldif,
        "dn: cn={POSIX_GROUP},{GROUPS_DN}\nobjectClass: posixGroup\ncn: {POSIX_GROUP}\n\
         gidNumber: 5000\nmemberUid: bob\nmemberUid: joerg\n\n"
    );
    ldif
}

/// Standard base64 with padding (RFC 4648), for LDIF values.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
