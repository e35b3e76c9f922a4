//! Deadlines from durations a user chose.

use std::time::Duration;

/// About a century: as good as never, and far from where an `Instant`
/// overflows.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `d`, at most about a century. Every deadline made from a duration the
/// user set goes through this: `Duration::MAX` is how one says "for ever",
/// and `Instant::now() + Duration::MAX` panics.
pub(crate) fn capped(d: Duration) -> Duration {
    d.min(FOREVER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_duration_makes_a_deadline() {
        let now = std::time::Instant::now();
        assert!(now + capped(Duration::MAX) > now + Duration::from_secs(86_400 * 365 * 99));
        assert_eq!(capped(Duration::from_secs(5)), Duration::from_secs(5));
        let _ = tokio::time::Instant::now() + capped(Duration::MAX);
    }
}
