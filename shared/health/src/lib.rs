//! Health checks, lag evaluation and the health model shared by every service.
//!
//! Services register their own dependency checks (Kafka metadata, CQL probes) as async closures on
//! [`HealthChecks`]; this crate runs them in the background and serves [`routes`] and
//! [`admin_routes`]. [`lag`] judges consumer lag by its trend and [`model`] rolls every region's
//! reports up to one global color. [`problem`] renders every service's RFC 9457 problem responses.
//! Nothing here talks to Kafka or the database itself.

pub mod export;
pub mod http;
pub mod lag;
pub mod model;
pub mod problem;
pub mod report;
pub mod runner;
pub mod secret;

pub use http::{admin_routes, routes};
pub use problem::Problem;
pub use report::{CheckResult, ComponentType, HealthReport, ServiceInfo, Status};
pub use runner::HealthChecks;
pub use secret::Secret;
