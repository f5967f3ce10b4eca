//! Roles and the permissions each grants.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a user may do on the host, as a level. Ordered: `Viewer < Operator < Admin`, and a
/// higher role allows everything a lower one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees the host and its VMs; changes nothing.
    Viewer,
    /// Runs VMs: start, stop, consoles, create and delete VMs, storage volumes and ISOs.
    Operator,
    /// Everything, including host network, users, the audit log and host power.
    Admin,
}

/// One kind of action a request performs; each request is checked against exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See the host, VMs, storage and network (read only).
    ViewInventory,
    /// Open a VM's graphical or serial console.
    UseConsole,
    /// Start, shut down, reboot, force off, suspend and resume VMs.
    ControlVms,
    /// Create, change and delete VMs and their snapshots.
    ManageVms,
    /// Create, resize and delete volumes; upload ISOs.
    ManageStorage,
    /// Change the host's addresses, routes, bridges and DNS.
    ManageNetwork,
    /// Add, change and remove users; revoke anyone's sessions and tokens.
    ManageUsers,
    /// Read the audit log.
    ViewAuditLog,
    /// Change host settings and the config store; power off or reboot the host.
    ManageHost,
}

/// A text that names no role or permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a {kind}; expected one of: {expected}")]
pub struct UnknownNameError {
    /// `role` or `permission`.
    pub kind: &'static str,
    /// The text that was parsed.
    pub input: String,
    /// The accepted names, comma separated.
    pub expected: String,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// Whether this role grants `permission`. Admin has every permission.
    pub fn allows(self, permission: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator => matches!(
                permission,
                Permission::ViewInventory
                    | Permission::UseConsole
                    | Permission::ControlVms
                    | Permission::ManageVms
                    | Permission::ManageStorage
            ),
            Role::Viewer => permission == Permission::ViewInventory,
        }
    }

    /// The name used in config files, the CLI and JSON: `admin`, `operator`, `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl Permission {
    /// Every permission, in declaration order.
    pub const ALL: [Permission; 9] = [
        Permission::ViewInventory,
        Permission::UseConsole,
        Permission::ControlVms,
        Permission::ManageVms,
        Permission::ManageStorage,
        Permission::ManageNetwork,
        Permission::ManageUsers,
        Permission::ViewAuditLog,
        Permission::ManageHost,
    ];

    /// The name used in the CLI and JSON, e.g. `control_vms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewInventory => "view_inventory",
            Permission::UseConsole => "use_console",
            Permission::ControlVms => "control_vms",
            Permission::ManageVms => "manage_vms",
            Permission::ManageStorage => "manage_storage",
            Permission::ManageNetwork => "manage_network",
            Permission::ManageUsers => "manage_users",
            Permission::ViewAuditLog => "view_audit_log",
            Permission::ManageHost => "manage_host",
        }
    }
}

/// Finds the value in `all` whose name is `input`.
fn parse_name<T: Copy>(
    input: &str,
    kind: &'static str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, UnknownNameError> {
    all.iter()
        .copied()
        .find(|value| name(*value) == input)
        .ok_or_else(|| UnknownNameError {
            kind,
            input: input.to_owned(),
            expected: all
                .iter()
                .map(|value| name(*value))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl FromStr for Role {
    type Err = UnknownNameError;

    fn from_str(input: &str) -> Result<Self, UnknownNameError> {
        parse_name(input, "role", &Role::ALL, Role::as_str)
    }
}

impl FromStr for Permission {
    type Err = UnknownNameError;

    fn from_str(input: &str) -> Result<Self, UnknownNameError> {
        parse_name(input, "permission", &Permission::ALL, Permission::as_str)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix() {
        let granted = |role: Role| -> Vec<&str> {
            Permission::ALL
                .into_iter()
                .filter(|permission| role.allows(*permission))
                .map(Permission::as_str)
                .collect()
        };
        assert_eq!(granted(Role::Viewer), ["view_inventory"]);
        assert_eq!(
            granted(Role::Operator),
            [
                "view_inventory",
                "use_console",
                "control_vms",
                "manage_vms",
                "manage_storage"
            ]
        );
        assert_eq!(granted(Role::Admin).len(), Permission::ALL.len());
    }

    #[test]
    fn a_higher_role_allows_everything_a_lower_one_does() {
        for lower in Role::ALL {
            for higher in Role::ALL.into_iter().filter(|role| *role >= lower) {
                for permission in Permission::ALL {
                    assert!(
                        !lower.allows(permission) || higher.allows(permission),
                        "{higher} lacks {permission} that {lower} has"
                    );
                }
            }
        }
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }

    #[test]
    fn names_round_trip_through_text_and_json() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        for permission in Permission::ALL {
            assert_eq!(
                permission.to_string().parse::<Permission>().unwrap(),
                permission
            );
            assert_eq!(
                serde_json::to_value(permission).unwrap(),
                permission.as_str()
            );
            let back: Permission = serde_json::from_value(permission.as_str().into()).unwrap();
            assert_eq!(back, permission);
        }
    }

    #[test]
    fn unknown_names_list_the_accepted_ones() {
        assert_eq!(
            "Admin".parse::<Role>().unwrap_err().to_string(),
            "\"Admin\" is not a role; expected one of: viewer, operator, admin"
        );
        let error = "root".parse::<Permission>().unwrap_err();
        assert_eq!(error.kind, "permission");
        assert!(error.to_string().starts_with(
            "\"root\" is not a permission; expected one of: view_inventory, use_console,"
        ));
        assert!(serde_json::from_value::<Role>("superuser".into()).is_err());
    }
}
