//! Integration tests of the embedded S3 endpoint: real clients over HTTP (`clients`) and the
//! server-side store API (`store`).

mod clients;
mod harness;
mod store;
