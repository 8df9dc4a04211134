//! Progress bars for running phases and waiting measurements (indicatif), hidden when stdout
//! is not a terminal.

use cl2_framework::executor::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Bars {
    multi: MultiProgress,
    phases: Mutex<HashMap<usize, (ProgressBar, Instant)>>,
    waits: Mutex<HashMap<usize, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Arc<Self> {
        let target = if std::io::stdout().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Arc::new(Self {
            multi: MultiProgress::with_draw_target(target),
            phases: Mutex::default(),
            waits: Mutex::default(),
        })
    }

    /// Removes every bar (before the summary is printed).
    pub fn clear(&self) {
        for (_, (bar, _)) in self.phases.lock().drain() {
            bar.finish_and_clear();
        }
        for (_, bar) in self.waits.lock().drain() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

fn phase_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:.bold} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn wait_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:.bold} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Progress for Bars {
    fn phase_started(&self, id: usize, label: &str, total: u64) {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(phase_style());
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.phases.lock().insert(id, (bar, Instant::now()));
    }

    fn phase_progress(&self, id: usize, done: u64, failed: u64) {
        if let Some((bar, started)) = self.phases.lock().get(&id) {
            bar.set_position(done);
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
            if failed > 0 {
                bar.set_message(format!("{rate:.0}/s, {failed} failed"));
            } else {
                bar.set_message(format!("{rate:.0}/s"));
            }
        }
    }

    fn phase_finished(&self, id: usize) {
        if let Some((bar, _)) = self.phases.lock().remove(&id) {
            bar.finish_and_clear();
        }
    }

    fn measurement_started(&self, id: usize, label: &str) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(wait_style());
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.waits.lock().insert(id, bar);
    }

    fn measurement_finished(&self, id: usize, _ok: bool) {
        if let Some(bar) = self.waits.lock().remove(&id) {
            bar.finish_and_clear();
        }
    }
}
