//! The Lease protocol: one candidate's view of the Lease ([`observe`], [`verdict`], pure), and
//! its rounds against the API ([`Elector`]: create, take over when free, renew when ours,
//! release) through the small [`LeaseApi`] trait, so the loops run under paused time in tests.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};

use super::{ElectionConfig, ElectionError};
use tokio::time::Instant;

use crate::cluster::bounded;

use crate::frame::{Positions, ResourceVersion, Scope};

/// The annotation holding the leader's write position per scope: `{"*":"123"}` for all
/// namespaces, `{"ns":"123",…}` with `--namespace`.
pub const POSITIONS_ANNOTATION: &str = "kube-event-logger.io/positions";

/// Positions as the annotation holds them.
pub fn encode_positions(positions: &Positions) -> String {
    let map: BTreeMap<&str, &str> = positions
        .iter()
        .map(|(scope, rv)| (scope_key(scope), rv.as_str()))
        .collect();
    serde_json::to_string(&map).unwrap_or_default()
}

/// Positions from the annotation; anything unreadable counts as none (the output decides then).
pub fn decode_positions(text: &str) -> Positions {
    let map: BTreeMap<String, String> = serde_json::from_str(text).unwrap_or_default();
    map.into_iter()
        .filter(|(_, rv)| !rv.is_empty())
        .map(|(key, rv)| {
            let scope = match key.as_str() {
                "*" => Scope::All,
                _ => Scope::Namespace(key),
            };
            (scope, ResourceVersion::new(&rv))
        })
        .collect()
}

fn scope_key(scope: &Scope) -> &str {
    match scope {
        Scope::All => "*",
        Scope::Namespace(ns) => ns,
    }
}

/// The annotation naming the process that holds the Lease: a random value each process draws at
/// start. Two processes that share an identity (a copied manifest, one `POD_NAME` twice) would
/// otherwise both take the Lease for theirs and both write; client-go avoids that by adding a
/// UUID to the identity. We keep the identity readable (the pod's name) and tell processes apart
/// here.
pub const INSTANCE_ANNOTATION: &str = "kube-event-logger.io/holder-instance";

/// Who we are: the identity in `holderIdentity`, and this process's instance.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Me<'a> {
    identity: &'a str,
    instance: &'a str,
}

/// What a candidate last saw of the Lease, and when by its own clock.
#[derive(Debug, Clone)]
struct Observed {
    holder: Option<String>,
    /// The holder's process ([`INSTANCE_ANNOTATION`]).
    instance: Option<String>,
    renew_time: Option<MicroTime>,
    duration: Duration,
    at: Instant,
}

/// Whose the Lease is, as far as we can tell.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Ours,
    /// No holder, or the holder has not renewed for its whole lease duration.
    Free,
    /// Held by another, renewed within its lease duration as we saw it.
    Held(String),
}

/// Pure: the Lease as now seen; the expiry clock restarts only when its holder or renew time
/// changed since we last looked.
fn observe(
    before: Option<&Observed>,
    spec: LeaseSpec,
    instance: Option<String>,
    now: Instant,
) -> Observed {
    let same = before.filter(|o| {
        o.holder == spec.holder_identity
            && o.instance == instance
            && o.renew_time == spec.renew_time
    });
    let duration =
        Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
    Observed {
        at: same.map_or(now, |o| o.at),
        holder: spec.holder_identity,
        instance,
        renew_time: spec.renew_time,
        duration,
    }
}

/// Puts the write positions in the Lease's annotation, for the next leader.
fn record_positions(lease: &mut Lease, positions: &Positions) {
    lease
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(POSITIONS_ANNOTATION.into(), encode_positions(positions));
}

/// Pure: who holds the Lease given what we saw and when. Ours only when both the identity and
/// the instance are ours: another process under our identity holds it like anyone else.
fn verdict(observed: &Observed, me: &Me<'_>, now: Instant) -> Verdict {
    let ours = observed.instance.as_deref() == Some(me.instance);
    match observed.holder.as_deref().filter(|h| !h.is_empty()) {
        Some(h) if h == me.identity && ours => Verdict::Ours,
        Some(h) if now < observed.at + observed.duration => Verdict::Held(h.to_string()),
        _ => Verdict::Free,
    }
}

/// The holder's instance, as the Lease says.
fn instance_of(lease: &Lease) -> Option<String> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INSTANCE_ANNOTATION))
        .cloned()
}

/// The Lease calls a candidate makes: read, create, replace (with the resourceVersion read
/// before as precondition; a conflict is `kube::Error::Api` with code 409).
pub trait LeaseApi: Send + Sync {
    fn get(&self, name: &str) -> impl Future<Output = Result<Option<Lease>, kube::Error>> + Send;
    fn create(&self, lease: &Lease) -> impl Future<Output = Result<Lease, kube::Error>> + Send;
    fn replace(
        &self,
        name: &str,
        lease: &Lease,
    ) -> impl Future<Output = Result<Lease, kube::Error>> + Send;
}

/// A Lease call with no answer in time, as kube's error.
fn timed_out(secs: u64) -> kube::Error {
    kube::Error::Service(Box::new(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer from the API server within {secs}s"),
    )))
}

impl LeaseApi for Api<Lease> {
    async fn get(&self, name: &str) -> Result<Option<Lease>, kube::Error> {
        bounded(self.get_opt(name), timed_out).await
    }

    async fn create(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        bounded(Api::create(self, &PostParams::default(), lease), timed_out).await
    }

    async fn replace(&self, name: &str, lease: &Lease) -> Result<Lease, kube::Error> {
        bounded(
            Api::replace(self, name, &PostParams::default(), lease),
            timed_out,
        )
        .await
    }
}

/// What one round of [`Elector::try_acquire_or_renew`] left this replica with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Another replica holds the Lease, or won the race for it.
    Held,
    /// This process held the Lease and renewed it.
    Renewed,
    /// This process took the Lease (created it, or took it over once free), with the write
    /// positions the previous leader left in it.
    TookOver(Positions),
}

/// One candidate for the Lease.
pub struct Elector<L = Api<Lease>> {
    api: L,
    config: ElectionConfig,
    observed: Option<Observed>,
    /// This process, told apart from any other with the same identity.
    instance: String,
    /// Whether another process under our identity was seen (said once).
    twin_seen: bool,
}

impl Elector {
    pub fn new(client: kube::Client, config: ElectionConfig) -> Self {
        Self::with_api(Api::namespaced(client, &config.namespace), config)
    }
}

impl<L: LeaseApi> Elector<L> {
    pub fn with_api(api: L, config: ElectionConfig) -> Self {
        Self {
            api,
            config,
            observed: None,
            instance: format!("{:016x}", fastrand::u64(..)),
            twin_seen: false,
        }
    }

    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// The holder we last saw, if not this process.
    pub fn holder(&self) -> Option<&str> {
        let o = self.observed.as_ref()?;
        let holder = o.holder.as_deref().filter(|h| !h.is_empty())?;
        let us = holder == self.config.identity && o.instance.as_deref() == Some(&self.instance);
        (!us).then_some(holder)
    }

    /// How long the holder we last saw (another) has gone without renewing, by our clock.
    pub fn holder_silent_for(&self) -> Option<Duration> {
        self.holder()?;
        self.observed.as_ref().map(|o| o.at.elapsed())
    }

    fn me(&self) -> Me<'_> {
        Me {
            identity: &self.config.identity,
            instance: &self.instance,
        }
    }

    fn error(&self, source: kube::Error) -> ElectionError {
        ElectionError::Api {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }

    /// Remembers the Lease as read; who holds it, as seen now.
    fn observe(&mut self, lease: &Lease) -> Verdict {
        let spec = lease.spec.clone().unwrap_or_default();
        let now = Instant::now();
        let observed = observe(self.observed.as_ref(), spec, instance_of(lease), now);
        let verdict = verdict(&observed, &self.me(), now);
        if let Verdict::Held(h) = &verdict
            && *h == self.config.identity
            && !std::mem::replace(&mut self.twin_seen, true)
        {
            tracing::warn!(identity = %h, "another process holds the Lease under this replica's identity (two replicas with one POD_NAME?); standing by: only one of them writes");
        }
        self.observed = Some(observed);
        verdict
    }

    /// Marks the Lease as this process's.
    fn stamp(&self, lease: &mut Lease) {
        lease
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(INSTANCE_ANNOTATION.into(), self.instance.clone());
    }

    async fn read(&self) -> Result<Option<Lease>, ElectionError> {
        self.api
            .get(&self.config.name)
            .await
            .map_err(|e| self.error(e))
    }

    /// One round: creates the Lease, takes it over when free, or renews it when ours, writing
    /// `positions` with a renewal. A lost race is [`Acquired::Held`].
    pub async fn try_acquire_or_renew(
        &mut self,
        positions: &Positions,
    ) -> Result<Acquired, ElectionError> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let Some(mut lease) = self.read().await? else {
            let lease = self.new_lease(now);
            return self
                .write(None, lease, Acquired::TookOver(Positions::new()))
                .await;
        };
        let verdict = self.observe(&lease);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let won = match verdict {
            Verdict::Held(_) => return Ok(Acquired::Held),
            Verdict::Ours => {
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(self.duration_secs());
                record_positions(&mut lease, positions);
                Acquired::Renewed
            }
            Verdict::Free => {
                let handover = lease
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(POSITIONS_ANNOTATION))
                    .map(|t| decode_positions(t))
                    .unwrap_or_default();
                spec.holder_identity = Some(self.config.identity.clone());
                spec.acquire_time = Some(now.clone());
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(self.duration_secs());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                Acquired::TookOver(handover)
            }
        };
        self.stamp(&mut lease);
        let name = self.config.name.clone();
        self.write(Some(&name), lease, won).await
    }

    /// Clean shutdown: writes the final positions and an empty holder with a 1 s duration, so
    /// that a standby takes over at its next retry instead of waiting the lease out.
    pub async fn release(&mut self, positions: &Positions) -> Result<(), ElectionError> {
        let Some(mut lease) = self.read().await? else {
            return Ok(());
        };
        if instance_of(&lease).as_deref() != Some(&self.instance) {
            return Ok(());
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(&self.config.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        record_positions(&mut lease, positions);
        let name = self.config.name.clone();
        self.write(Some(&name), lease, Acquired::Held)
            .await
            .map(|_| ())
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    fn new_lease(&self, now: MicroTime) -> Lease {
        let mut lease = Lease::default();
        lease.metadata.name = Some(self.config.name.clone());
        lease.metadata.namespace = Some(self.config.namespace.clone());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.duration_secs()),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        });
        self.stamp(&mut lease);
        lease
    }

    /// Creates (`name` None) or replaces the Lease: `won` when the Lease is ours afterwards; a
    /// conflict means another got there first.
    async fn write(
        &mut self,
        name: Option<&str>,
        lease: Lease,
        won: Acquired,
    ) -> Result<Acquired, ElectionError> {
        let written = match name {
            None => self.api.create(&lease).await,
            Some(name) => self.api.replace(name, &lease).await,
        };
        match written {
            Ok(lease) if self.observe(&lease) == Verdict::Ours => Ok(won),
            Ok(_) => Ok(Acquired::Held),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Acquired::Held),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Me<'static> = Me {
        identity: "me",
        instance: "1",
    };

    fn seen(holder: Option<&str>, at: Instant) -> Observed {
        Observed {
            holder: holder.map(Into::into),
            instance: Some("1".into()),
            renew_time: None,
            duration: Duration::from_secs(15),
            at,
        }
    }

    #[test]
    fn a_lease_is_free_when_empty_or_not_renewed_for_its_duration_by_our_clock() {
        let t0 = Instant::now();
        let later = |s| t0 + Duration::from_secs(s);
        assert_eq!(
            verdict(&seen(Some("me"), t0), &ME, later(100)),
            Verdict::Ours
        );
        assert_eq!(verdict(&seen(None, t0), &ME, t0), Verdict::Free);
        assert_eq!(verdict(&seen(Some(""), t0), &ME, t0), Verdict::Free);
        assert_eq!(
            verdict(&seen(Some("b"), t0), &ME, later(14)),
            Verdict::Held("b".into())
        );
        assert_eq!(verdict(&seen(Some("b"), t0), &ME, later(15)), Verdict::Free);
    }

    #[test]
    fn the_expiry_clock_restarts_only_when_holder_or_renew_time_change() {
        let time = |s: &str| Some(MicroTime(s.parse().unwrap()));
        let spec = |holder: &str, renewed: &str| LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: time(renewed),
            ..LeaseSpec::default()
        };
        let t0 = Instant::now();
        let later = |s| t0 + Duration::from_secs(s);
        let first = observe(None, spec("b", "2026-11-22T10:00:00Z"), None, t0);
        assert_eq!((first.at, first.duration), (t0, Duration::from_secs(15)));
        let again = observe(
            Some(&first),
            spec("b", "2026-11-22T10:00:00Z"),
            None,
            later(9),
        );
        assert_eq!(again.at, t0, "the same record again: the clock runs on");
        assert_eq!(verdict(&again, &ME, later(15)), Verdict::Free);
        let renewed = observe(
            Some(&again),
            spec("b", "2026-11-22T10:00:02Z"),
            None,
            later(10),
        );
        assert_eq!(renewed.at, later(10));
        assert_eq!(verdict(&renewed, &ME, later(15)), Verdict::Held("b".into()));
        let moved = observe(
            Some(&renewed),
            spec("c", "2026-11-22T10:00:02Z"),
            None,
            later(11),
        );
        assert_eq!(moved.at, later(11), "a new holder restarts the clock");
    }

    #[test]
    fn positions_round_trip_through_the_annotation() {
        let mut p = Positions::new();
        p.insert(Scope::All, ResourceVersion::new("120"));
        p.insert(
            Scope::Namespace("kube-system".into()),
            ResourceVersion::new("7"),
        );
        let text = encode_positions(&p);
        assert_eq!(text, r#"{"*":"120","kube-system":"7"}"#);
        assert_eq!(decode_positions(&text), p);
        assert!(decode_positions("not json").is_empty());
        assert!(decode_positions(r#"{"a":""}"#).is_empty());
    }

    #[test]
    fn another_process_under_our_identity_holds_the_lease_like_anyone_else() {
        let t0 = Instant::now();
        let twin = Observed {
            instance: Some("2".into()),
            ..seen(Some("me"), t0)
        };
        assert_eq!(
            verdict(&twin, &ME, t0 + Duration::from_secs(14)),
            Verdict::Held("me".into())
        );
        // ...until it stops renewing, as any holder.
        assert_eq!(
            verdict(&twin, &ME, t0 + Duration::from_secs(15)),
            Verdict::Free
        );
        // A Lease from before instances (no annotation) is not ours either.
        let old = Observed {
            instance: None,
            ..seen(Some("me"), t0)
        };
        assert_eq!(verdict(&old, &ME, t0), Verdict::Held("me".into()));
    }
}
