//! Starting and stopping the whole simulated cluster in-process.
