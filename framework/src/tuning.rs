//! Tuning sets: how a phase paces its actions.
//!
//! A phase hands the flat list of its actions to [`TuningRunner::run`] with its tuning set; the
//! runner starts them according to the set's policy (semantics of CL2's tuning sets, see
//! `docs/config-reference.md`) and returns once every started action has finished. Each
//! action runs in its own task, so slow API calls never delay the schedule.
//!
//! Deliberate improvement over CL2: rate-based sets follow an **absolute** schedule (action `i`
//! starts at `t0 + i/qps`) instead of sleeping `1/qps` after each start, so the achieved rate
//! does not drift below the requested one under load. As in CL2, the runner also waits one
//! interval after the last start, so `actions / duration` equals the requested rate.
//!
//! Cancellation stops starting new actions at once (sleeping ones are abandoned); actions
//! already started finish.

use parking_lot::Mutex;
use rand::Rng;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::config::{TuningSet, TuningSetKind};

/// The future of one started action; `Err` carries a message for the report.
pub type ActionFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One action of a phase: called when the tuning set decides to start it.
pub type Action = Box<dyn FnOnce() -> ActionFuture + Send>;

/// Called after each action finishes with (done, failed) counts so far.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How many error messages a run keeps.
pub const MAX_ERRORS: usize = 10;

/// What happened while running one batch of actions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    pub started: u64,
    pub failed: u64,
    /// Actions not started because of cancellation.
    pub skipped: u64,
    pub duration: Duration,
    /// First error messages (at most [`MAX_ERRORS`]).
    pub errors: Vec<String>,
    pub cancelled: bool,
}

/// A token bucket: `rate` tokens/s, at most `burst` stored. Waiters reserve a token and sleep
/// until it is due (like Go's `rate.Limiter.Wait`), so concurrent waiters are served in order.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket. `rate` must be > 0; `burst` is at least 1.
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: rate.max(1e-9),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Reserves one token and returns how long the caller must wait for it.
    pub fn reserve(&self) -> Duration {
        let mut st = self.state.lock();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(st.1).as_secs_f64();
        st.0 = (st.0 + elapsed * self.rate).min(self.burst);
        st.1 = now;
        st.0 -= 1.0;
        if st.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-st.0 / self.rate)
        }
    }

    /// Waits for one token; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let wait = self.reserve();
        if !wait.is_zero() {
            sleep(wait).await;
        }
        wait
    }
}

/// Runs batches of actions with tuning sets; holds the `globalQPSLoad` buckets, shared by every
/// phase using the same tuning-set name for the whole test.
#[derive(Debug, Default)]
pub struct TuningRunner {
    global: Mutex<HashMap<String, Arc<TokenBucket>>>,
}

/// The requested rate of a tuning set for `actions` actions, in actions/s, when it promises
/// one to the phase (`globalQPSLoad` does not: its bucket is shared across phases).
pub fn requested_qps(kind: &TuningSetKind, actions: usize) -> Option<f64> {
    match kind {
        TuningSetKind::QpsLoad { qps } => Some(*qps),
        TuningSetKind::RandomizedLoad { average_qps } => Some(*average_qps),
        TuningSetKind::SteppedLoad {
            burst_size,
            step_delay,
        } => (!step_delay.is_zero()).then(|| f64::from(*burst_size) / step_delay.as_secs_f64()),
        TuningSetKind::TimeLimitedLoad { time_limit }
        | TuningSetKind::RandomizedTimeLimitedLoad { time_limit } => {
            (!time_limit.is_zero()).then(|| actions as f64 / time_limit.as_secs_f64())
        }
        TuningSetKind::ParallelismLimitedLoad { .. } => None,
        // The bucket is shared with other phases: no per-phase rate is promised.
        TuningSetKind::GlobalQpsLoad { .. } => None,
        TuningSetKind::PoissonLoad {
            expected_actions_per_second,
        } => Some(*expected_actions_per_second),
    }
}

struct Shared {
    done: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<String>>,
    progress: Option<ProgressFn>,
}

impl Shared {
    fn finish(&self, result: Result<(), String>) {
        let failed = match result {
            Ok(()) => self.failed.load(Ordering::Relaxed),
            Err(e) => {
                let mut errs = self.errors.lock();
                if errs.len() < MAX_ERRORS {
                    errs.push(e);
                }
                self.failed.fetch_add(1, Ordering::Relaxed) + 1
            }
        };
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = &self.progress {
            p(done, failed);
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl TuningRunner {
    pub fn new() -> Self {
        Self::default()
    }

    fn global_bucket(&self, name: &str, qps: f64, burst: u32) -> Arc<TokenBucket> {
        self.global
            .lock()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(TokenBucket::new(qps, burst)))
            .clone()
    }

    /// Runs `actions` paced by `set`; returns when every started action has finished.
    pub async fn run(
        &self,
        set: &TuningSet,
        actions: Vec<Action>,
        cancel: &CancellationToken,
        progress: Option<ProgressFn>,
    ) -> RunStats {
        let t0 = Instant::now();
        let n = actions.len();
        let shared = Arc::new(Shared {
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            progress,
        });
        let mut tasks = tokio::task::JoinSet::new();
        let mut started: u64 = 0;
        let mut cancelled = false;
        let spawn = |tasks: &mut tokio::task::JoinSet<()>, action: Action| {
            let shared = shared.clone();
            tasks.spawn(async move {
                let r = action().await;
                shared.finish(r);
            });
        };
        // Waits until `at` unless cancelled; false when cancelled.
        async fn wait_until(at: Instant, cancel: &CancellationToken) -> bool {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => false,
                _ = sleep_until(at) => true,
            }
        }
        let mut iter = actions.into_iter();
        match &set.kind {
            TuningSetKind::RandomizedTimeLimitedLoad { time_limit } => {
                for action in iter.by_ref() {
                    let delay = secs(rand::rng().random_range(0.0..1.0) * time_limit.as_secs_f64());
                    let shared = shared.clone();
                    let cancel = cancel.clone();
                    started += 1;
                    tasks.spawn(async move {
                        tokio::select! {
                            biased;
                            _ = cancel.cancelled() => {}
                            _ = sleep(delay) => {
                                let r = action().await;
                                shared.finish(r);
                            }
                        }
                    });
                }
            }
            TuningSetKind::ParallelismLimitedLoad { parallelism_limit } => {
                let sem = Arc::new(tokio::sync::Semaphore::new(*parallelism_limit as usize));
                for action in iter.by_ref() {
                    let permit = tokio::select! {
                        biased;
                        _ = cancel.cancelled() => None,
                        p = sem.clone().acquire_owned() => p.ok(),
                    };
                    let Some(permit) = permit else {
                        cancelled = true;
                        break;
                    };
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let r = action().await;
                        shared.finish(r);
                        drop(permit);
                    });
                    started += 1;
                }
            }
            TuningSetKind::GlobalQpsLoad { qps, burst } => {
                let bucket = self.global_bucket(&set.name, *qps, *burst);
                for action in iter.by_ref() {
                    let ok = tokio::select! {
                        biased;
                        _ = cancel.cancelled() => false,
                        _ = bucket.acquire() => true,
                    };
                    if !ok {
                        cancelled = true;
                        break;
                    }
                    spawn(&mut tasks, action);
                    started += 1;
                }
            }
            paced @ (TuningSetKind::QpsLoad { .. }
            | TuningSetKind::RandomizedLoad { .. }
            | TuningSetKind::SteppedLoad { .. }
            | TuningSetKind::TimeLimitedLoad { .. }
            | TuningSetKind::PoissonLoad { .. }) => {
                // Paced by start times: action `i` starts at `at`, and `next` gives the start
                // of the one after it from `i` and `at`.
                let next = |i: usize, at: Instant| match paced {
                    TuningSetKind::QpsLoad { qps } => t0 + secs((i + 1) as f64 * (1.0 / qps)),
                    TuningSetKind::RandomizedLoad { average_qps } => {
                        let u: f64 = rand::rng().random_range(0.0..2.0);
                        at + secs(u / average_qps)
                    }
                    TuningSetKind::SteppedLoad {
                        burst_size,
                        step_delay,
                    } if (i + 1).is_multiple_of((*burst_size as usize).max(1)) => {
                        Instant::now() + *step_delay
                    }
                    TuningSetKind::TimeLimitedLoad { time_limit } => {
                        t0 + secs((i + 1) as f64 * (time_limit.as_secs_f64() / n as f64))
                    }
                    TuningSetKind::PoissonLoad {
                        expected_actions_per_second,
                    } => {
                        let u: f64 = rand::rng().random_range(0.0..1.0);
                        at + secs(-(1.0 - u).ln() / expected_actions_per_second)
                    }
                    _ => at,
                };
                let mut at = t0;
                for (i, action) in iter.by_ref().enumerate() {
                    if !wait_until(at, cancel).await {
                        cancelled = true;
                        break;
                    }
                    spawn(&mut tasks, action);
                    started += 1;
                    at = next(i, at);
                }
                // Rate-paced sets last their whole span, past the last start.
                let end = match paced {
                    TuningSetKind::QpsLoad { qps } => Some(t0 + secs(n as f64 * (1.0 / qps))),
                    TuningSetKind::RandomizedLoad { .. } => Some(at),
                    TuningSetKind::TimeLimitedLoad { time_limit } if n > 0 => {
                        Some(t0 + *time_limit)
                    }
                    _ => None,
                };
                if let Some(end) = end
                    && !cancelled
                {
                    cancelled = !wait_until(end, cancel).await;
                }
            }
        }
        drop(iter);
        while tasks.join_next().await.is_some() {}
        if cancel.is_cancelled() {
            cancelled = true;
        }
        // Randomized time-limited actions may have been abandoned while sleeping.
        let done = shared.done.load(Ordering::Relaxed);
        if matches!(set.kind, TuningSetKind::RandomizedTimeLimitedLoad { .. }) {
            started = done;
        }
        let skipped = n as u64 - started;
        let errors = shared.errors.lock().clone();
        RunStats {
            started,
            failed: shared.failed.load(Ordering::Relaxed),
            skipped,
            duration: t0.elapsed(),
            errors,
            cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(kind: TuningSetKind) -> TuningSet {
        TuningSet {
            name: "ts".into(),
            kind,
        }
    }

    /// Actions that record their start offset (ms since `t0`) and take `work` to finish.
    fn recording(n: usize, t0: Instant, work: Duration) -> (Vec<Action>, Arc<Mutex<Vec<u64>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let actions = (0..n)
            .map(|_| {
                let log = log.clone();
                Box::new(move || -> ActionFuture {
                    Box::pin(async move {
                        log.lock().push(t0.elapsed().as_millis() as u64);
                        sleep(work).await;
                        Ok(())
                    })
                }) as Action
            })
            .collect();
        (actions, log)
    }

    async fn run(kind: TuningSetKind, n: usize, work: Duration) -> (RunStats, Vec<u64>) {
        let t0 = Instant::now();
        let (actions, log) = recording(n, t0, work);
        let stats = TuningRunner::new()
            .run(&set(kind), actions, &CancellationToken::new(), None)
            .await;
        let mut starts = log.lock().clone();
        starts.sort();
        (stats, starts)
    }

    #[tokio::test(start_paused = true)]
    async fn qps_load_follows_an_absolute_schedule() {
        let (stats, starts) = run(
            TuningSetKind::QpsLoad { qps: 10.0 },
            5,
            Duration::from_millis(250),
        )
        .await;
        assert_eq!(starts, vec![0, 100, 200, 300, 400]);
        assert_eq!(stats.started, 5);
        // Last action started at 400ms and works 250ms.
        assert_eq!(stats.duration, Duration::from_millis(650));
        let (stats, _) = run(TuningSetKind::QpsLoad { qps: 10.0 }, 5, Duration::ZERO).await;
        assert_eq!(stats.duration, Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn randomized_load_gaps_are_bounded() {
        let (stats, starts) = run(
            TuningSetKind::RandomizedLoad { average_qps: 10.0 },
            50,
            Duration::ZERO,
        )
        .await;
        assert_eq!(stats.started, 50);
        for w in starts.windows(2) {
            assert!(w[1] - w[0] <= 200, "gap {} > 2/averageQps", w[1] - w[0]);
        }
        assert!(*starts.last().unwrap() <= 49 * 200);
    }

    #[tokio::test(start_paused = true)]
    async fn stepped_load_bursts_then_sleeps() {
        let kind = TuningSetKind::SteppedLoad {
            burst_size: 3,
            step_delay: Duration::from_secs(1),
        };
        let (stats, starts) = run(kind, 7, Duration::from_millis(10)).await;
        assert_eq!(starts, vec![0, 0, 0, 1000, 1000, 1000, 2000]);
        assert_eq!(stats.started, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn time_limited_load_spreads_evenly() {
        let kind = TuningSetKind::TimeLimitedLoad {
            time_limit: Duration::from_secs(2),
        };
        let (stats, starts) = run(kind, 4, Duration::ZERO).await;
        assert_eq!(starts, vec![0, 500, 1000, 1500]);
        assert_eq!(stats.duration, Duration::from_secs(2));
        let kind = TuningSetKind::TimeLimitedLoad {
            time_limit: Duration::from_secs(2),
        };
        let (stats, _) = run(kind, 0, Duration::ZERO).await;
        assert_eq!(stats.duration, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn randomized_time_limited_load_stays_within_the_limit() {
        let kind = TuningSetKind::RandomizedTimeLimitedLoad {
            time_limit: Duration::from_secs(3),
        };
        let (stats, starts) = run(kind, 100, Duration::ZERO).await;
        assert_eq!(stats.started, 100);
        // Delays are drawn from [0, 3s); tokio timers fire on whole milliseconds, so a delay of
        // 2999.6ms starts at 3000ms.
        assert!(starts.iter().all(|s| *s <= 3000), "{starts:?}");
        assert!(stats.duration <= Duration::from_millis(3001));
    }

    #[tokio::test(start_paused = true)]
    async fn parallelism_limited_load_caps_in_flight_actions() {
        let kind = TuningSetKind::ParallelismLimitedLoad {
            parallelism_limit: 3,
        };
        let (stats, starts) = run(kind, 7, Duration::from_millis(100)).await;
        assert_eq!(starts, vec![0, 0, 0, 100, 100, 100, 200]);
        assert_eq!(stats.duration, Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn global_qps_bucket_is_shared_across_phases() {
        let runner = TuningRunner::new();
        let ts = set(TuningSetKind::GlobalQpsLoad {
            qps: 10.0,
            burst: 2,
        });
        let t0 = Instant::now();
        let (a, log_a) = recording(4, t0, Duration::ZERO);
        let (b, log_b) = recording(4, t0, Duration::ZERO);
        let cancel = CancellationToken::new();
        let (sa, sb) = tokio::join!(
            runner.run(&ts, a, &cancel, None),
            runner.run(&ts, b, &cancel, None)
        );
        assert_eq!(sa.started + sb.started, 8);
        let mut all: Vec<u64> = log_a
            .lock()
            .iter()
            .chain(log_b.lock().iter())
            .copied()
            .collect();
        all.sort();
        // Burst of 2 at once, then one token every 100ms: 8 actions end at 600ms.
        assert_eq!(all, vec![0, 0, 100, 200, 300, 400, 500, 600]);
        // A later phase with the same name continues from the same (drained) bucket.
        let (c, log_c) = recording(1, t0, Duration::ZERO);
        runner.run(&ts, c, &cancel, None).await;
        assert_eq!(*log_c.lock(), vec![700]);
    }

    #[tokio::test(start_paused = true)]
    async fn poisson_load_has_the_expected_mean_rate() {
        let kind = TuningSetKind::PoissonLoad {
            expected_actions_per_second: 100.0,
        };
        let (stats, starts) = run(kind, 2000, Duration::ZERO).await;
        assert_eq!(stats.started, 2000);
        // Mean gap 10ms: 2000 arrivals take ~20s; 6 sigma ≈ 2.7s.
        let last = *starts.last().unwrap();
        assert!((16_000..24_000).contains(&last), "last start {last}ms");
        assert!(starts.windows(2).all(|w| w[0] <= w[1]));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_new_actions_and_waits_for_running_ones() {
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        let (actions, log) = recording(100, t0, Duration::from_millis(50));
        let c2 = cancel.clone();
        tokio::spawn(async move {
            sleep(Duration::from_millis(450)).await;
            c2.cancel();
        });
        let stats = TuningRunner::new()
            .run(
                &set(TuningSetKind::QpsLoad { qps: 10.0 }),
                actions,
                &cancel,
                None,
            )
            .await;
        assert!(stats.cancelled);
        assert_eq!(stats.started, 5);
        assert_eq!(stats.skipped, 95);
        assert_eq!(log.lock().len(), 5);
        assert_eq!(stats.duration, Duration::from_millis(450));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_and_reported() {
        let actions: Vec<Action> = (0..20)
            .map(|i| {
                Box::new(move || -> ActionFuture {
                    Box::pin(async move {
                        if i % 2 == 0 {
                            Err(format!("boom {i}"))
                        } else {
                            Ok(())
                        }
                    })
                }) as Action
            })
            .collect();
        let seen = Arc::new(AtomicU64::new(0));
        let s2 = seen.clone();
        let progress: ProgressFn = Arc::new(move |done, _| {
            s2.fetch_max(done, Ordering::Relaxed);
        });
        let stats = TuningRunner::new()
            .run(
                &set(TuningSetKind::ParallelismLimitedLoad {
                    parallelism_limit: 4,
                }),
                actions,
                &CancellationToken::new(),
                Some(progress),
            )
            .await;
        assert_eq!(stats.started, 20);
        assert_eq!(stats.failed, 10);
        assert_eq!(stats.errors.len(), MAX_ERRORS);
        assert_eq!(seen.load(Ordering::Relaxed), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn token_bucket_reserves_in_order() {
        let b = TokenBucket::new(100.0, 2);
        assert_eq!(b.reserve(), Duration::ZERO);
        assert_eq!(b.reserve(), Duration::ZERO);
        assert_eq!(b.reserve(), Duration::from_millis(10));
        assert_eq!(b.reserve(), Duration::from_millis(20));
        sleep(Duration::from_secs(1)).await;
        assert_eq!(b.reserve(), Duration::ZERO);
    }

    #[test]
    fn requested_rates() {
        assert_eq!(
            requested_qps(&TuningSetKind::QpsLoad { qps: 5.0 }, 10),
            Some(5.0)
        );
        let tl = TuningSetKind::TimeLimitedLoad {
            time_limit: Duration::from_secs(10),
        };
        assert_eq!(requested_qps(&tl, 50), Some(5.0));
        let pl = TuningSetKind::ParallelismLimitedLoad {
            parallelism_limit: 5,
        };
        assert_eq!(requested_qps(&pl, 50), None);
        let g = TuningSetKind::GlobalQpsLoad { qps: 5.0, burst: 1 };
        assert_eq!(requested_qps(&g, 50), None);
        let st = TuningSetKind::SteppedLoad {
            burst_size: 10,
            step_delay: Duration::from_secs(2),
        };
        assert_eq!(requested_qps(&st, 50), Some(5.0));
    }
}
