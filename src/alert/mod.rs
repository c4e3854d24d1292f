//! Alerts with levels (pure): `rules.rs` says which levels apply to a VM (the
//! configured ones and the matching overrides) and which level its value reaches;
//! `machine.rs` is the per VM × metric state machine that raises, changes and clears
//! alerts once a level held `alerts.min_duration`; `text.rs` the one log line of a
//! transition. The engine owns a [`Tracker`] and publishes its [`AlertBoard`] in
//! every snapshot; frontends only read that.
//!
//! [`AlertBoard`]: crate::model::AlertBoard

pub mod machine;
pub mod rules;
pub mod text;

pub use machine::{AlertEvent, Tracker};
pub use rules::Rules;
