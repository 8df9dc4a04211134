//! Tuning sets: how a phase paces its actions.
