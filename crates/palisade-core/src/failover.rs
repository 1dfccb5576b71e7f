//! Collector failover: which collector monitors a device right now.
//!
//! A device is *assigned* a collector (its own `preferredCollectorId`, else the nearest
//! group's default). When that collector is down — registered but silent for longer than
//! the down threshold — or suspended, its devices move:
//!
//! 1. to its backup collector (`backupAgentId`) if that one is up;
//! 2. otherwise to the up collectors of the same collector group, spread over them by
//!    device id so that each takes a share and the choice is the same on every portal
//!    instance;
//! 3. otherwise nowhere: the device stays with its assigned collector (its data stops and
//!    the collector shows as down).
//!
//! Nothing is stored: the choice is recomputed from heartbeats, so devices return to their
//! assigned collector as soon as it heartbeats again (fail-back). A collector's own host
//! device never moves: another collector would read its own host instead.

/// What failover needs to know of one collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorState {
    /// Id.
    pub id: i64,
    /// Collector group (0: none).
    pub group_id: i64,
    /// Backup collector (0: none).
    pub backup_id: i64,
    /// Health.
    pub health: Health,
}

/// A collector's health, for failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Heartbeating.
    Up,
    /// Not registered yet: never moves its devices (it has not failed, it has not started).
    Unregistered,
    /// Registered and silent past the threshold.
    Down,
    /// Suspended by an administrator.
    Suspended,
}

impl Health {
    /// From the last heartbeat and registration times (epoch ms).
    pub fn of(
        registered_on: Option<i64>,
        last_heartbeat: Option<i64>,
        suspended: bool,
        now: i64,
        down_after_ms: i64,
    ) -> Health {
        if suspended {
            return Health::Suspended;
        }
        let Some(registered) = registered_on else {
            return Health::Unregistered;
        };
        // A collector that registered a moment ago has not had time to heartbeat.
        let last = last_heartbeat.unwrap_or(registered).max(registered);
        if now - last <= down_after_ms {
            Health::Up
        } else {
            Health::Down
        }
    }

    fn failed(self) -> bool {
        matches!(self, Health::Down | Health::Suspended)
    }
}

/// The collector that monitors a device now (0: none).
///
/// `assigned` is the configured collector; `pinned` is true for a collector's own host
/// device, which never moves.
pub fn effective(
    assigned: i64,
    device_id: i64,
    pinned: bool,
    collectors: &[CollectorState],
) -> i64 {
    if assigned == 0 || pinned {
        return assigned;
    }
    let Some(own) = collectors.iter().find(|c| c.id == assigned) else {
        return assigned;
    };
    if !own.health.failed() {
        return assigned;
    }
    let up = |id: i64| {
        collectors
            .iter()
            .any(|c| c.id == id && c.health == Health::Up)
    };
    if own.backup_id != 0 && own.backup_id != assigned && up(own.backup_id) {
        return own.backup_id;
    }
    if own.group_id == 0 {
        return assigned;
    }
    let mut peers: Vec<i64> = collectors
        .iter()
        .filter(|c| c.group_id == own.group_id && c.id != assigned && c.health == Health::Up)
        .map(|c| c.id)
        .collect();
    if peers.is_empty() {
        return assigned;
    }
    peers.sort_unstable();
    let slot = device_id.rem_euclid(peers.len() as i64) as usize;
    peers.get(slot).copied().unwrap_or(assigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: i64, group_id: i64, backup_id: i64, health: Health) -> CollectorState {
        CollectorState {
            id,
            group_id,
            backup_id,
            health,
        }
    }

    #[test]
    fn health_from_times() {
        let m = 180_000;
        assert_eq!(
            Health::of(None, None, false, 1_000_000, m),
            Health::Unregistered
        );
        assert_eq!(Health::of(Some(1), None, true, 2, m), Health::Suspended);
        // Just registered, no heartbeat yet: up for the grace period, then down.
        assert_eq!(Health::of(Some(1_000), None, false, 100_000, m), Health::Up);
        assert_eq!(
            Health::of(Some(1_000), None, false, 500_000, m),
            Health::Down
        );
        assert_eq!(
            Health::of(Some(1), Some(400_000), false, 500_000, m),
            Health::Up
        );
        assert_eq!(
            Health::of(Some(1), Some(100_000), false, 500_000, m),
            Health::Down
        );
    }

    #[test]
    fn up_collector_keeps_its_devices() {
        let all = [c(1, 5, 0, Health::Up), c(2, 5, 0, Health::Up)];
        for d in 0..10 {
            assert_eq!(effective(1, d, false, &all), 1);
        }
    }

    #[test]
    fn down_collector_spreads_over_its_group_and_comes_back() {
        let mut all = vec![
            c(1, 5, 0, Health::Down),
            c(2, 5, 0, Health::Up),
            c(3, 5, 0, Health::Up),
            c(4, 6, 0, Health::Up),
            c(9, 5, 0, Health::Down),
        ];
        let moved: Vec<i64> = (0..6).map(|d| effective(1, d, false, &all)).collect();
        assert_eq!(moved, vec![2, 3, 2, 3, 2, 3], "only up peers of group 5");
        all[0].health = Health::Up;
        assert!(
            (0..6).all(|d| effective(1, d, false, &all) == 1),
            "fail-back"
        );
        all[0].health = Health::Suspended;
        assert_eq!(effective(1, 0, false, &all), 2);
    }

    #[test]
    fn backup_first_then_group_then_nowhere() {
        let all = [
            c(1, 5, 3, Health::Down),
            c(2, 5, 0, Health::Up),
            c(3, 7, 0, Health::Up),
        ];
        assert_eq!(
            effective(1, 0, false, &all),
            3,
            "backup even in another group"
        );
        let all = [
            c(1, 5, 3, Health::Down),
            c(2, 5, 0, Health::Up),
            c(3, 7, 0, Health::Down),
        ];
        assert_eq!(effective(1, 0, false, &all), 2, "backup down: the group");
        let all = [c(1, 0, 0, Health::Down), c(2, 0, 0, Health::Up)];
        assert_eq!(
            effective(1, 0, false, &all),
            1,
            "no group, no backup: stays"
        );
        let all = [c(1, 5, 0, Health::Down), c(2, 5, 0, Health::Down)];
        assert_eq!(effective(1, 0, false, &all), 1, "nobody up: stays");
    }

    #[test]
    fn unregistered_pinned_and_unknown_never_move() {
        let all = [c(1, 5, 0, Health::Unregistered), c(2, 5, 0, Health::Up)];
        assert_eq!(effective(1, 3, false, &all), 1);
        let all = [c(1, 5, 0, Health::Down), c(2, 5, 0, Health::Up)];
        assert_eq!(
            effective(1, 3, true, &all),
            1,
            "a collector's own host stays"
        );
        assert_eq!(effective(8, 3, false, &all), 8, "unknown collector");
        assert_eq!(effective(0, 3, false, &all), 0);
    }
}
