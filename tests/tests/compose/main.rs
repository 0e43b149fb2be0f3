//! The container deployment (docker-compose.yml, Dockerfile) and the monitoring files (Prometheus,
//! Grafana) checked against what the local stack runs: the region list, ./dev, the variables the
//! binaries read and the files ./dev uses. No container runs here: the checks read files and run
//! `docker-compose config` and `promtool`, which .ci/run installs.
//!
//! `repo`, `scan` and `tools` are the shared support; each other module holds the tests of one topic.
mod repo;
mod scan;
mod tools;

mod local_files;
mod monitoring;
mod ports;
mod variables;
