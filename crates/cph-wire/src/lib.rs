//! Wire types of the Cloud Phone Host REST API: JSON request bodies, query parameters and
//! response bodies, field-for-field as the Huawei Cloud CPH API (and the IAM, VPC v1 and Nova
//! key pair subsets a self-hosted cloud needs) puts them on the wire.
//!
//! Conventions:
//! * Request bodies have every field optional (`Option<T>`): presence and value checks belong to
//!   the service layer. Unknown fields are ignored; a value of the wrong JSON type is rejected.
//! * Query parameter structs hold every parameter as `Option<String>`, so non-numeric values can
//!   be answered with the documented error code instead of a framework error.
//! * Response bodies use the exact JSON types of the official SDK models; fields that may be
//!   absent are `Option<T>` and omitted when `None`.
//! * Operations whose response is `{request_id, jobs}` use [`PhoneJobsResponse`] or
//!   [`ServerJobsResponse`]; the per-operation names are type aliases of these.

pub mod bandwidths;
pub mod catalog;
pub mod commands;
pub mod common;
pub mod connect;
pub mod encode_servers;
pub mod iam;
pub mod jobs;
pub mod keypairs;
pub mod ops;
pub mod phones;
pub mod servers;
pub mod share;
pub mod tags;
pub mod vpc;

pub use bandwidths::*;
pub use catalog::*;
pub use commands::*;
pub use common::*;
pub use connect::*;
pub use encode_servers::*;
pub use iam::*;
pub use jobs::*;
pub use keypairs::*;
pub use ops::{OPERATIONS, OpInfo};
pub use phones::*;
pub use servers::*;
pub use share::*;
pub use tags::*;
pub use vpc::*;
