//! Which alert level colours a value on screen (pure): a card's gauge row or a
//! table column shows one or more metrics of the table, and takes the worst
//! active level among them from the snapshot's `AlertBoard`.

use crate::model::{AlertBoard, AlertLevel};

/// The worst active level on this VM among the metrics `shows` says a value stands for.
pub fn worst(board: &AlertBoard, uuid: &str, shows: impl Fn(&str) -> bool) -> Option<AlertLevel> {
    board
        .active
        .iter()
        .filter(|a| a.uuid == uuid && shows(&a.metric))
        .map(|a| a.level)
        .max()
}

/// Whether a card's gauge row (`CPU`, `MEM`, `DISK`, `RX`, `TX`) shows `metric`.
pub fn card_row_shows(label: &str, metric: &str) -> bool {
    match label {
        "CPU" => metric.starts_with("cpu_"),
        "MEM" => metric.starts_with("memory_"),
        "DISK" => metric.starts_with("disk_"),
        "RX" => metric.starts_with("net_rx") || metric == "net_drops_per_sec",
        "TX" => metric.starts_with("net_tx") || metric == "net_drops_per_sec",
        _ => false,
    }
}

/// Whether the VM's state line (card footer, table STATE) shows `metric`.
pub fn state_shows(metric: &str) -> bool {
    metric == "state" || metric == "monitor_stuck"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Alert;
    use std::time::SystemTime;

    fn alert(uuid: &str, metric: &str, level: AlertLevel) -> Alert {
        Alert {
            vm: "vm".into(),
            uuid: uuid.into(),
            metric: metric.into(),
            level,
            value: 1.0,
            threshold: 1.0,
            since: SystemTime::UNIX_EPOCH,
            peak: 1.0,
            peak_level: level,
            cleared: None,
        }
    }

    #[test]
    fn the_worst_level_of_the_metrics_a_value_shows_wins() {
        let board = AlertBoard {
            active: vec![
                alert("a", "cpu_steal_percent", AlertLevel::Careful),
                alert("a", "cpu_usage_percent", AlertLevel::Critical),
                alert("a", "disk_write_latency_ms", AlertLevel::Warning),
                alert("b", "memory_usage_percent", AlertLevel::Warning),
            ],
            recent: Vec::new(),
        };
        let row = |uuid, label| worst(&board, uuid, |m| card_row_shows(label, m));
        assert_eq!(row("a", "CPU"), Some(AlertLevel::Critical));
        assert_eq!(row("a", "DISK"), Some(AlertLevel::Warning));
        assert_eq!(row("a", "MEM"), None);
        assert_eq!(row("b", "MEM"), Some(AlertLevel::Warning));
        assert_eq!(worst(&board, "a", state_shows), None);
    }
}
