//! Where each scope starts writing: resume planning.
//!
//! At start-up (and at each leadership term) the output is repaired and read back: scopes the
//! output covers resume after their last frame; the others are listed, skipping what the output
//! holds already. A new leader then takes over the previous leader's position for a scope when
//! it is newer than its own output's. The decisions ([`plan`], [`take_over`]) are pure; the
//! file work around them ([`recover`], [`hand_over`]) is kept apart. What the writer records
//! from then on is the [`checkpoint`](crate::checkpoint)'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::OutputTarget;
use crate::frame::{Positions, ResourceVersion, Scope};
use crate::position::{self, PositionError, Recovery};
use crate::watch::Start;

/// Why the starting points could not be worked out or recorded.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Position(#[from] PositionError),
    #[error(
        "cannot record which scopes {path} covers: {source}. Check that the output's directory \
         is writable and has space"
    )]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Each scope's starting point, and the scopes the output covers up to its end.
#[derive(Debug, Default)]
pub struct Plan {
    pub starts: BTreeMap<Scope, Start>,
    pub covered: Vec<Scope>,
}

impl Plan {
    /// The write position per scope as planned (the checkpoint's before the first write).
    pub fn positions(&self) -> Positions {
        self.starts
            .iter()
            .filter_map(|(scope, start)| match start {
                Start::After(rv) => Some((scope.clone(), rv.clone())),
                Start::List { .. } => None,
            })
            .collect()
    }
}

/// Pure: covered scopes resume after the output's last frame for them (`positions`; listed
/// when it holds none); the uncovered ones are listed, skipping the newest version of each of
/// their namespaces already in the output (`marks`).
pub fn plan(
    covered: &[Scope],
    uncovered: &[Scope],
    positions: &Positions,
    marks: &BTreeMap<String, ResourceVersion>,
) -> Plan {
    let mut starts = BTreeMap::new();
    for scope in covered {
        let start = match positions.get(scope) {
            Some(rv) => Start::After(rv.clone()),
            None => Start::List {
                marks: BTreeMap::new(),
            },
        };
        starts.insert(scope.clone(), start);
    }
    for scope in uncovered {
        let marks = marks
            .iter()
            .filter(|(ns, _)| scope.contains(Some(ns)))
            .map(|(ns, rv)| (ns.clone(), rv.clone()))
            .collect();
        starts.insert(scope.clone(), Start::List { marks });
    }
    Plan {
        starts,
        covered: covered.to_vec(),
    }
}

/// Pure: a new leader continues from the Lease's position for a scope when it is newer than
/// what its own output holds, or when its output does not cover the scope; the scope then
/// counts as covered (jointly with the previous leader's output). Returns the scopes taken
/// over whose coverage is new (the record must be written again when any).
pub fn take_over(plan: &mut Plan, handover: &Positions) -> Vec<Scope> {
    let mut newly_covered = Vec::new();
    for (scope, rv) in handover {
        let Some(start) = plan.starts.get_mut(scope) else {
            continue;
        };
        let covered = plan.covered.contains(scope);
        let written = match start {
            Start::After(written) => Some(&*written),
            Start::List { .. } => None,
        };
        if covered && !rv.is_unwritten(written) {
            continue;
        }
        *start = Start::After(rv.clone());
        if !covered {
            plan.covered.push(scope.clone());
            newly_covered.push(scope.clone());
        }
    }
    newly_covered
}

/// Repairs the output's tail and plans where each scope starts; records the covered scopes
/// before anything is written. Writing to stdout, every scope counts as covered with no
/// position (nothing can be read back).
pub fn recover(output: &OutputTarget, scopes: &[Scope]) -> Result<Plan, ResumeError> {
    let OutputTarget::File(path) = output else {
        return Ok(plan(scopes, &[], &Positions::new(), &BTreeMap::new()));
    };
    let older: Vec<_> = crate::output_files::beside(path)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let recorded = position::read_scopes(path);
    let (covered, uncovered): (Vec<Scope>, Vec<Scope>) = scopes
        .iter()
        .cloned()
        .partition(|s| position::covered(s, recorded.as_deref()));
    let recovery = position::recover(path, &older, &covered)?;
    report_recovery(path, &recovery);
    let marks = if uncovered.is_empty() {
        BTreeMap::new()
    } else {
        position::newest_per_namespace(path, &older)?
    };
    for scope in &uncovered {
        tracing::info!(%scope, "the output does not cover this scope up to its end (the scopes changed); listing it, skipping what the output holds");
    }
    let plan = plan(&covered, &uncovered, &recovery.positions, &marks);
    if recorded.as_deref() != Some(plan.covered.as_slice()) {
        record(path, &plan.covered)?;
    }
    Ok(plan)
}

/// [`take_over`], logged, with the record of covered scopes written when it changed.
pub fn hand_over(
    output: &OutputTarget,
    plan: &mut Plan,
    handover: &Positions,
) -> Result<(), ResumeError> {
    let taken = take_over(plan, handover);
    for (scope, rv) in handover {
        if plan.starts.get(scope) == Some(&Start::After(rv.clone())) {
            tracing::info!(%scope, resource_version = %rv, "continuing from the previous leader's position");
        }
    }
    match output {
        OutputTarget::File(path) if !taken.is_empty() => record(path, &plan.covered),
        _ => Ok(()),
    }
}

fn record(path: &Path, covered: &[Scope]) -> Result<(), ResumeError> {
    position::write_scopes(path, covered).map_err(|source| ResumeError::Record {
        path: path.to_path_buf(),
        source,
    })
}

fn report_recovery(path: &Path, r: &Recovery) {
    if r.torn_bytes > 0 {
        tracing::warn!(path = %path.display(), bytes = r.torn_bytes, "cut off a torn last line left by a crash; it was never complete, so nothing is lost");
    }
    if r.invalid_lines > 0 {
        tracing::warn!(path = %path.display(), lines = r.invalid_lines, "skipped lines that are not watch frames while looking for the last position");
    }
    for (scope, rv) in &r.positions {
        tracing::info!(%scope, resource_version = %rv, "last frame in the output");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s)
    }

    fn ns(s: &str) -> Scope {
        Scope::Namespace(s.into())
    }

    fn positions(pairs: &[(Scope, &str)]) -> Positions {
        pairs.iter().map(|(s, v)| (s.clone(), rv(v))).collect()
    }

    #[test]
    fn covered_scopes_resume_after_their_last_frame_and_others_are_listed_with_marks() {
        let marks = BTreeMap::from([("a".to_string(), rv("7")), ("b".to_string(), rv("9"))]);
        let plan = plan(
            &[ns("a")],
            &[ns("b")],
            &positions(&[(ns("a"), "12")]),
            &marks,
        );
        assert_eq!(plan.starts[&ns("a")], Start::After(rv("12")));
        let marks = BTreeMap::from([("b".to_string(), rv("9"))]);
        assert_eq!(plan.starts[&ns("b")], Start::List { marks });
        assert_eq!(plan.covered, [ns("a")]);
        assert_eq!(plan.positions(), positions(&[(ns("a"), "12")]));
    }

    #[test]
    fn a_newer_handover_wins_and_an_older_one_is_ignored() {
        let mut p = plan(
            &[ns("a"), ns("b")],
            &[],
            &positions(&[(ns("a"), "10"), (ns("b"), "10")]),
            &BTreeMap::new(),
        );
        let taken = take_over(&mut p, &positions(&[(ns("a"), "15"), (ns("b"), "8")]));
        assert!(taken.is_empty(), "both were covered already: {taken:?}");
        assert_eq!(p.starts[&ns("a")], Start::After(rv("15")), "newer: taken");
        assert_eq!(p.starts[&ns("b")], Start::After(rv("10")), "older: ours");
    }

    #[test]
    fn an_uncovered_scope_takes_the_handover_and_becomes_covered() {
        let marks = BTreeMap::from([("a".to_string(), rv("20"))]);
        let mut p = plan(&[], &[ns("a")], &Positions::new(), &marks);
        // Even an older position: the previous leader's output covers the scope to there.
        let taken = take_over(&mut p, &positions(&[(ns("a"), "5")]));
        assert_eq!(taken, [ns("a")]);
        assert_eq!(
            p.starts[&ns("a")],
            Start::After(rv("5")),
            "no LIST, no marks"
        );
        assert_eq!(p.covered, [ns("a")]);
    }

    #[test]
    fn a_covered_scope_with_no_frame_yet_takes_any_handover() {
        let mut p = plan(&[Scope::All], &[], &Positions::new(), &BTreeMap::new());
        let empty = Start::List {
            marks: BTreeMap::new(),
        };
        assert_eq!(
            p.starts[&Scope::All],
            empty,
            "covered, nothing written: listed"
        );
        take_over(&mut p, &positions(&[(Scope::All, "3")]));
        assert_eq!(p.starts[&Scope::All], Start::After(rv("3")));
    }

    #[test]
    fn a_handover_for_a_scope_we_do_not_watch_is_ignored() {
        let mut p = plan(&[ns("a")], &[], &Positions::new(), &BTreeMap::new());
        let taken = take_over(&mut p, &positions(&[(ns("z"), "3")]));
        assert!(taken.is_empty());
        assert!(!p.starts.contains_key(&ns("z")));
    }

    #[test]
    fn a_missing_record_covers_everything_and_an_unreadable_one_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.json");
        let target = OutputTarget::File(out.clone());
        std::fs::write(
            &out,
            "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"namespace\":\"a\",\"resourceVersion\":\"4\"}}}\n",
        )
        .unwrap();
        // No record (an output from before records existed): covered, resumes after 4.
        let p = recover(&target, &[Scope::All]).unwrap();
        assert_eq!(p.starts[&Scope::All], Start::After(rv("4")));
        assert_eq!(p.covered, [Scope::All]);
        // The record was written; a scope it does not name is listed past what is written.
        let p = recover(&target, &[ns("a")]).unwrap();
        assert_eq!(p.covered, [ns("a")], "* covers every namespace");
        // A record that cannot be written is an error that names the output.
        let record = dir.path().join(".events.json.scopes");
        std::fs::remove_file(&record).unwrap();
        let temp = dir.path().join(".events.json.scopes.tmp");
        std::fs::create_dir(&temp).unwrap();
        let p = recover(&target, &[ns("a")]);
        let Err(ResumeError::Record { path, .. }) = p else {
            panic!("the record cannot be written: {p:?}")
        };
        assert_eq!(path, out);
        std::fs::remove_dir(&temp).unwrap();
        // An unreadable record covers nothing: listed, skipping what the output holds.
        std::fs::write(&record, [0xff, 0xfe]).unwrap();
        let p = recover(&target, &[ns("a")]).unwrap();
        let marks = BTreeMap::from([("a".to_string(), rv("4"))]);
        assert_eq!(p.starts[&ns("a")], Start::List { marks });
        assert!(p.covered.is_empty());
    }
}
