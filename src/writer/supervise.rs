//! The writer across reloads: a SIGHUP that changes writer settings replaces the
//! running writer, and its counters, spooled lines and settings carry over.
//!
//! [`Writers`] is what the engine holds: the live [`WriterHandle`] plus the books of
//! the writers a reload retired. The decisions (how long the old writer may flush,
//! which spool mode the new one gets, how the counters add up) are pure functions,
//! tested below without a writer.

use std::time::Duration;

use super::{SpoolMode, WriterError, WriterHandle};
use crate::config::Config;
use crate::model::{WriterState, WriterStats};

/// The live writer and the books of the ones it replaced.
pub struct Writers {
    live: WriterHandle,
    /// How the first writer was started; restarts derive theirs from it.
    mode: SpoolMode,
    /// The settings the live writer was built from.
    config: Box<Config>,
    /// Final counters of writers a reload replaced; they keep counting.
    retired: Vec<WriterStats>,
    /// Lines the replaced writers left in the spool: the next writer finds them
    /// again (`lines_recovered`), so they are not counted twice.
    handed_over: u64,
    /// Off changes only with a reload; the engine skips encoding lines nobody sends.
    off: bool,
}

impl Writers {
    pub fn start(config: &Config, mode: SpoolMode) -> Result<Self, WriterError> {
        let live = WriterHandle::start_with_spool(config, mode.clone())?;
        let off = is_off(&live);
        Ok(Self {
            live,
            mode,
            config: Box::new(config.clone()),
            retired: Vec::new(),
            handed_over: 0,
            off,
        })
    }

    /// The live writer (cheap to clone).
    pub fn handle(&self) -> &WriterHandle {
        &self.live
    }

    pub fn is_off(&self) -> bool {
        self.off
    }

    /// The live writer's counters plus those of the writers it replaced.
    pub fn stats(&self) -> WriterStats {
        self.combined(self.live.stats())
    }

    /// `last` (a reading of the live writer) plus the retired writers' counters.
    pub fn combined(&self, last: WriterStats) -> WriterStats {
        combine(last, &self.retired, self.handed_over)
    }

    /// Stops the live writer (what it cannot send in time goes to its spool, which
    /// the next writer replays) and starts one from `config`; if that fails, one
    /// from the settings before; if that fails too, one that is off. The caller
    /// enqueues nothing meanwhile, so no line falls between the two.
    pub async fn restart(&mut self, config: &Config, flush_timeout: Duration) {
        let old = self
            .live
            .clone()
            .shutdown(restart_timeout(&self.mode, flush_timeout))
            .await;
        if old.queue_depth > 0 {
            tracing::warn!(
                "{} lines dropped at the reload: the writer being replaced could neither send nor spool them",
                old.queue_depth
            );
        }
        self.handed_over += old.spooled();
        self.retired.push(retire(old));
        let mode = restart_mode(&self.mode);
        let (live, used) = self.start_next(config, mode);
        self.live = live;
        *self.config = used;
        self.off = is_off(&self.live);
    }

    /// The next writer: from `config`, else the previous settings, else off.
    fn start_next(&self, config: &Config, mode: SpoolMode) -> (WriterHandle, Config) {
        let start = |c: &Config, m: SpoolMode| {
            crate::spool::off_async(|| WriterHandle::start_with_spool(c, m))
        };
        match start(config, mode.clone()) {
            Ok(w) => {
                tracing::info!("writer restarted with the reloaded settings");
                return (w, config.clone());
            }
            Err(e) => tracing::error!(
                "reloaded writer settings not applied ({e}); back to the previous ones"
            ),
        }
        let prev = (*self.config).clone();
        match start(&prev, mode) {
            Ok(w) => (w, prev),
            Err(e) => {
                tracing::error!(
                    "writer could not be restarted: {e}; lines are not sent until the next reload"
                );
                let off = without_outputs(prev);
                let w = WriterHandle::start(&off).unwrap_or_else(|_| self.live.clone());
                (w, off)
            }
        }
    }
}

fn is_off(w: &WriterHandle) -> bool {
    matches!(w.stats().state, WriterState::Off { .. })
}

/// With a spool the rest is safe on disk: the writer being replaced need not wait long.
pub fn restart_timeout(mode: &SpoolMode, flush_timeout: Duration) -> Duration {
    match mode {
        SpoolMode::Off => flush_timeout,
        _ => flush_timeout.min(Duration::from_secs(2)),
    }
}

/// A spool problem after a reload must not leave the service without a writer: a
/// spool still locked (the old writer's lock not yet gone) or unusable is tried
/// again until it opens, not given up.
pub fn restart_mode(mode: &SpoolMode) -> SpoolMode {
    match mode {
        SpoolMode::Required(c) | SpoolMode::Retry(c) => SpoolMode::Retry(c.clone()),
        other => other.clone(),
    }
}

/// The final books of a replaced writer: its queue is gone, so what was still
/// queued counts as dropped.
pub fn retire(old: WriterStats) -> WriterStats {
    WriterStats {
        lines_dropped: old.lines_dropped + old.queue_depth as u64,
        queue_depth: 0,
        ..old
    }
}

/// `live` plus the counters of `retired` writers. Until the new writer has its spool
/// open, the lines handed over wait on disk uncounted: `unaccounted` says so meanwhile.
pub fn combine(mut live: WriterStats, retired: &[WriterStats], handed_over: u64) -> WriterStats {
    let mut recovered = live.lines_recovered;
    for o in retired {
        recovered += o.lines_recovered;
        live.lines_queued += o.lines_queued;
        live.lines_written += o.lines_written;
        live.lines_dropped += o.lines_dropped;
        live.lines_rejected += o.lines_rejected;
        live.write_retries += o.write_retries;
    }
    live.lines_recovered = recovered.saturating_sub(handed_over);
    live
}

/// The same settings with nowhere to write: the writer that is off.
fn without_outputs(mut c: Config) -> Config {
    c.influx.url = None;
    c.run.output = None;
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::SpoolConfig;

    fn spool() -> SpoolConfig {
        SpoolConfig::with_dir(std::path::PathBuf::from("/nonexistent/spool"))
    }

    fn stats(queued: u64, written: u64, dropped: u64, depth: usize) -> WriterStats {
        WriterStats {
            lines_queued: queued,
            lines_written: written,
            lines_dropped: dropped,
            queue_depth: depth,
            ..WriterStats::off("test")
        }
    }

    #[test]
    fn a_spooled_writer_is_given_at_most_two_seconds() {
        let long = Duration::from_secs(30);
        assert_eq!(restart_timeout(&SpoolMode::Off, long), long);
        let with = SpoolMode::Required(spool());
        assert_eq!(restart_timeout(&with, long), Duration::from_secs(2));
        let short = Duration::from_millis(500);
        assert_eq!(restart_timeout(&with, short), short);
    }

    #[test]
    fn a_required_spool_is_retried_after_a_reload() {
        assert!(matches!(
            restart_mode(&SpoolMode::Required(spool())),
            SpoolMode::Retry(_)
        ));
        assert!(matches!(
            restart_mode(&SpoolMode::Retry(spool())),
            SpoolMode::Retry(_)
        ));
        assert!(matches!(
            restart_mode(&SpoolMode::BestEffort(spool())),
            SpoolMode::BestEffort(_)
        ));
        assert!(matches!(restart_mode(&SpoolMode::Off), SpoolMode::Off));
    }

    #[test]
    fn lines_left_in_a_retired_queue_count_as_dropped() {
        let r = retire(stats(10, 4, 1, 5));
        assert_eq!((r.lines_dropped, r.queue_depth), (6, 0));
        assert_eq!((r.lines_queued, r.lines_written), (10, 4));
    }

    #[test]
    fn counters_add_up_and_handed_over_lines_are_not_recovered_twice() {
        let mut live = stats(3, 2, 0, 1);
        live.lines_recovered = 7;
        let mut old = stats(10, 4, 6, 0);
        old.lines_recovered = 1;
        old.write_retries = 2;
        let c = combine(live, &[old], 7);
        assert_eq!(
            (c.lines_queued, c.lines_written, c.lines_dropped),
            (13, 6, 6)
        );
        assert_eq!(
            (c.lines_recovered, c.write_retries, c.queue_depth),
            (1, 2, 1)
        );
    }

    #[test]
    fn the_fallback_writer_has_nowhere_to_write() {
        let mut c = Config::default();
        c.influx.url = url::Url::parse("http://127.0.0.1:1").ok();
        c.run.output = Some(crate::config::OutputTarget::Stdout);
        let off = without_outputs(c);
        assert!(off.influx.url.is_none() && off.run.output.is_none());
    }

    #[tokio::test]
    async fn a_reload_to_a_writer_that_cannot_start_keeps_the_previous_settings() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Config::default();
        first.run.output = Some(crate::config::OutputTarget::File(dir.path().join("a.lp")));
        let mut w = Writers::start(&first, SpoolMode::Off).unwrap();
        assert!(!w.is_off());
        w.handle().enqueue(vec!["m v=1i 1".into()]);
        let mut bad = first.clone();
        // A directory cannot be opened as the output file.
        bad.run.output = Some(crate::config::OutputTarget::File(dir.path().to_path_buf()));
        w.restart(&bad, Duration::from_secs(2)).await;
        assert!(!w.is_off(), "back on the previous output");
        assert_eq!(*w.config, first);
        w.handle().enqueue(vec!["m v=2i 2".into()]);
        let s = w.combined(w.handle().clone().shutdown(Duration::from_secs(2)).await);
        assert_eq!((s.lines_queued, s.lines_written), (2, 2));
        let text = std::fs::read_to_string(dir.path().join("a.lp")).unwrap();
        assert_eq!(text, "m v=1i 1\nm v=2i 2\n");
    }
}
