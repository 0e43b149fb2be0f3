//! The health model as Prometheus text gauges, so alerts and dashboards read the same verdict the console draws.

use std::fmt::Write;

use super::{Color, HealthModel};

const METRIC: &str = "orders_health_status";

/// The closed set of `level` label values.
#[derive(Debug, Clone, Copy)]
enum Level {
    Global,
    Region,
    Flow,
    Component,
    Dependency,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Global => "global",
            Level::Region => "region",
            Level::Flow => "flow",
            Level::Component => "component",
            Level::Dependency => "dependency",
        }
    }
}

/// One `orders_health_status{level,region,node}` gauge per node (0 green, 1 yellow, 2 red), in the
/// text exposition format. The global node has no `region` label.
pub fn render_prometheus(model: &HealthModel) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# HELP {METRIC} Health model color of a node: 0 green, 1 yellow, 2 red.\n"
    ));
    out.push_str(&format!("# TYPE {METRIC} gauge\n"));
    gauge(&mut out, Level::Global, None, "global", model.global.color);
    for (region, region_model) in &model.regions {
        gauge(
            &mut out,
            Level::Region,
            Some(region),
            region,
            region_model.node.color,
        );
        for (flow, node) in &region_model.flows {
            gauge(&mut out, Level::Flow, Some(region), flow, node.color);
        }
        for (component, component_model) in &region_model.components {
            gauge(
                &mut out,
                Level::Component,
                Some(region),
                component,
                component_model.node.color,
            );
            for (dependency, node) in &component_model.dependencies {
                gauge(&mut out, Level::Dependency, Some(region), dependency, node.color);
            }
        }
    }
    out
}

fn gauge(out: &mut String, level: Level, region: Option<&str>, node: &str, color: Color) {
    let region = region
        .map(|region| format!(",region=\"{}\"", escape(region)))
        .unwrap_or_default();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{METRIC}{{level=\"{}\"{region},node=\"{}\"}} {}",
        level.as_str(),
        escape(node),
        color.gauge()
    );
}

/// Label values escape backslash, double quote and line feed, as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}
