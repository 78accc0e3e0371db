//! Capped exponential backoff with jitter, so reconnects never spin and many clients never
//! retry in step.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            attempt: 0,
        }
    }

    /// After progress: the next failure waits the initial delay again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The ceiling of the next delay: initial × 2^attempt, capped.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The next delay: uniformly between half the ceiling and the ceiling ("equal jitter").
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// The delay when the server said `Retry-After` (429 under API Priority and Fairness, 503):
    /// its value, as client-go waits it, plus up to 5% jitter so that many clients do not come
    /// back in step; capped at the maximum delay, at least the initial one (a `Retry-After: 0`
    /// does not spin). The backoff does not grow meanwhile: the server said when, and once it
    /// lets us in, a later failure starts from the initial delay again.
    pub fn after_server_hint(&mut self, retry_after: Duration) -> Duration {
        let hint = retry_after.clamp(self.initial, self.max);
        hint + hint.mul_f64(0.05 * fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(2));
            assert!(*d >= ceiling / 2 && *d <= ceiling, "attempt {i}: {d:?}");
        }
        assert!(delays[9] >= Duration::from_secs(1));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn never_zero_and_never_overflows() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(30));
        for _ in 0..1000 {
            let d = b.next_delay();
            assert!(d >= Duration::from_millis(5) && d <= Duration::from_secs(30));
        }
    }

    #[test]
    fn honours_retry_after() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(30));
        for _ in 0..6 {
            let d = b.after_server_hint(Duration::from_secs(3));
            assert!(
                d >= Duration::from_secs(3) && d <= Duration::from_millis(3150),
                "{d:?}"
            );
        }
        // The hints did not advance the backoff.
        assert!(b.next_delay() <= Duration::from_millis(10));
        // Retry-After: 0 does not spin.
        assert!(b.after_server_hint(Duration::ZERO) >= Duration::from_millis(10));
        let d = b.after_server_hint(Duration::from_secs(3600));
        assert!(d <= Duration::from_millis(31500), "capped: {d:?}");
    }
}
