//! A leadership term's loops: [`stand_by`] until this replica holds the Lease, [`keep_leading`]
//! while it does, [`step_down`] when the term [`Ended`]. The caller writes only between the first
//! two returning; `keep_leading` returns before any stand-by could take the Lease.

use tokio::time::Instant;

use super::lease::{Acquired, Elector, LeaseApi, encode_positions};
use crate::checkpoint::View;
use crate::frame::{Positions, Scope};
use crate::health::{Health, Standby};
use crate::metrics::{Leadership, Metrics};

/// Waits, not ready to write, until this replica holds the Lease: tries every retry period
/// (with 0–20 % jitter, as client-go). Returns the positions the Lease handed over, or `None`
/// when `shutdown` resolved first.
pub async fn stand_by<L: LeaseApi>(
    elector: &mut Elector<L>,
    health: &Health,
    metrics: &Metrics,
    scopes: &[Scope],
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<Positions> {
    let config = elector.config().clone();
    metrics.leader.set_leader(false);
    for scope in scopes {
        health.set_watching(scope, false);
    }
    let none = Positions::new();
    let mut said = Standby {
        leader: None,
        silent: None,
    };
    let handover = loop {
        let standby = Standby {
            leader: elector.holder().map(str::to_owned),
            silent: elector
                .holder_silent_for()
                .filter(|d| *d > config.retry_period * 2),
        };
        report_standby(&said, &standby, config.lease_duration);
        said = standby.clone();
        health.set_standby(Some(standby));
        let attempt = tokio::select! {
            _ = &mut *shutdown => return None,
            r = elector.try_acquire_or_renew(&none) => r,
        };
        match attempt {
            Ok(Acquired::TookOver(handover)) => {
                if handover.is_empty() {
                    tracing::info!(identity = %config.identity, "became the leader; the Lease held no position: continuing from the output");
                } else {
                    tracing::info!(identity = %config.identity, positions = %encode_positions(&handover), "became the leader; continuing from the newer of the Lease's positions and the output's");
                }
                break handover;
            }
            // Still ours from a term that ended by its renew deadline: our own output is newest.
            Ok(Acquired::Renewed) => {
                tracing::info!(identity = %config.identity, "leading again; continuing from the output");
                break Positions::new();
            }
            Ok(Acquired::Held) => {}
            Err(e) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&e), "cannot read or take the Lease; trying again")
            }
        }
        let pause = config.retry_period.mul_f64(1.0 + 0.2 * fastrand::f64());
        tokio::select! {
            _ = &mut *shutdown => return None,
            _ = tokio::time::sleep(pause) => {}
        }
    };
    health.set_standby(None);
    metrics.leader.set_leader(true);
    metrics.leader.transition(Leadership::Acquired);
    Some(handover)
}

/// Logs what changed while standing by: who leads, and when the leader stops renewing (it may be
/// gone; we take over once the lease runs out), so a failover is never minutes of silence.
fn report_standby(before: &Standby, now: &Standby, lease: std::time::Duration) {
    if now.leader != before.leader
        && let Some(leader) = &now.leader
    {
        tracing::info!(%leader, "standing by; another replica leads");
    }
    if let (Some(leader), Some(silent), None) = (&now.leader, now.silent, before.silent) {
        tracing::warn!(%leader, silent_s = silent.as_secs(), lease_s = lease.as_secs(), "the leader has not renewed the Lease; taking over when its lease runs out unless it renews");
    }
}

/// Renews the Lease every retry period with the write positions; returns when leadership is
/// lost: another replica holds the Lease, or no renewal succeeded within the renew deadline
/// (counted from when the last successful one was sent, so the leader stops before a standby,
/// which waits a whole lease duration from when it saw that renewal, may start).
pub async fn keep_leading<L: LeaseApi>(elector: &mut Elector<L>, checkpoint: View) {
    let config = elector.config().clone();
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(config.retry_period).await;
        let sent = Instant::now();
        let deadline = renewed + config.renew_deadline;
        let positions = checkpoint.positions();
        let attempt = tokio::time::timeout_at(deadline, elector.try_acquire_or_renew(&positions));
        match attempt.await {
            Ok(Ok(Acquired::Renewed | Acquired::TookOver(_))) => renewed = sent,
            Ok(Ok(Acquired::Held)) => {
                tracing::warn!(leader = ?elector.holder(), "another replica holds the Lease");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&e), "cannot renew the Lease; trying again until the renew deadline")
            }
            Err(_) => {}
        }
        if Instant::now() >= renewed + config.renew_deadline {
            tracing::warn!(
                renew_deadline_ms = config.renew_deadline.as_millis() as u64,
                "the Lease was not renewed within the renew deadline"
            );
            return;
        }
    }
}

/// How a term of writing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Shutdown: everything read was written and synced.
    Shutdown,
    /// Leadership was lost: the watches stopped, what they had read was written.
    Lost,
}

/// The end of a term. At shutdown the checkpoint's final positions go into the Lease with an
/// empty holder, so a stand-by takes over at its next retry; a lost term only says so.
pub async fn step_down<L: LeaseApi>(
    elector: &mut Elector<L>,
    metrics: &Metrics,
    checkpoint: &View,
    ended: Ended,
) {
    if ended == Ended::Lost {
        metrics.leader.transition(Leadership::Lost);
        tracing::warn!("stopped writing: no longer the leader; standing by");
        return;
    }
    let positions = checkpoint.positions();
    match elector.release(&positions).await {
        Ok(()) => {
            tracing::info!(positions = %encode_positions(&positions), "released the Lease with the final positions")
        }
        Err(e) => {
            tracing::warn!(error = %crate::telemetry::error_chain(&e), "cannot release the Lease; a standby takes over once it expires")
        }
    }
    metrics.leader.transition(Leadership::Released);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use k8s_openapi::api::coordination::v1::Lease;

    use super::*;
    use crate::leader::ElectionConfig;

    /// The Lease store both candidates share, as the API server keeps it: a resourceVersion
    /// that every write bumps and checks (409 on a stale one).
    #[derive(Default)]
    struct Store {
        lease: Mutex<Option<Lease>>,
        version: Mutex<u64>,
    }

    /// One candidate's view of the store; `cut_off` makes its writes hang (a partition).
    struct Leases {
        store: Arc<Store>,
        cut_off: Arc<AtomicBool>,
    }

    fn conflict() -> kube::Error {
        kube::Error::Api(Box::new(
            serde_json::from_str(r#"{"status":"Failure","reason":"Conflict","code":409}"#).unwrap(),
        ))
    }

    impl Leases {
        fn new(store: &Arc<Store>) -> Self {
            Self {
                store: store.clone(),
                cut_off: Arc::default(),
            }
        }

        async fn store(
            &self,
            mut lease: Lease,
            expected: Option<&str>,
        ) -> Result<Lease, kube::Error> {
            if self.cut_off.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let mut held = self.store.lease.lock().unwrap();
            let current = held
                .as_ref()
                .and_then(|l| l.metadata.resource_version.clone());
            if current.as_deref() != expected {
                return Err(conflict());
            }
            let mut version = self.store.version.lock().unwrap();
            *version += 1;
            lease.metadata.resource_version = Some(version.to_string());
            *held = Some(lease.clone());
            Ok(lease)
        }
    }

    impl LeaseApi for Leases {
        async fn get(&self, _: &str) -> Result<Option<Lease>, kube::Error> {
            Ok(self.store.lease.lock().unwrap().clone())
        }

        async fn create(&self, lease: &Lease) -> Result<Lease, kube::Error> {
            self.store(lease.clone(), None).await
        }

        async fn replace(&self, _: &str, lease: &Lease) -> Result<Lease, kube::Error> {
            let expected = lease.metadata.resource_version.clone();
            self.store(lease.clone(), expected.as_deref()).await
        }
    }

    fn config(identity: &str) -> ElectionConfig {
        ElectionConfig {
            name: "kube-event-logger".into(),
            namespace: "kube-system".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Stands by (never shut down) until `elector` leads; the positions handed over.
    async fn stand_by_until_leading(elector: &mut Elector<Leases>) -> Option<Positions> {
        let never = std::future::pending::<()>();
        tokio::pin!(never);
        let (health, metrics) = (Health::new(&[Scope::All]), Metrics::new());
        stand_by(elector, &health, &metrics, &[Scope::All], &mut never).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_cut_off_from_the_lease_stops_before_a_stand_by_could_take_it() {
        let store = Arc::new(Store::default());
        let leases = Leases::new(&store);
        let cut_off = leases.cut_off.clone();
        let mut a = Elector::with_api(leases, config("a"));
        let start = Instant::now();
        let handover = stand_by_until_leading(&mut a).await;
        assert_eq!(
            handover,
            Some(Positions::new()),
            "a creates the Lease at once"
        );
        assert_eq!(Instant::now(), start);

        // a leads; after three renewals its writes hang (cut off from the API server).
        let positions = View::of(Positions::new());
        let leading = tokio::spawn(async move {
            let cut = async {
                tokio::time::sleep(Duration::from_secs(7)).await;
                cut_off.store(true, Ordering::SeqCst);
            };
            let (_, ()) = tokio::join!(keep_leading(&mut a, positions), cut);
            Instant::now()
        });

        // b stands by and takes the Lease once it has seen no renewal for a lease duration.
        let mut b = Elector::with_api(Leases::new(&store), config("b"));
        let b_task = tokio::spawn(async move {
            stand_by_until_leading(&mut b).await;
            Instant::now()
        });
        let a_stopped = leading.await.unwrap();
        let b_leads = b_task.await.unwrap();
        // The last successful renewal was sent at 6 s: a stops at the renew deadline after it.
        assert_eq!(a_stopped - start, Duration::from_secs(16));
        assert!(
            a_stopped < b_leads,
            "a stopped at {:?}, b led at {:?}",
            a_stopped - start,
            b_leads - start
        );
        // b saw that renewal at most a retry period (+ 20 % jitter) after it was written.
        assert!(
            b_leads - start >= Duration::from_secs(6 + 15),
            "{:?}",
            b_leads - start
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_sees_another_holder_stops_at_once_and_release_hands_over() {
        let store = Arc::new(Store::default());
        let metrics = Metrics::new();
        let mut a = Elector::with_api(Leases::new(&store), config("a"));
        stand_by_until_leading(&mut a).await;
        let mut written = Positions::new();
        written.insert(Scope::All, crate::frame::ResourceVersion::new("42"));
        step_down(
            &mut a,
            &metrics,
            &View::of(written.clone()),
            Ended::Shutdown,
        )
        .await;
        // b takes over at its first try and is handed a's final position.
        let mut b = Elector::with_api(Leases::new(&store), config("b"));
        let start = Instant::now();
        let handover = stand_by_until_leading(&mut b).await;
        assert_eq!(handover, Some(written));
        assert!(Instant::now() - start <= Duration::from_millis(2400));
        // a, renewing, finds b's name in the Lease and stops at its next round.
        let start = Instant::now();
        keep_leading(&mut a, View::of(Positions::new())).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }
}
