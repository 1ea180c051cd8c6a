// The migrations are embedded at compile time (`refinery::embed_migrations!`): without this, a
// new migration file would not rebuild the crate until some Rust file changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
