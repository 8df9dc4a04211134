//! The simulated cluster's scheduler: binds pending pods via the binding subresource.
