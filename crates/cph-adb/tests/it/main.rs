//! Integration tests of the device endpoint: raw protocol checks, the sync server, robustness
//! against malformed input, and interoperability with stock `adb` and the Python `adb-shell`.

mod forward;
mod protocol;
mod python_client;
mod robustness;
mod stock_adb;
mod support;
mod sync_server;
