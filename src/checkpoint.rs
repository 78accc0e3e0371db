//! What has reached the output, owned in one place: the write position of each scope and the
//! scopes the output covers.
//!
//! The writer records into the [`Checkpoint`] as lines reach the file (its
//! [`crate::output::Progress`]); a newly covered scope goes into the output's record
//! (`.events.json.scopes`, see [`position`](crate::position)) once written and synced. Anyone
//! else reads a [`View`]: the Lease renewal carries its positions, and at the end of a term the
//! Lease is released with them. Each term starts a new one where its
//! [`resume::Plan`](crate::resume::Plan) says.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::frame::{Positions, ResourceVersion, Scope};
use crate::output::Progress;

/// The write position per scope and the covered scopes, as the writer records them.
pub struct Checkpoint {
    /// The output file whose record of covered scopes this keeps (`None`: stdout, no record).
    output: Option<PathBuf>,
    covered: Vec<Scope>,
    positions: Arc<Mutex<Positions>>,
}

/// A read-only view of a [`Checkpoint`]'s positions.
#[derive(Clone, Debug)]
pub struct View(Arc<Mutex<Positions>>);

impl View {
    /// A view of positions nobody writes (tests of the Lease renewal).
    #[cfg(test)]
    pub fn of(positions: Positions) -> Self {
        View(Arc::new(Mutex::new(positions)))
    }

    /// The write position per scope now.
    pub fn positions(&self) -> Positions {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Checkpoint {
    /// Starts from the scopes `output` covers and their positions (`output`: the file whose
    /// record of covered scopes is kept; `None` for stdout).
    pub fn new(output: Option<PathBuf>, covered: Vec<Scope>, positions: Positions) -> Self {
        Self {
            output,
            covered,
            positions: Arc::new(Mutex::new(positions)),
        }
    }

    pub fn view(&self) -> View {
        View(self.positions.clone())
    }
}

impl Progress for Checkpoint {
    fn written(&mut self, scope: &Scope, rv: &ResourceVersion) {
        let mut positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        match positions.get_mut(scope) {
            Some(at) => at.clone_from(rv),
            None => {
                positions.insert(scope.clone(), rv.clone());
            }
        }
    }

    fn covers(&self, scope: &Scope) -> bool {
        self.output.is_none() || self.covered.contains(scope)
    }

    fn covered(&mut self, scope: &Scope) {
        let Some(path) = &self.output else { return };
        if self.covered.contains(scope) {
            return;
        }
        self.covered.push(scope.clone());
        match crate::position::write_scopes(path, &self.covered) {
            Ok(()) => tracing::info!(%scope, "the output now covers this scope"),
            Err(e) => {
                tracing::warn!(%scope, error = %e, "cannot record the scopes the output covers; the next start lists this scope again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s)
    }

    #[test]
    fn the_view_sees_each_position_written_and_a_new_scope_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.json");
        let a = Scope::Namespace("a".into());
        let b = Scope::Namespace("b".into());
        let positions = BTreeMap::from([(a.clone(), rv("3"))]);
        let mut checkpoint = Checkpoint::new(Some(out.clone()), vec![a.clone()], positions);
        let view = checkpoint.view();
        assert_eq!(view.positions(), BTreeMap::from([(a.clone(), rv("3"))]));
        checkpoint.written(&a, &rv("5"));
        checkpoint.written(&b, &rv("7"));
        assert_eq!(
            view.positions(),
            BTreeMap::from([(a.clone(), rv("5")), (b.clone(), rv("7"))])
        );
        assert!(checkpoint.covers(&a) && !checkpoint.covers(&b));
        checkpoint.covered(&b);
        assert!(checkpoint.covers(&b));
        let recorded = crate::position::read_scopes(&out).unwrap();
        assert_eq!(recorded, [a, b]);
    }

    #[test]
    fn writing_to_stdout_covers_every_scope_and_records_nothing() {
        let mut checkpoint = Checkpoint::new(None, Vec::new(), Positions::new());
        let a = Scope::Namespace("a".into());
        assert!(checkpoint.covers(&a));
        checkpoint.written(&a, &rv("1"));
        assert_eq!(checkpoint.view().positions().len(), 1);
    }
}
