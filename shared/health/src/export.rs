//! A health report as Prometheus gauges, appended to every service's `/metrics`.
use std::fmt::Write;

use crate::report::{HealthReport, Status};

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn level(s: Status) -> u8 {
    match s {
        Status::Pass => 0,
        Status::Warn => 1,
        Status::Fail => 2,
    }
}

/// `orders_health_status` (0 pass, 1 warn, 2 fail) for the service and each check, and
/// `orders_health_observed` with each numeric observed value in its unit.
pub fn prometheus_lines(report: &HealthReport) -> String {
    let service = escape(&report.service_id);
    let mut out = String::new();
    out.push_str(
        "# HELP orders_health_status Health of a service or one of its checks: 0 pass, 1 warn, 2 fail.\n",
    );
    out.push_str("# TYPE orders_health_status gauge\n");
    let _ = writeln!(
        out,
        "orders_health_status{{service=\"{service}\",check=\"overall\"}} {}",
        level(report.status)
    );
    for (check, results) in &report.checks {
        let worst = results.iter().map(|r| r.status).max().unwrap_or(Status::Fail);
        let _ = writeln!(
            out,
            "orders_health_status{{service=\"{service}\",check=\"{}\"}} {}",
            escape(check),
            level(worst)
        );
    }
    out.push_str("# HELP orders_health_observed The value a check observed, in the unit it names.\n");
    out.push_str("# TYPE orders_health_observed gauge\n");
    for (check, results) in &report.checks {
        for r in results {
            let Some(value) = r.observed_value.as_ref().and_then(|v| v.as_f64()) else {
                continue;
            };
            let unit = escape(r.observed_unit.as_deref().unwrap_or(""));
            let component = escape(r.component_id.as_deref().unwrap_or(""));
            let _ = writeln!(
                out,
                "orders_health_observed{{service=\"{service}\",check=\"{}\",component=\"{component}\",unit=\"{unit}\"}} {value}",
                escape(check)
            );
        }
    }
    out
}
