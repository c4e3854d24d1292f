//! The checker that keeps ARCHITECTURE.md true is itself tested: on a copy of the
//! map and `src/`, each planted violation (an import of a room on a floor above,
//! from a `mod.rs`-less root too; a forbidden crate; a module off the map; a room
//! gone) must make `scripts/check-docs.sh` fail, and the untouched copy must pass.

use std::process::Command;

#[test]
fn check_docs_catches_every_planted_violation() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/check-docs.sh"))
        .arg("--self-test")
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for case in [
        "climb from a mod.rs-less root",
        "climb inside a room",
        "config reaching for an encoder",
        "a cycle: schema back into config",
        "the writer reaching for a frontend",
        "an encoder doing I/O",
        "never-imports in a mod.rs-less root",
        "a room not on the map",
        "a room gone",
    ] {
        assert!(
            text.contains(&format!("self-test '{case}': caught")),
            "{case}: {text}"
        );
    }
}
