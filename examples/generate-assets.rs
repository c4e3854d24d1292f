//! Writes the man page and shell completions generated from the flags into a
//! directory (default `target/assets`), for `scripts/package.sh` and cargo-deb.

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "target/assets".into());
    for path in vmpulse::generate::write_all(&dir)? {
        println!("{}", path.display());
    }
    Ok(())
}
