//! Integration tests of the embedded S3 endpoint: real clients over HTTP (`clients`) and the
//! server-side store API (`store`), and the listener's client limits (`limits`).

mod clients;
mod harness;
mod limits;
mod store;
