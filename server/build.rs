//! Rebuilds the server (whose migrations are embedded by `sqlx::migrate!`)
//! when a migration is added or changed.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
