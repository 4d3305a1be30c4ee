//! Pacing of GitHub requests within GitHub's secondary rate limits, which GitHub documents as: at
//! most 100 concurrent requests, and about 900 points a minute for the REST API, where a GET (or
//! HEAD, OPTIONS) costs 1 point and a write 5. An answer of 403/429 with `retry-after`, or with
//! `x-ratelimit-remaining: 0` and `x-ratelimit-reset`, means a limit was hit.
//!
//! The pacer keeps every request of a run inside those limits:
//! - **concurrency**: at most `max_concurrency` requests in flight; after a limit answer it halves
//!   (additive increase again after a run of successes);
//! - **points**: a sliding window of the last minute's points, never over the budget;
//! - **a gate**: a limit answer (or a primary limit at 0) holds every request until the time
//!   GitHub named, not just the one that was refused;
//! - **writes first**: the writes after a rotation go ahead of every other request, and before the
//!   rotation reads go ahead of preflight writes (a read is what a preflight write waits for, so
//!   the preflight of many targets ends soonest that way);
//! - **room before the rotation**: just before a rotation's token request, it waits until the
//!   window has room for its writes (up to a whole minute's budget) and for any gate to open, so
//!   its writes find the budget there; waiting then costs nothing, while after the rotation the new
//!   credential is unstored until they are done. A gate further away than [`MAX_GATE_BEFORE`]
//!   fails a request (and so the rotation, before its token request) at once; after it, a write
//!   never waits longer than [`MAX_GATE_AFTER`] for a gate (it fails, and the credential is
//!   rescued, rather than wait past the job's time).
//!
//! Nothing here waits on anything but time and requests in flight, so no rotation can hold up
//! another for longer than a window.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::http::{retry_delay, HttpError, Method, Request, Response, Shutdown};
use crate::log;

/// GitHub's documented REST budget of secondary-limit points per minute.
pub const DEFAULT_POINTS_PER_MINUTE: u32 = 900;
/// The window GitHub counts points in, with a second's margin: GitHub sees a request a little
/// after it is admitted here, so it keeps counting it a little longer.
const WINDOW: Duration = Duration::from_secs(61);
/// The longest a rotation waits for a closed gate before its token request; beyond, it stops.
pub const MAX_GATE_BEFORE: Duration = Duration::from_secs(300);
/// The longest a write after the rotation waits for a closed gate; beyond, it fails at once.
pub const MAX_GATE_AFTER: Duration = Duration::from_secs(60);
/// Successes after which the concurrency grows back by one.
const RECOVER_AFTER: u32 = 16;
/// How often a waiting request looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(500);

/// What a request costs in GitHub's secondary-limit points.
pub fn cost(req: &Request) -> u32 {
    if req.method == Method::GET || req.method == Method::HEAD || req.method == Method::OPTIONS {
        1
    } else {
        5
    }
}

/// The pacer of one run's GitHub requests (shared by every GitHub target).
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
    changed: Notify,
    max_concurrency: usize,
    budget: u32,
}

#[derive(Debug)]
struct State {
    /// Points spent in the window: (when, points).
    spent: VecDeque<(Instant, u32)>,
    spent_sum: u32,
    /// Per rotation about to rotate: the points its writes will need (for its own wait only).
    coming: HashMap<String, u32>,
    in_flight: usize,
    /// The concurrency allowed now (halved after a limit answer).
    limit: usize,
    successes: u32,
    /// No request starts before this (a limit answer's wait).
    gate: Option<Instant>,
    /// Requests waiting, per class: a class lets every class before it go first.
    waiting: [usize; Class::COUNT],
    /// Limit answers seen (for the log and the report).
    limited: u32,
}

impl State {
    fn tidy(&mut self, now: Instant) {
        while let Some(&(at, points)) = self.spent.front() {
            if now.duration_since(at) < WINDOW {
                break;
            }
            self.spent.pop_front();
            self.spent_sum -= points;
        }
        if self.gate.is_some_and(|g| g <= now) {
            self.gate = None;
        }
    }

    /// When enough of the window's points expire for `points` more; `None`: now.
    fn room_at(&self, points: u32, budget: u32) -> Option<Instant> {
        let mut over = (self.spent_sum + points).checked_sub(budget)?;
        if over == 0 {
            return None;
        }
        for &(at, p) in &self.spent {
            if p >= over {
                return Some(at + WINDOW);
            }
            over -= p;
        }
        Some(Instant::now() + POLL)
    }
}

/// A request in flight; dropping it frees its slot.
#[derive(Debug)]
pub struct Slot {
    pacer: Arc<Pacer>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pacer.lock().in_flight -= 1;
        self.pacer.changed.notify_waiters();
    }
}

/// Counts a request as waiting while it lives (also when its wait is cancelled).
struct Waiting<'a>(&'a Pacer, Class);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting[self.1 as usize] -= 1;
        self.0.changed.notify_waiters();
    }
}

/// Which requests go ahead of which: a waiting request of one class holds back every later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A write after the rotation: the new credential is unstored until it is done.
    Write = 0,
    /// A read (before the rotation): a preflight write waits for it.
    Read = 1,
    /// A preflight write: nothing waits for it but the rotation, which waits for all of them.
    Proof = 2,
}

impl Class {
    const COUNT: usize = 3;

    /// The class of a request sent before the rotation.
    pub fn before_rotation(req: &Request) -> Class {
        if cost(req) == 1 {
            Class::Read
        } else {
            Class::Proof
        }
    }
}

fn gate_error(until: Instant) -> HttpError {
    let secs = until.saturating_duration_since(Instant::now()).as_secs();
    HttpError::NotSent(format!("GitHub's rate limit holds every request for another {secs}s"))
}

impl Pacer {
    /// A pacer allowing `max_concurrency` requests in flight and `budget` points a minute.
    pub fn new(max_concurrency: usize, budget: u32) -> Arc<Pacer> {
        Arc::new(Pacer {
            state: Mutex::new(State {
                spent: VecDeque::new(),
                spent_sum: 0,
                coming: HashMap::new(),
                in_flight: 0,
                limit: max_concurrency,
                successes: 0,
                gate: None,
                waiting: [0; Class::COUNT],
                limited: 0,
            }),
            changed: Notify::new(),
            max_concurrency,
            budget,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `f` says the state allows going on (`Ok(value)`), or until the time it names.
    async fn wait<T>(
        &self,
        shutdown: &Shutdown,
        mut f: impl FnMut(&mut State, Instant) -> Result<T, Option<Instant>>,
    ) -> Result<T, HttpError> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let until = {
                let mut s = self.lock();
                let now = Instant::now();
                s.tidy(now);
                match f(&mut s, now) {
                    Ok(v) => return Ok(v),
                    Err(until) => until,
                }
            };
            let nap = until.map_or(POLL, |u| u.saturating_duration_since(Instant::now()).min(POLL));
            tokio::select! {
                _ = &mut notified => {}
                ok = shutdown.sleep(nap) => if !ok { return Err(HttpError::Interrupted) },
            }
        }
    }

    /// Before `rotation`'s token request, for one more of its writes (`points`): waits until the
    /// window has room for all of its writes so far (at most a whole minute's budget) and any gate
    /// is open; a gate further away than [`MAX_GATE_BEFORE`] is an error (nothing is rotated).
    pub async fn reserve(&self, rotation: &str, points: u32, shutdown: &Shutdown) -> Result<(), HttpError> {
        let budget = self.budget;
        let need = {
            let mut s = self.lock();
            let c = s.coming.entry(rotation.to_owned()).or_default();
            *c += points;
            (*c).min(budget)
        };
        self.wait(shutdown, |s, now| {
            if let Some(gate) = s.gate {
                if gate.saturating_duration_since(now) > MAX_GATE_BEFORE {
                    return Ok(Err(gate_error(gate)));
                }
                return Err(Some(gate));
            }
            match s.room_at(need, budget) {
                Some(at) => Err(Some(at)),
                None => Ok(Ok(())),
            }
        })
        .await?
    }

    /// `rotation` is done: what its writes needed no longer matters.
    pub fn release(&self, rotation: &str) {
        self.lock().coming.remove(rotation);
    }

    /// Waits until a request of `points` may start; the slot is held while it is in flight.
    pub async fn admit(self: &Arc<Self>, points: u32, class: Class, shutdown: &Shutdown) -> Result<Slot, HttpError> {
        let budget = self.budget;
        let is_write = class == Class::Write;
        self.lock().waiting[class as usize] += 1;
        let _waiting = Waiting(self, class);
        self.wait(shutdown, |s, now| {
            if let Some(gate) = s.gate {
                let longest = if is_write { MAX_GATE_AFTER } else { MAX_GATE_BEFORE };
                if gate.saturating_duration_since(now) > longest {
                    return Ok(Err(gate_error(gate)));
                }
                return Err(Some(gate));
            }
            if s.in_flight >= s.limit || s.waiting[..class as usize].iter().any(|&n| n > 0) {
                return Err(None);
            }
            if let Some(at) = s.room_at(points, budget) {
                return Err(Some(at));
            }
            s.spent.push_back((now, points));
            s.spent_sum += points;
            s.in_flight += 1;
            Ok(Ok(()))
        })
        .await??;
        Ok(Slot { pacer: self.clone() })
    }

    /// Learns from an answer: a limit answer closes the gate until the time GitHub named and
    /// halves the concurrency (once per gate: the answers of one burst halve it once); successes
    /// grow it back. True for a limit answer (every request now waits for the gate).
    pub fn observe(&self, result: &Result<Response, HttpError>, attempt: u32) -> bool {
        let Ok(r) = result else { return false };
        let status = r.status.as_u16();
        let remaining =
            r.headers.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        let limited = (status == 403 || status == 429) && retry_delay(r, attempt).is_some();
        let exhausted = remaining == Some(0) && (200..300).contains(&status);
        let mut s = self.lock();
        if limited || exhausted {
            let wait = if limited {
                retry_delay(r, attempt).unwrap_or(WINDOW)
            } else {
                let reset =
                    r.headers.get("x-ratelimit-reset").and_then(|v| v.to_str().ok()?.trim().parse::<i64>().ok());
                let now = jiff::Timestamp::now().as_second();
                Duration::from_secs(reset.map_or(60, |t| (t - now).max(0) as u64 + 1))
            };
            let now = Instant::now();
            let first_of_burst = s.gate.is_none_or(|g| g <= now);
            let until = now + wait;
            s.gate = Some(s.gate.map_or(until, |g| g.max(until)));
            if limited {
                s.limited += 1;
                s.successes = 0;
                if first_of_burst {
                    s.limit = (s.limit / 2).max(1);
                    log::warn(&format!(
                        "GitHub's rate limit answered HTTP {status}: every GitHub request waits {:.1}s, then at most {} at once",
                        wait.as_secs_f64(),
                        s.limit
                    ));
                }
            } else {
                log::warn(&format!(
                    "GitHub's rate limit is used up: every GitHub request waits {:.0}s for its reset",
                    wait.as_secs_f64()
                ));
            }
        } else if status < 400 && s.limit < self.max_concurrency {
            s.successes += 1;
            if s.successes >= RECOVER_AFTER {
                s.limit += 1;
                s.successes = 0;
            }
        }
        drop(s);
        self.changed.notify_waiters();
        limited
    }

    /// Limit answers GitHub gave this run.
    pub fn limited(&self) -> u32 {
        self.lock().limited
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::response;

    fn shutdown() -> Shutdown {
        let (tx, s) = Shutdown::new();
        std::mem::forget(tx);
        s
    }

    #[tokio::test(start_paused = true)]
    async fn the_points_of_a_minute_never_exceed_the_budget() {
        let pacer = Pacer::new(8, 20);
        let s = shutdown();
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..10 {
            let _slot = pacer.admit(5, Class::Read, &s).await.unwrap();
            starts.push(start.elapsed());
        }
        // 4 writes fit a minute's 20 points; the 5th waits for the first to leave the window.
        assert!(starts[3] < Duration::from_secs(1), "{starts:?}");
        assert!(starts[4] >= WINDOW, "{starts:?}");
        assert!(starts[8] >= WINDOW * 2, "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_waits_before_its_token_request_until_its_writes_fit() {
        let pacer = Pacer::new(8, 20);
        let s = shutdown();
        for _ in 0..3 {
            drop(pacer.admit(5, Class::Read, &s).await.unwrap());
        }
        // 15 of 20 points spent: one write fits now, two only once the window moves on.
        let start = Instant::now();
        pacer.reserve("r1", 5, &s).await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(1));
        pacer.reserve("r1", 5, &s).await.unwrap();
        assert!(start.elapsed() >= WINDOW - Duration::from_secs(1), "{:?}", start.elapsed());
        // Another rotation's wait counts its own writes only: it never waits for r1's.
        pacer.release("r1");
        let start = Instant::now();
        pacer.reserve("r2", 5, &s).await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_whose_writes_exceed_the_budget_waits_for_one_minutes_worth_only() {
        let pacer = Pacer::new(8, 10);
        let s = shutdown();
        for _ in 0..5 {
            pacer.reserve("big", 5, &s).await.unwrap();
        }
        let start = Instant::now();
        pacer.reserve("big", 5, &s).await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(1), "25 points of writes wait for no more than 10");
    }

    #[tokio::test(start_paused = true)]
    async fn a_far_gate_stops_a_rotation_before_its_token_request_and_fails_a_write_at_once() {
        let pacer = Pacer::new(8, 900);
        let s = shutdown();
        let reset = (jiff::Timestamp::now().as_second() + 3600).to_string();
        let exhausted = response(200, "{}", &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]);
        pacer.observe(&Ok(exhausted), 1);
        let e = pacer.reserve("r1", 5, &s).await.unwrap_err();
        assert!(e.to_string().contains("GitHub's rate limit holds every request"), "{e}");
        let start = Instant::now();
        let e = pacer.admit(5, Class::Write, &s).await.unwrap_err();
        assert!(matches!(e, HttpError::NotSent(_)) && start.elapsed() < Duration::from_secs(1), "{e}");
        assert_eq!(pacer.lock().waiting, [0; Class::COUNT], "a write that gave up is no longer waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_answer_holds_every_request_and_halves_the_concurrency() {
        let pacer = Pacer::new(8, 900);
        let s = shutdown();
        let refused =
            || response(403, r#"{"message":"You have exceeded a secondary rate limit"}"#, &[("retry-after", "3")]);
        pacer.observe(&Ok(refused()), 1);
        pacer.observe(&Ok(refused()), 1);
        assert_eq!(pacer.lock().limit, 4, "the answers of one burst halve it once");
        assert_eq!(pacer.limited(), 2);
        let start = Instant::now();
        drop(pacer.admit(1, Class::Read, &s).await.unwrap());
        assert!(start.elapsed() >= Duration::from_secs(3), "{:?}", start.elapsed());
        for _ in 0..RECOVER_AFTER {
            pacer.observe(&Ok(response(200, "{}", &[])), 1);
        }
        assert_eq!(pacer.lock().limit, 5, "successes grow the concurrency back");
    }

    #[tokio::test(start_paused = true)]
    async fn writes_go_ahead_of_reads_and_reads_ahead_of_preflight_writes() {
        let pacer = Pacer::new(1, 900);
        let s = shutdown();
        let first = pacer.admit(1, Class::Read, &s).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        // Queued in the reverse of the order they must start in.
        let mut tasks = Vec::new();
        for (class, name) in [(Class::Proof, "proof"), (Class::Read, "read"), (Class::Write, "write")] {
            let (p, s, o) = (pacer.clone(), s.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = p.admit(cost_of(class), class, &s).await.unwrap();
                o.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["write", "read", "proof"]);
        assert_eq!(pacer.lock().waiting, [0; Class::COUNT]);
    }

    fn cost_of(class: Class) -> u32 {
        if class == Class::Read {
            1
        } else {
            5
        }
    }

    #[test]
    fn before_the_rotation_a_get_is_a_read_and_a_put_a_proof() {
        let url = url::Url::parse("https://api.github.com/repos/acme/app/actions/secrets/X").unwrap();
        assert_eq!(Class::before_rotation(&Request::new(Method::GET, url.clone())), Class::Read);
        assert_eq!(Class::before_rotation(&Request::new(Method::PUT, url)), Class::Proof);
    }
}
