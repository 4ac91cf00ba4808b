// Embeds templates/ into the binary, so Ladder runs from any directory.
fn main() {
    minijinja_embed::embed_templates!("templates");
}
