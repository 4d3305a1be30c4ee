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
//! - **reservations**: just before a rotation's token request, each of its GitHub targets
//!   reserves the points of its write, so the writes after the rotation do not wait for a budget
//!   that other requests (other rotations') spent meanwhile, and a rotation whose writes do not fit
//!   waits *before* its token request, where waiting costs nothing. Writes also go ahead of every
//!   other request.

use std::collections::VecDeque;
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
/// A reservation not used by then is given back (its rotation ended without writing).
const RESERVATION_LAPSES: Duration = Duration::from_secs(600);
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
    /// Points promised to writes not sent yet: (id, rotation, since, points).
    reserved: Vec<(u64, String, Instant, u32)>,
    next_id: u64,
    in_flight: usize,
    /// The concurrency allowed now (halved after a limit answer).
    limit: usize,
    successes: u32,
    /// No request starts before this (a limit answer's wait).
    gate: Option<Instant>,
    /// Writes waiting: other requests let them go first.
    writes_waiting: usize,
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
        self.reserved.retain(|(_, _, since, _)| now.duration_since(*since) < RESERVATION_LAPSES);
        if self.gate.is_some_and(|g| g <= now) {
            self.gate = None;
        }
    }

    fn reserved_sum(&self) -> u32 {
        self.reserved.iter().map(|(_, _, _, p)| p).sum()
    }

    fn reserved_by(&self, rotation: &str) -> u32 {
        self.reserved.iter().filter(|(_, r, _, _)| r == rotation).map(|(_, _, _, p)| p).sum()
    }

    /// When enough of the window's points expire for `points` more (with what is reserved).
    fn room_at(&self, points: u32, budget: u32) -> Option<Instant> {
        let mut over = (self.spent_sum + self.reserved_sum() + points).checked_sub(budget)?;
        if over == 0 {
            return None;
        }
        for &(at, p) in &self.spent {
            if p >= over {
                return Some(at + WINDOW);
            }
            over -= p;
        }
        // Reservations alone fill the budget: wait for writes to use them.
        Some(Instant::now() + POLL)
    }
}

/// Points promised to a target's coming write.
#[derive(Debug)]
pub struct Reservation {
    pacer: Arc<Pacer>,
    /// `None`: the budget was already fully promised; the write is paced when it comes.
    id: Option<u64>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.pacer.lock().reserved.retain(|(i, _, _, _)| *i != id);
            self.pacer.changed.notify_waiters();
        }
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

/// Whether a request goes ahead of others, and on what budget.
#[derive(Debug)]
pub enum Class {
    /// A read or a preflight write.
    Normal,
    /// A write after the rotation: ahead of every other request, on its reservation if it has one.
    Write(Option<Reservation>),
}

impl Pacer {
    /// A pacer allowing `max_concurrency` requests in flight and `budget` points a minute.
    pub fn new(max_concurrency: usize, budget: u32) -> Arc<Pacer> {
        Arc::new(Pacer {
            state: Mutex::new(State {
                spent: VecDeque::new(),
                spent_sum: 0,
                reserved: Vec::new(),
                next_id: 0,
                in_flight: 0,
                limit: max_concurrency,
                successes: 0,
                gate: None,
                writes_waiting: 0,
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

    /// Reserves a write's points for `rotation` before its token request, waiting while the
    /// window has no room for them (other rotations' reservations are used by their writes soon).
    /// Once the rotation's own reservations fill the whole budget, its further ones are unbacked
    /// (those writes are paced when they come) instead of waiting for writes that cannot start
    /// before this rotation does.
    pub async fn reserve(
        self: &Arc<Self>,
        rotation: &str,
        points: u32,
        shutdown: &Shutdown,
    ) -> Result<Reservation, HttpError> {
        let budget = self.budget;
        let id = self
            .wait(shutdown, |s, now| {
                if s.reserved_by(rotation) + points > budget {
                    return Ok(None);
                }
                match s.room_at(points, budget) {
                    Some(at) => Err(Some(at)),
                    None => {
                        let id = s.next_id;
                        s.next_id += 1;
                        s.reserved.push((id, rotation.to_owned(), now, points));
                        Ok(Some(id))
                    }
                }
            })
            .await?;
        Ok(Reservation { pacer: self.clone(), id })
    }

    /// Waits until a request of `points` may start; the slot is held while it is in flight.
    pub async fn admit(
        self: &Arc<Self>,
        points: u32,
        class: &mut Class,
        shutdown: &Shutdown,
    ) -> Result<Slot, HttpError> {
        let budget = self.budget;
        let is_write = matches!(class, Class::Write(_));
        if is_write {
            self.lock().writes_waiting += 1;
        }
        let reserved = match class {
            Class::Write(r) => r.as_mut().and_then(|r| r.id.take()),
            Class::Normal => None,
        };
        let mut reserved_id = reserved;
        let admitted = self
            .wait(shutdown, |s, now| {
                if let Some(gate) = s.gate {
                    return Err(Some(gate));
                }
                if s.in_flight >= s.limit || (!is_write && s.writes_waiting > 0) {
                    return Err(None);
                }
                // A reservation still held is spent as it is; a lapsed one no longer counts.
                let backed = reserved_id.is_some_and(|id| s.reserved.iter().any(|(i, _, _, _)| *i == id));
                if let Some(id) = reserved_id.take() {
                    s.reserved.retain(|(i, _, _, _)| *i != id);
                }
                if !backed {
                    if let Some(at) = s.room_at(points, budget) {
                        return Err(Some(at));
                    }
                }
                s.spent.push_back((now, points));
                s.spent_sum += points;
                s.in_flight += 1;
                Ok(())
            })
            .await;
        if is_write {
            self.lock().writes_waiting -= 1;
            self.changed.notify_waiters();
        }
        admitted.map(|()| Slot { pacer: self.clone() })
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
            let _slot = pacer.admit(5, &mut Class::Normal, &s).await.unwrap();
            starts.push(start.elapsed());
        }
        // 4 writes fit a minute's 20 points; the 5th waits for the first to leave the window.
        assert!(starts[3] < Duration::from_secs(1), "{starts:?}");
        assert!(starts[4] >= WINDOW, "{starts:?}");
        assert!(starts[8] >= WINDOW * 2, "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reservation_keeps_a_writes_points_from_other_requests() {
        let pacer = Pacer::new(8, 10);
        let s = shutdown();
        let reservation = pacer.reserve("a", 5, &s).await.unwrap();
        // 5 points are free: one more write fits, the next waits a window.
        drop(pacer.admit(5, &mut Class::Normal, &s).await.unwrap());
        let start = Instant::now();
        let mut write = Class::Write(Some(reservation));
        drop(pacer.admit(5, &mut write, &s).await.unwrap());
        assert!(start.elapsed() < Duration::from_secs(1), "the reserved write went at once");
        drop(pacer.admit(5, &mut Class::Normal, &s).await.unwrap());
        assert!(start.elapsed() >= WINDOW, "a request beyond the budget waited for the window");
    }

    #[tokio::test(start_paused = true)]
    async fn reservations_beyond_the_budget_do_not_wait_for_writes_that_come_later() {
        let pacer = Pacer::new(8, 10);
        let s = shutdown();
        let a = pacer.reserve("r1", 5, &s).await.unwrap();
        let b = pacer.reserve("r1", 5, &s).await.unwrap();
        let c = pacer.reserve("r1", 5, &s).await.unwrap();
        assert!(a.id.is_some() && b.id.is_some());
        assert!(c.id.is_none(), "the third is unbacked instead of waiting forever");
        // Another rotation's reservation waits for r1's writes to use theirs (or give them back).
        let start = Instant::now();
        let p = pacer.clone();
        let other = tokio::spawn(async move { p.reserve("r2", 5, &shutdown()).await.unwrap().id.is_some() });
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(a);
        assert!(other.await.unwrap(), "backed once r1 gave one back");
        assert!(start.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_answer_holds_every_request_and_halves_the_concurrency() {
        let pacer = Pacer::new(8, 900);
        let s = shutdown();
        let refused =
            response(403, r#"{"message":"You have exceeded a secondary rate limit"}"#, &[("retry-after", "3")]);
        pacer.observe(&Ok(refused), 1);
        assert_eq!(pacer.lock().limit, 4);
        assert_eq!(pacer.limited(), 1);
        let start = Instant::now();
        drop(pacer.admit(1, &mut Class::Normal, &s).await.unwrap());
        assert!(start.elapsed() >= Duration::from_secs(3), "{:?}", start.elapsed());
        for _ in 0..RECOVER_AFTER {
            pacer.observe(&Ok(response(200, "{}", &[])), 1);
        }
        assert_eq!(pacer.lock().limit, 5, "successes grow the concurrency back");
    }

    #[tokio::test(start_paused = true)]
    async fn writes_go_ahead_of_waiting_requests() {
        let pacer = Pacer::new(1, 900);
        let s = shutdown();
        let first = pacer.admit(1, &mut Class::Normal, &s).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let read = {
            let (p, s, o) = (pacer.clone(), s.clone(), order.clone());
            tokio::spawn(async move {
                let _slot = p.admit(1, &mut Class::Normal, &s).await.unwrap();
                o.lock().unwrap().push("read");
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let write = {
            let (p, s, o) = (pacer.clone(), s.clone(), order.clone());
            tokio::spawn(async move {
                let _slot = p.admit(5, &mut Class::Write(None), &s).await.unwrap();
                o.lock().unwrap().push("write");
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(first);
        read.await.unwrap();
        write.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["write", "read"]);
    }
}
