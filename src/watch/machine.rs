//! The watch loop's state machine, pure: how one LIST or WATCH attempt ended ([`Outcome`]) goes
//! in, and out comes everything the loop needs for the next one ([`Step`]): the request, how
//! long to wait first, the reason it is counted under, or that the scope stops for good.
//! Nothing about a transition is worked out anywhere else.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Start;
use super::api::ApiError;
use crate::frame::{ListedObject, ResourceVersion, Status};
use crate::metrics::{Relist, WatchStart};

/// Watches that end quickly without a frame, in a row, before the position is taken as lost.
const STALL_LIMIT: u32 = 3;

/// The next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    List,
    Watch(ResourceVersion),
}

/// How long to wait before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    None,
    Backoff,
    RetryAfter(Duration),
}

/// Why a request is made: the label it is counted under in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Watch(WatchStart),
    List(Relist),
}

/// How one LIST or WATCH attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// A LIST completed; watch from its resourceVersion.
    Listed(ResourceVersion),
    /// The server ended the watch cleanly; `ran_its_course` when it lasted at least half the
    /// time asked for (a healthy watch, even with no frame).
    Closed { ran_its_course: bool },
    /// The connection broke (mid-frame, reset, malformed line).
    Broken(String),
    /// ERROR frame or HTTP 410 on the watch: the position is gone.
    Expired,
    /// No frame for the stall timeout while the API server has newer events.
    Stalled,
    /// An ERROR frame with another Status.
    ErrorFrame(Status),
    /// The request failed before streaming (a 410 here is an expired continue token).
    Failed(ApiError),
    /// A LIST could not be sorted on disk (disk full, unwritable directory).
    Unwritable(String),
    /// Shutdown was requested.
    Cancelled,
}

impl Outcome {
    /// Whether the scope is no longer watching once this happened (`/readyz` false).
    pub fn breaks_watch(&self) -> bool {
        matches!(
            self,
            Outcome::Broken(_)
                | Outcome::Stalled
                | Outcome::ErrorFrame(_)
                | Outcome::Failed(_)
                | Outcome::Unwritable(_)
        )
    }
}

/// What the loop does after an attempt.
#[derive(Debug)]
pub enum Step {
    /// Shutdown: return.
    Stop,
    /// A refusal before any request succeeded (credentials, RBAC, a rejected parameter):
    /// retrying will not help, the scope ends with this error and the process exits.
    Fatal(ApiError),
    Next {
        request: Request,
        wait: Wait,
        reason: Reason,
        /// The attempt made progress: backoff starts over.
        progressed: bool,
    },
}

impl PartialEq for Step {
    /// Two fatal steps are equal when their errors say the same (an error is not comparable).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Step::Stop, Step::Stop) => true,
            (Step::Fatal(a), Step::Fatal(b)) => a.to_string() == b.to_string(),
            (
                Step::Next {
                    request,
                    wait,
                    reason,
                    progressed,
                },
                Step::Next {
                    request: r,
                    wait: w,
                    reason: why,
                    progressed: p,
                },
            ) => (request, wait, reason, progressed) == (r, w, why, p),
            _ => false,
        }
    }
}

/// How a transition is told: one log line (and, for a stall, a metric), decided in the step's
/// arm with everything else about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    /// Nothing worth a line: a LIST done, shutdown, or a fatal refusal (told by its error).
    Nothing,
    /// The server ended the watch: routine, resuming.
    Resuming,
    /// Watches keep ending quickly without a frame: the position is taken as lost.
    NoProgress,
    /// 401 or 403 after the server had accepted us: retrying with backoff.
    Refused,
    /// A LIST's continue token expired (410): listing again from the start.
    ContinueExpired,
    /// 429: retrying when the server said.
    Throttled,
    /// Another failed request.
    RequestFailed,
    Broken,
    Stalled,
    Unwritable,
    Expired,
    ErrorFrame,
}

/// The newest version the current attempt's frames carried (data or BOOKMARK).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Seen {
    #[default]
    Nothing,
    /// The newest version written (kept once, not copied per frame).
    Written,
    Other(ResourceVersion),
}

/// One scope's watch state: where it stands and what it has written. The LIST and the stream
/// report what they see and write here; nothing else keeps a copy.
#[derive(Debug, Default)]
pub struct Machine {
    /// Where a resumed watch starts: the newest version seen (written, listed or bookmarked).
    position: Option<ResourceVersion>,
    /// The newest version handed to the writer for this scope.
    written: Option<ResourceVersion>,
    /// See [`Start::List`]: kept for the scope's later LISTs (a relist after 410).
    marks: BTreeMap<String, ResourceVersion>,
    /// What the current attempt has seen so far.
    seen: Seen,
    /// Quick, empty watch ends in a row.
    stalls: u32,
    /// Whether the API server has accepted any request for this scope.
    started: bool,
}

impl Machine {
    /// Starts where the output (or the previous leader) left the scope.
    pub fn new(start: Start) -> Self {
        match start {
            Start::After(rv) => Self {
                position: Some(rv.clone()),
                written: Some(rv),
                ..Self::default()
            },
            Start::List { marks } => Self {
                marks,
                ..Self::default()
            },
        }
    }

    /// A frame of the current attempt carried `rv` (and it was not written).
    pub fn saw(&mut self, rv: ResourceVersion) {
        self.seen = Seen::Other(rv);
    }

    /// Whether a frame of this version is still to be written.
    pub fn must_write(&self, rv: &ResourceVersion) -> bool {
        rv.is_unwritten(self.written.as_ref())
    }

    /// A frame of the current attempt, of this version, went to the writer.
    pub fn wrote(&mut self, rv: ResourceVersion) {
        self.written = Some(rv);
        self.seen = Seen::Written;
    }

    /// A LIST wrote up to this version (the LIST's own version is its outcome).
    pub fn listed_up_to(&mut self, rv: ResourceVersion) {
        if self.seen == Seen::Written {
            self.seen = self.written.clone().map_or(Seen::Nothing, Seen::Other);
        }
        self.written = Some(rv);
    }

    /// The newest version handed to the writer.
    pub fn written(&self) -> Option<&ResourceVersion> {
        self.written.as_ref()
    }

    /// Whether a listed object is already in the output: at or below what was written, or its
    /// namespace's mark.
    pub fn already_written(&self, obj: &ListedObject) -> bool {
        let mark = obj.namespace.as_ref().and_then(|ns| self.marks.get(ns));
        !self.must_write(&obj.resource_version)
            || mark.is_some_and(|m| !obj.resource_version.is_unwritten(Some(m)))
    }

    /// The newest version seen so far, this attempt included.
    pub fn newest(&self) -> Option<&ResourceVersion> {
        match &self.seen {
            Seen::Nothing => self.position.as_ref(),
            Seen::Written => self.written.as_ref(),
            Seen::Other(rv) => Some(rv),
        }
    }

    /// The first request: resume after the output's last frame, else list.
    pub fn first(&self) -> (Request, Reason) {
        match &self.position {
            Some(rv) => (Request::Watch(rv.clone()), Reason::Watch(WatchStart::Start)),
            None => (Request::List, Reason::List(Relist::Initial)),
        }
    }

    /// The newest version seen.
    #[cfg(test)]
    pub fn position(&self) -> Option<&ResourceVersion> {
        self.position.as_ref()
    }

    /// From how an attempt ended (and what its frames carried) to what comes next, and how it
    /// is told. Any outcome but a failed request means the API server accepted one: refusals
    /// from then on are retried, not fatal.
    pub fn step(&mut self, outcome: &Outcome) -> (Step, Said) {
        if !matches!(outcome, Outcome::Failed(_) | Outcome::Cancelled) {
            self.started = true;
        }
        let saw_frames = self.end_attempt();
        let progressed = saw_frames
            || matches!(
                outcome,
                Outcome::Listed(_)
                    | Outcome::Closed {
                        ran_its_course: true
                    }
            );
        if progressed {
            self.stalls = 0;
        }
        let next = |request, wait, reason| Step::Next {
            request,
            wait,
            reason,
            progressed,
        };
        let relist = |wait, why| next(Request::List, wait, Reason::List(why));
        let position = self.position.clone();
        let resume = |wait, why| match position {
            Some(rv) => next(Request::Watch(rv), wait, Reason::Watch(why)),
            None => next(Request::List, wait, Reason::List(Relist::Retry)),
        };
        match outcome {
            Outcome::Cancelled => (Step::Stop, Said::Nothing),
            Outcome::Failed(e) if !self.started && e.is_refusal() => {
                (Step::Fatal(e.clone()), Said::Nothing)
            }
            Outcome::Listed(rv) => {
                self.position = Some(rv.clone());
                let after_list = Reason::Watch(WatchStart::AfterList);
                let watch = next(Request::Watch(rv.clone()), Wait::None, after_list);
                (watch, Said::Nothing)
            }
            Outcome::Closed { .. } if progressed => {
                (resume(Wait::None, WatchStart::ServerClosed), Said::Resuming)
            }
            Outcome::Closed { .. } => {
                self.stalls += 1;
                if self.stalls >= STALL_LIMIT {
                    self.stalls = 0;
                    return (relist(Wait::Backoff, Relist::NoProgress), Said::NoProgress);
                }
                let closed = WatchStart::ServerClosed;
                (resume(Wait::Backoff, closed), Said::Resuming)
            }
            Outcome::Stalled => (relist(Wait::Backoff, Relist::Stalled), Said::Stalled),
            Outcome::Unwritable(_) => (relist(Wait::Backoff, Relist::Retry), Said::Unwritable),
            Outcome::Expired if progressed => (relist(Wait::None, Relist::Expired), Said::Expired),
            Outcome::Expired => (relist(Wait::Backoff, Relist::Expired), Said::Expired),
            Outcome::Broken(_) => (resume(Wait::Backoff, WatchStart::Broken), Said::Broken),
            Outcome::ErrorFrame(_) => (
                resume(Wait::Backoff, WatchStart::ErrorFrame),
                Said::ErrorFrame,
            ),
            Outcome::Failed(e) if e.is_expired() => (
                relist(Wait::Backoff, Relist::Expired),
                Said::ContinueExpired,
            ),
            Outcome::Failed(e) => {
                let wait = e.retry_after().map_or(Wait::Backoff, Wait::RetryAfter);
                let said = match e.code() {
                    Some(401 | 403) => Said::Refused,
                    Some(429) => Said::Throttled,
                    _ => Said::RequestFailed,
                };
                (resume(wait, WatchStart::RequestFailed), said)
            }
        }
    }

    /// The attempt's newest version becomes the position; whether it saw any frame.
    fn end_attempt(&mut self) -> bool {
        let seen = match std::mem::take(&mut self.seen) {
            Seen::Nothing => return false,
            Seen::Written => self.written.clone(),
            Seen::Other(rv) => Some(rv),
        };
        if seen.is_some() {
            self.position = seen;
        }
        true
    }

    /// [`step`](Self::step) after an attempt whose frames carried `seen` (tests).
    #[cfg(test)]
    fn step_seen(&mut self, seen: Option<ResourceVersion>, outcome: &Outcome) -> Step {
        if let Some(rv) = seen {
            self.saw(rv);
        }
        self.step(outcome).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s)
    }

    fn at(pos: &str) -> Machine {
        let mut m = Machine::new(Start::After(rv(pos)));
        m.started = true;
        m
    }

    fn go(request: Request, wait: Wait, reason: Reason) -> Step {
        Step::Next {
            request,
            wait,
            reason,
            progressed: false,
        }
    }

    fn progressed(step: Step) -> Step {
        match step {
            Step::Next {
                request,
                wait,
                reason,
                ..
            } => Step::Next {
                request,
                wait,
                reason,
                progressed: true,
            },
            other => other,
        }
    }

    fn status(code: u16, retry_after: Option<Duration>) -> ApiError {
        ApiError::Status {
            code,
            retry_after,
            status: Status::default(),
        }
    }

    const CLOSED: Outcome = Outcome::Closed {
        ran_its_course: false,
    };

    #[test]
    fn first_request_resumes_or_lists() {
        assert_eq!(
            Machine::new(Start::After(rv("5"))).first(),
            (Request::Watch(rv("5")), Reason::Watch(WatchStart::Start))
        );
        assert_eq!(
            Machine::new(Start::List {
                marks: BTreeMap::new()
            })
            .first(),
            (Request::List, Reason::List(Relist::Initial))
        );
    }

    #[test]
    fn a_list_leads_to_a_watch_from_its_version() {
        let mut m = Machine::default();
        assert_eq!(
            m.step_seen(None, &Outcome::Listed(rv("9"))),
            progressed(go(
                Request::Watch(rv("9")),
                Wait::None,
                Reason::Watch(WatchStart::AfterList)
            ))
        );
        assert_eq!(m.position(), Some(&rv("9")));
    }

    #[test]
    fn a_list_that_cannot_be_sorted_on_disk_is_retried_with_backoff_never_fatal() {
        let mut m = Machine::default();
        let failed = Outcome::Unwritable("disk full".into());
        assert!(failed.breaks_watch());
        assert_eq!(
            m.step_seen(None, &failed),
            go(Request::List, Wait::Backoff, Reason::List(Relist::Retry))
        );
        let mut m = at("5");
        assert_eq!(
            m.step_seen(None, &failed),
            go(Request::List, Wait::Backoff, Reason::List(Relist::Retry))
        );
    }

    #[test]
    fn clean_ends_resume_at_once_and_broken_ones_back_off() {
        let mut m = at("5");
        assert_eq!(
            m.step_seen(Some(rv("6")), &CLOSED),
            progressed(go(
                Request::Watch(rv("6")),
                Wait::None,
                Reason::Watch(WatchStart::ServerClosed)
            ))
        );
        assert_eq!(
            m.step_seen(None, &Outcome::Broken("x".into())),
            go(
                Request::Watch(rv("6")),
                Wait::Backoff,
                Reason::Watch(WatchStart::Broken)
            )
        );
        assert_eq!(
            m.step_seen(
                None,
                &Outcome::ErrorFrame(Status {
                    code: 500,
                    ..Status::default()
                })
            ),
            go(
                Request::Watch(rv("6")),
                Wait::Backoff,
                Reason::Watch(WatchStart::ErrorFrame)
            )
        );
        // A watch that lasted its time is progress even without a frame.
        assert_eq!(
            m.step_seen(
                None,
                &Outcome::Closed {
                    ran_its_course: true
                }
            ),
            progressed(go(
                Request::Watch(rv("6")),
                Wait::None,
                Reason::Watch(WatchStart::ServerClosed)
            ))
        );
    }

    #[test]
    fn quick_empty_watches_in_a_row_mean_relist() {
        let mut m = at("5");
        let again = go(
            Request::Watch(rv("5")),
            Wait::Backoff,
            Reason::Watch(WatchStart::ServerClosed),
        );
        assert_eq!(m.step_seen(None, &CLOSED), again);
        assert_eq!(m.step_seen(None, &CLOSED), again);
        assert_eq!(
            m.step_seen(None, &CLOSED),
            go(
                Request::List,
                Wait::Backoff,
                Reason::List(Relist::NoProgress)
            )
        );
        // Progress in between clears the count.
        m.step_seen(None, &CLOSED);
        m.step_seen(Some(rv("5")), &Outcome::Broken("x".into()));
        m.step_seen(None, &CLOSED);
        assert_eq!(m.step_seen(None, &CLOSED), again);
    }

    #[test]
    fn expiry_relists() {
        let mut m = at("5");
        assert_eq!(
            m.step_seen(None, &Outcome::Expired),
            go(Request::List, Wait::Backoff, Reason::List(Relist::Expired))
        );
        assert_eq!(
            m.step_seen(Some(rv("6")), &Outcome::Expired),
            progressed(go(Request::List, Wait::None, Reason::List(Relist::Expired)))
        );
        assert_eq!(
            m.step_seen(None, &Outcome::Failed(status(410, None))),
            go(Request::List, Wait::Backoff, Reason::List(Relist::Expired))
        );
        assert_eq!(
            m.step_seen(None, &Outcome::Stalled),
            go(Request::List, Wait::Backoff, Reason::List(Relist::Stalled))
        );
    }

    #[test]
    fn retry_after_is_honoured_and_cancel_stops() {
        let mut m = Machine {
            started: true,
            ..Machine::default()
        };
        assert_eq!(
            m.step_seen(
                None,
                &Outcome::Failed(status(429, Some(Duration::from_secs(2))))
            ),
            go(
                Request::List,
                Wait::RetryAfter(Duration::from_secs(2)),
                Reason::List(Relist::Retry)
            )
        );
        let mut m = at("7");
        assert_eq!(
            m.step_seen(None, &Outcome::Failed(status(503, None))),
            go(
                Request::Watch(rv("7")),
                Wait::Backoff,
                Reason::Watch(WatchStart::RequestFailed)
            )
        );
        assert_eq!(m.step_seen(None, &Outcome::Cancelled), Step::Stop);
    }

    #[test]
    fn refusals_are_fatal_only_before_anything_succeeded() {
        let mut m = Machine::new(Start::After(rv("3")));
        assert_eq!(
            m.step_seen(None, &Outcome::Failed(status(403, None))),
            Step::Fatal(status(403, None))
        );
        // Not a refusal: retried even before the first success.
        assert!(matches!(
            m.step_seen(None, &Outcome::Failed(status(500, None))),
            Step::Next { .. }
        ));
        m.started = true;
        assert_eq!(
            m.step_seen(None, &Outcome::Failed(status(403, None))),
            go(
                Request::Watch(rv("3")),
                Wait::Backoff,
                Reason::Watch(WatchStart::RequestFailed)
            )
        );
        assert!(Outcome::Failed(status(403, None)).breaks_watch());
        assert!(!CLOSED.breaks_watch());
    }

    #[test]
    fn each_transition_says_how_it_is_told() {
        let said = |m: &mut Machine, o: Outcome| m.step(&o).1;
        let mut m = at("5");
        assert_eq!(
            said(&mut m, Outcome::Failed(status(401, None))),
            Said::Refused
        );
        assert_eq!(
            said(&mut m, Outcome::Failed(status(403, None))),
            Said::Refused
        );
        assert_eq!(
            said(&mut m, Outcome::Failed(status(429, None))),
            Said::Throttled
        );
        assert_eq!(
            said(&mut m, Outcome::Failed(status(503, None))),
            Said::RequestFailed
        );
        let continue_expired = Outcome::Failed(status(410, None));
        assert_eq!(said(&mut m, continue_expired), Said::ContinueExpired);
        assert_eq!(said(&mut m, Outcome::Stalled), Said::Stalled);
        assert_eq!(said(&mut m, Outcome::Expired), Said::Expired);
        assert_eq!(said(&mut m, Outcome::Listed(rv("9"))), Said::Nothing);
        // Quick empty ends are routine until the third in a row, which relists.
        assert_eq!(said(&mut m, CLOSED), Said::Resuming);
        assert_eq!(said(&mut m, CLOSED), Said::Resuming);
        assert_eq!(said(&mut m, CLOSED), Said::NoProgress);
        assert_eq!(said(&mut m, Outcome::Cancelled), Said::Nothing);
        let mut fresh = Machine::new(Start::After(rv("5")));
        let refused = Outcome::Failed(status(403, None));
        assert_eq!(
            fresh.step(&refused),
            (Step::Fatal(status(403, None)), Said::Nothing)
        );
    }

    #[test]
    fn what_was_written_and_seen_is_the_machines_own() {
        let marks = BTreeMap::from([("a".to_string(), rv("20"))]);
        let mut m = Machine::new(Start::List { marks });
        let listed = |ns: &str, v: &str| ListedObject {
            namespace: Some(ns.into()),
            resource_version: rv(v),
            uid: None,
            count: None,
            line: Vec::new(),
        };
        assert!(
            m.already_written(&listed("a", "20")),
            "at its namespace's mark"
        );
        assert!(!m.already_written(&listed("a", "21")));
        assert!(
            !m.already_written(&listed("b", "3")),
            "no mark, nothing written"
        );
        m.listed_up_to(rv("15"));
        assert!(m.already_written(&listed("b", "15")));
        assert_eq!(m.newest(), None, "a LIST's items are not its position");
        m.step(&Outcome::Listed(rv("30")));
        assert_eq!(m.newest(), Some(&rv("30")));
        // The watch: a frame written, a bookmark, another frame written.
        assert!(m.must_write(&rv("31")));
        m.wrote(rv("31"));
        assert!(!m.must_write(&rv("31")));
        assert_eq!(m.newest(), Some(&rv("31")));
        m.saw(rv("35"));
        assert_eq!(m.newest(), Some(&rv("35")));
        assert_eq!(m.written(), Some(&rv("31")));
        m.wrote(rv("36"));
        m.step(&Outcome::Broken("x".into()));
        assert_eq!(
            m.position(),
            Some(&rv("36")),
            "resumes after the newest seen"
        );
        assert!(
            m.already_written(&listed("a", "21")),
            "after what was written"
        );
    }
}
