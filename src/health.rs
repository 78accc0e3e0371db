//! Shared, read-mostly state the HTTP endpoints report: is the watch established for every
//! scope, and is the output writable.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::frame::Scope;

#[derive(Debug, Default)]
pub struct Health {
    output_ok: AtomicBool,
    watching: Mutex<BTreeMap<Scope, bool>>,
    /// With `--leader-elect`, while another replica leads: who, if known.
    standby: Mutex<Option<Standby>>,
}

/// This replica waits for the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standby {
    pub leader: Option<String>,
    /// How long the leader has not renewed the Lease, once that is longer than a couple of
    /// retry periods (it may be gone: this replica takes over when the lease runs out).
    pub silent: Option<std::time::Duration>,
}

impl Health {
    /// Health for these scopes, none of them watching yet.
    pub fn new(scopes: &[Scope]) -> Self {
        Self {
            output_ok: AtomicBool::new(false),
            watching: Mutex::new(scopes.iter().map(|s| (s.clone(), false)).collect()),
            standby: Mutex::new(None),
        }
    }

    /// Standing by (`Some`) or leading (`None`).
    pub fn set_standby(&self, standby: Option<Standby>) {
        *self.standby.lock().unwrap_or_else(|e| e.into_inner()) = standby;
    }

    /// What the readiness answer says besides "ok", if anything: a standby is ready (healthy and
    /// waiting; only the leader needs watches and output).
    pub fn role(&self) -> Option<String> {
        let standby = self.standby.lock().unwrap_or_else(|e| e.into_inner());
        standby.as_ref().map(|s| match (&s.leader, s.silent) {
            (Some(l), None) => format!("standby; {l} leads"),
            (Some(l), Some(d)) => format!(
                "standby; {l} held the Lease but has not renewed it for {}s: taking over when it runs out",
                d.as_secs()
            ),
            (None, _) => "standby".into(),
        })
    }

    pub fn set_output_ok(&self, ok: bool) {
        self.output_ok.store(ok, Ordering::Relaxed);
    }

    pub fn output_ok(&self) -> bool {
        self.output_ok.load(Ordering::Relaxed)
    }

    pub fn set_watching(&self, scope: &Scope, watching: bool) {
        let mut map = self.watching.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(scope.clone(), watching);
    }

    /// Ready: every scope has an established watch and the output takes writes.
    pub fn ready(&self) -> Result<(), String> {
        if self.role().is_some() {
            return Ok(());
        }
        if !self.output_ok() {
            return Err("output is not writable".into());
        }
        let map = self.watching.lock().unwrap_or_else(|e| e.into_inner());
        let waiting: Vec<String> = map
            .iter()
            .filter(|(_, w)| !**w)
            .map(|(s, _)| s.to_string())
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("no established watch for {}", waiting.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_output_and_every_watch() {
        let scopes = [Scope::Namespace("a".into()), Scope::Namespace("b".into())];
        let h = Health::new(&scopes);
        assert!(h.ready().unwrap_err().contains("output"));
        h.set_output_ok(true);
        h.set_watching(&scopes[0], true);
        let err = h.ready().unwrap_err();
        assert!(
            err.contains("namespace b") && !err.contains("namespace a"),
            "{err}"
        );
        h.set_watching(&scopes[1], true);
        assert!(h.ready().is_ok());
        h.set_output_ok(false);
        assert!(h.ready().is_err());
        h.set_standby(Some(Standby {
            leader: Some("b-0".into()),
            silent: None,
        }));
        assert!(h.ready().is_ok(), "a standby is ready: healthy and waiting");
        assert_eq!(h.role().as_deref(), Some("standby; b-0 leads"));
        h.set_standby(Some(Standby {
            leader: Some("b-0".into()),
            silent: Some(std::time::Duration::from_secs(6)),
        }));
        assert_eq!(
            h.role().as_deref(),
            Some(
                "standby; b-0 held the Lease but has not renewed it for 6s: taking over when it runs out"
            )
        );
        h.set_standby(None);
        assert!(h.ready().is_err());
    }
}
