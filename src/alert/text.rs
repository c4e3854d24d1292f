//! The one log line of an alert transition (pure).

use super::AlertEvent;

/// `alert raised: VM 'web-1' (uuid) cpu_steal_percent warning: 25 (threshold 20)`, and
/// the same words for a level change and a clear.
pub fn log_line(e: &AlertEvent) -> String {
    let what = format!("VM '{}' ({}) {}", e.vm, e.uuid, e.metric);
    let value = format!("{} (threshold {})", number(e.value), number(e.threshold));
    match (e.previous, e.level) {
        (None, Some(l)) => format!("alert raised: {what} {}: {value}", l.as_str()),
        (Some(p), Some(l)) => format!(
            "alert level changed: {what} {} -> {}: {value}",
            p.as_str(),
            l.as_str()
        ),
        (Some(p), None) => format!(
            "alert cleared: {what} was {} (threshold {}), now {}",
            p.as_str(),
            number(e.threshold),
            number(e.value)
        ),
        (None, None) => format!("alert unchanged: {what}"),
    }
}

/// A value as people read it: at most two decimals, no trailing zeros.
pub fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AlertLevel;

    #[test]
    fn each_transition_is_one_line_that_names_vm_metric_level_and_value() {
        let mut e = AlertEvent::example();
        assert_eq!(
            log_line(&e),
            "alert raised: VM 'web-1' (u-1) cpu_steal_percent warning: 25.5 (threshold 20)"
        );
        e.previous = Some(AlertLevel::Warning);
        e.level = Some(AlertLevel::Critical);
        assert!(log_line(&e).contains("warning -> critical"));
        e.level = None;
        e.value = 1.0;
        let line = log_line(&e);
        assert!(
            line.starts_with("alert cleared:") && line.ends_with("now 1"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
