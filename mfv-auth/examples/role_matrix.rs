//! Prints which role has which permission: `cargo run -p mfv-auth --example role_matrix`.
//! With user names as arguments, also says whether each is a valid user name.

use std::process::ExitCode;

use mfv_auth::{Permission, Role, Username};

fn main() -> ExitCode {
    let mut header = format!("{:<16}", "PERMISSION");
    for role in Role::ALL {
        header.push_str(&format!(" {:<9}", role.as_str()));
    }
    println!("{}", header.trim_end());
    for permission in Permission::ALL {
        let mut row = format!("{:<16}", permission.as_str());
        for role in Role::ALL {
            let cell = if role.allows(permission) { "yes" } else { "-" };
            row.push_str(&format!(" {cell:<9}"));
        }
        println!("{}", row.trim_end());
    }

    let mut all_valid = true;
    for name in std::env::args().skip(1) {
        match Username::new(name) {
            Ok(username) => println!("{username}: valid user name"),
            Err(error) => {
                all_valid = false;
                println!("{error}");
            }
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
