//! `cl2-measurements`: the built-in measurements, one file each, listed in [`BUILTIN`].

use cl2_framework::measurement::MeasurementDescriptor;

/// Every built-in measurement, sorted by name. `cmd` registers these explicitly.
pub const BUILTIN: &[MeasurementDescriptor] = &[];
