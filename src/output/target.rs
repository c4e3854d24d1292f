//! Whether `--output` already holds rows (I/O: one `stat`).

use crate::config::OutputTarget;

/// Whether `--output` is a file that already holds something (then a CSV header
/// is not written again: appending runs must give one table). I/O: one `stat`.
pub fn appends_to_rows(target: Option<&OutputTarget>) -> bool {
    match target {
        Some(OutputTarget::File(p)) => std::fs::metadata(p).is_ok_and(|m| m.len() > 0),
        _ => false,
    }
}
