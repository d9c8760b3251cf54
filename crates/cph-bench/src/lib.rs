//! What the benchmarks of `cph-bench` share: the `cph-bench` control-plane benchmark
//! (`src/main.rs`) and the `objects`, `phones` and `tunnel` benchmarks (`src/bin/`).
//!
//! - [`proc`]: resident memory, CPU times and the load average read from `/proc`.
//! - [`files`]: pseudo-random files and their hashes, temporary directories, free space, `sync`.
//! - [`tools`]: external tools run to a bounded exit, and the stock `adb` client.
//! - [`hosted`]: phones hosted in the benchmark's own process.
//! - [`report`]: the summary table and the arithmetic of its figures.
//! - [`units`]: byte sizes, parsed and rendered.
//! - [`client`]: a minimal keep-alive HTTP client and load generator; [`seed`]: running phones
//!   seeded directly in a store.

pub mod client;
pub mod files;
pub mod hosted;
pub mod proc;
pub mod report;
pub mod seed;
pub mod sink;
pub mod tools;
pub mod units;
