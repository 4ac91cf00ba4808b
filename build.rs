// Embeds templates/ into the binary, so Ladder runs from any directory.
fn main() {
    // sqlx::migrate! embeds migrations/; rebuild when a migration is added or changed.
    println!("cargo:rerun-if-changed=migrations");
    minijinja_embed::embed_templates!("templates");
}
