//! Writing reports: CL2-compatible PerfData JSON files, `junit.xml`, `report.json` and
//! `summary.md`, atomically, also for partial runs.
