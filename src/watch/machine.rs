//! The watch loop's state machine, pure: how one LIST or WATCH attempt ended ([`Outcome`]) goes
//! in, and out comes everything the loop needs for the next one ([`Step`]): the request, how
//! long to wait first, the reason it is counted under, or that the scope stops for good.
//! Nothing about a transition is worked out anywhere else.

use std::time::Duration;

use super::api::ApiError;
use crate::frame::{ResourceVersion, Status};
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

/// One scope's watch state.
#[derive(Debug, Default)]
pub struct Machine {
    /// Where a resumed watch starts: the newest version seen (written, listed or bookmarked).
    position: Option<ResourceVersion>,
    /// Quick, empty watch ends in a row.
    stalls: u32,
    /// Whether the API server has accepted any request for this scope.
    started: bool,
}

impl Machine {
    /// Starts from the output's last frame for the scope, if any.
    pub fn new(position: Option<ResourceVersion>) -> Self {
        Self {
            position,
            ..Self::default()
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
    pub fn position(&self) -> Option<&ResourceVersion> {
        self.position.as_ref()
    }

    /// From how an attempt ended, and the newest version its frames carried (data or
    /// BOOKMARK), to what comes next. Any outcome but a failed request means the API server
    /// accepted one: refusals from then on are retried, not fatal.
    pub fn step(&mut self, seen: Option<ResourceVersion>, outcome: &Outcome) -> Step {
        if !matches!(outcome, Outcome::Failed(_) | Outcome::Cancelled) {
            self.started = true;
        }
        let saw_frames = seen.is_some();
        if let Some(rv) = seen {
            self.position = Some(rv);
        }
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
            Outcome::Cancelled => Step::Stop,
            Outcome::Failed(e) if !self.started && e.is_refusal() => Step::Fatal(e.clone()),
            Outcome::Listed(rv) => {
                self.position = Some(rv.clone());
                next(
                    Request::Watch(rv.clone()),
                    Wait::None,
                    Reason::Watch(WatchStart::AfterList),
                )
            }
            Outcome::Closed { .. } if progressed => resume(Wait::None, WatchStart::ServerClosed),
            Outcome::Closed { .. } => {
                self.stalls += 1;
                if self.stalls >= STALL_LIMIT {
                    self.stalls = 0;
                    return relist(Wait::Backoff, Relist::NoProgress);
                }
                resume(Wait::Backoff, WatchStart::ServerClosed)
            }
            Outcome::Stalled => relist(Wait::Backoff, Relist::Stalled),
            Outcome::Unwritable(_) => relist(Wait::Backoff, Relist::Retry),
            Outcome::Expired if progressed => relist(Wait::None, Relist::Expired),
            Outcome::Expired => relist(Wait::Backoff, Relist::Expired),
            Outcome::Broken(_) => resume(Wait::Backoff, WatchStart::Broken),
            Outcome::ErrorFrame(_) => resume(Wait::Backoff, WatchStart::ErrorFrame),
            Outcome::Failed(e) if e.is_expired() => relist(Wait::Backoff, Relist::Expired),
            Outcome::Failed(e) => {
                let wait = e.retry_after().map_or(Wait::Backoff, Wait::RetryAfter);
                resume(wait, WatchStart::RequestFailed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s.into())
    }

    fn at(pos: &str) -> Machine {
        let mut m = Machine::new(Some(rv(pos)));
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
            Machine::new(Some(rv("5"))).first(),
            (Request::Watch(rv("5")), Reason::Watch(WatchStart::Start))
        );
        assert_eq!(
            Machine::new(None).first(),
            (Request::List, Reason::List(Relist::Initial))
        );
    }

    #[test]
    fn a_list_leads_to_a_watch_from_its_version() {
        let mut m = Machine::default();
        assert_eq!(
            m.step(None, &Outcome::Listed(rv("9"))),
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
            m.step(None, &failed),
            go(Request::List, Wait::Backoff, Reason::List(Relist::Retry))
        );
        let mut m = at("5");
        assert_eq!(
            m.step(None, &failed),
            go(Request::List, Wait::Backoff, Reason::List(Relist::Retry))
        );
    }

    #[test]
    fn clean_ends_resume_at_once_and_broken_ones_back_off() {
        let mut m = at("5");
        assert_eq!(
            m.step(Some(rv("6")), &CLOSED),
            progressed(go(
                Request::Watch(rv("6")),
                Wait::None,
                Reason::Watch(WatchStart::ServerClosed)
            ))
        );
        assert_eq!(
            m.step(None, &Outcome::Broken("x".into())),
            go(
                Request::Watch(rv("6")),
                Wait::Backoff,
                Reason::Watch(WatchStart::Broken)
            )
        );
        assert_eq!(
            m.step(
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
            m.step(
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
        assert_eq!(m.step(None, &CLOSED), again);
        assert_eq!(m.step(None, &CLOSED), again);
        assert_eq!(
            m.step(None, &CLOSED),
            go(
                Request::List,
                Wait::Backoff,
                Reason::List(Relist::NoProgress)
            )
        );
        // Progress in between clears the count.
        m.step(None, &CLOSED);
        m.step(Some(rv("5")), &Outcome::Broken("x".into()));
        m.step(None, &CLOSED);
        assert_eq!(m.step(None, &CLOSED), again);
    }

    #[test]
    fn expiry_relists() {
        let mut m = at("5");
        assert_eq!(
            m.step(None, &Outcome::Expired),
            go(Request::List, Wait::Backoff, Reason::List(Relist::Expired))
        );
        assert_eq!(
            m.step(Some(rv("6")), &Outcome::Expired),
            progressed(go(Request::List, Wait::None, Reason::List(Relist::Expired)))
        );
        assert_eq!(
            m.step(None, &Outcome::Failed(status(410, None))),
            go(Request::List, Wait::Backoff, Reason::List(Relist::Expired))
        );
        assert_eq!(
            m.step(None, &Outcome::Stalled),
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
            m.step(
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
            m.step(None, &Outcome::Failed(status(503, None))),
            go(
                Request::Watch(rv("7")),
                Wait::Backoff,
                Reason::Watch(WatchStart::RequestFailed)
            )
        );
        assert_eq!(m.step(None, &Outcome::Cancelled), Step::Stop);
    }

    #[test]
    fn refusals_are_fatal_only_before_anything_succeeded() {
        let mut m = Machine::new(Some(rv("3")));
        assert_eq!(
            m.step(None, &Outcome::Failed(status(403, None))),
            Step::Fatal(status(403, None))
        );
        // Not a refusal: retried even before the first success.
        assert!(matches!(
            m.step(None, &Outcome::Failed(status(500, None))),
            Step::Next { .. }
        ));
        m.started = true;
        assert_eq!(
            m.step(None, &Outcome::Failed(status(403, None))),
            go(
                Request::Watch(rv("3")),
                Wait::Backoff,
                Reason::Watch(WatchStart::RequestFailed)
            )
        );
        assert!(Outcome::Failed(status(403, None)).breaks_watch());
        assert!(!CLOSED.breaks_watch());
    }
}
