//! HTTP-level parsing that knows nothing of storage: routing, ranges,
//! conditional headers, and the response body type.

pub mod body;
pub mod conditional;
pub mod params;
pub mod range;
pub mod route;
pub mod send_deadline;
pub mod target;
