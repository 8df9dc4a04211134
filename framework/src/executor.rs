//! The executor: steps in order, phases (or measurements) of a step concurrently, CL2's
//! reconciliation of object bundles per namespace, automanaged namespaces.

/// Progress callbacks for the command line (indicatif bars live in `cmd`).
pub trait Progress: Send + Sync {
    /// A phase with `total` actions started; `id` is unique within the run.
    fn phase_started(&self, id: usize, label: &str, total: u64);
    /// `done` actions finished so far, `failed` of them failed.
    fn phase_progress(&self, id: usize, done: u64, failed: u64);
    fn phase_finished(&self, id: usize);
    /// A measurement action is running (a wait barrier, usually).
    fn measurement_started(&self, id: usize, label: &str);
    fn measurement_finished(&self, id: usize, ok: bool);
}

/// Progress that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase_started(&self, _: usize, _: &str, _: u64) {}
    fn phase_progress(&self, _: usize, _: u64, _: u64) {}
    fn phase_finished(&self, _: usize) {}
    fn measurement_started(&self, _: usize, _: &str) {}
    fn measurement_finished(&self, _: usize, _: bool) {}
}
