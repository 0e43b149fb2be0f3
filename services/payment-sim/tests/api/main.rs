//! Integration tests: the real sandbox on an ephemeral port, driven over HTTP.

mod authorizations;
mod helpers;
mod sandbox;
mod voids;
