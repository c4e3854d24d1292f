//! The one fixture builder for tests, benches and examples: a running VM's
//! [`RawDomain`] and its [`VmSnapshot`], with the plain values every fixture shares.
//! Callers change what their case is about with struct update syntax:
//! `RawDomain { vcpus: Some(4), ..fixtures::raw("web", UUID) }`.
//!
//! Compiled into the library (it is small and pure) because integration tests,
//! benches and examples link the library without `cfg(test)`.

use std::time::Instant;

use crate::model::{DomainState, RawDomain, VmSnapshot};

/// 2023-11-14T22:13:20Z in ns since the Unix epoch: the fixtures' sample time.
pub const WALL_NS: i64 = 1_700_000_000_000_000_000;

/// A running VM with runtime ID 1, one vCPU and no counters, sampled now at [`WALL_NS`].
pub fn raw(name: &str, uuid: &str) -> RawDomain {
    RawDomain {
        state: DomainState::Running,
        state_reason: 1,
        vcpus: Some(1),
        ..RawDomain::identity(uuid, Some(1), name, Instant::now(), WALL_NS)
    }
}

/// `raw` as a snapshot with neither memory use nor rates (a first sample).
pub fn vm(raw: RawDomain) -> VmSnapshot {
    VmSnapshot {
        raw,
        memory: None,
        derived: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixture_is_a_running_first_sample() {
        let v = vm(raw("web", "u-1"));
        assert_eq!((v.raw.name.as_str(), v.raw.uuid.as_str()), ("web", "u-1"));
        assert_eq!(
            (v.raw.state, v.raw.id, v.raw.vcpus),
            (DomainState::Running, Some(1), Some(1))
        );
        assert!(v.raw.cpu.is_none() && v.derived.is_none() && v.memory.is_none());
        assert_eq!(v.raw.wall_ns, WALL_NS);
    }
}
