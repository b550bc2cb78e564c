//! The migrations are embedded at compile time: a new or edited migration must rebuild this
//! crate, which cargo would not otherwise notice.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
