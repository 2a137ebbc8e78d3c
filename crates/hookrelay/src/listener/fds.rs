//! Descriptor headroom: the process's open-file limit is raised to what the system allows, and
//! the connection cap is kept far enough below it that the database, the delivery engine's
//! outbound connections and the listener itself always have descriptors left.

/// Asked for when raising the limit: more than any cap here needs, and at or under Linux's
/// default `fs.nr_open`, which `setrlimit` may not exceed even with an unlimited hard limit.
const WANTED: u64 = 1 << 20;

/// Raises the soft `RLIMIT_NOFILE` towards the hard one (systemd and most shells start
/// services at a soft 1024 with a far larger hard limit) and returns the soft limit in force;
/// `None` where the platform has none.
pub fn raise_nofile_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(WANTED) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The connection cap in effect: `configured`, lowered if need be so that `reserve`
/// descriptors stay free under `limit`, and never below a handful.
pub fn effective_cap(configured: usize, limit: Option<u64>, reserve: u64) -> usize {
    const FLOOR: usize = 16;
    let Some(limit) = limit else {
        return configured;
    };
    let room = usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX);
    configured.min(room).max(FLOOR.min(configured))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_under_the_descriptor_limit() {
        assert_eq!(effective_cap(4096, Some(1_048_576), 400), 4096);
        assert_eq!(effective_cap(4096, Some(1024), 400), 624);
        assert_eq!(effective_cap(4096, Some(100), 400), 16);
        assert_eq!(effective_cap(8, Some(100), 400), 8);
        assert_eq!(effective_cap(4096, None, 400), 4096);
    }

    #[test]
    fn raising_leaves_a_usable_limit() {
        let limit = raise_nofile_limit();
        if let Some(limit) = limit {
            assert!(limit >= 64, "{limit}");
        }
    }
}
