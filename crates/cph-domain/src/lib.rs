//! Domain vocabulary shared by the store, the service layer and the phone runtime:
//! identifiers, the status codes of the API reference, and injected time.
//!
//! Nothing here knows about HTTP, SQL or JSON wire shapes.

pub mod clock;
pub mod ids;
pub mod status;

pub use clock::{Clock, ManualClock, SystemClock};
pub use status::{JobStatus, PhoneStatus, ServerStatus};
