//! The in-memory object store.
