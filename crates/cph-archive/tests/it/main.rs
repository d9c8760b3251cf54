//! Archives applied to and exported from a real virtual phone, over a real ADB connection.

mod apply;
mod export;
mod support;
