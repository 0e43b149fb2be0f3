//! Ports, addresses and health paths of compose: those of deploy/regions.conf, ./dev and the binaries.
use orders_tests::{Region, regions};
use serde_yaml::Value;

use crate::repo::{binds, compose, env, healthcheck, port_of, quoted_after, read, service, strings, upper};

/// The health path ./dev polls at an address, e.g. `/health/live` after `${API_PORT[$r]}`.
fn dev_health_path(address: &str) -> String {
    let dev = read("dev");
    let marker = format!("{address}/health/");
    let start = dev
        .find(&marker)
        .unwrap_or_else(|| panic!("./dev never polls {marker}"))
        + address.len();
    dev[start..].split('"').next().unwrap().to_string()
}

fn assert_http_service(compose: &Value, name: &str, listen_var: &str, port: &str, path: &str) {
    let s = service(compose, name);
    assert_eq!(
        env(s)[listen_var],
        format!("0.0.0.0:{port}"),
        "{name} {listen_var}"
    );
    let ports = strings(s.get("ports"));
    assert!(
        ports.contains(&format!("{port}:{port}")),
        "{name} publishes {ports:?}, not {port}"
    );
    let check = healthcheck(s);
    assert!(
        check.contains(&format!("http://127.0.0.1:{port}{path}")),
        "{name} checks {check:?}"
    );
}

#[test]
fn compose_ports_addresses_and_health_paths_are_those_of_regions_conf_and_dev() {
    let compose = compose();
    let all: Vec<Region> = regions();
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    let api_path = dev_health_path("${API_PORT[$r]}");
    let worker_path = dev_health_path("${WORKER_PORT[$r]}");
    assert_eq!(api_path, "/health/live");
    let dev = read("dev");
    let payment = quoted_after(&dev, "PAYMENT_ADDR=")
        .map(str::to_string)
        .unwrap_or_else(|| {
            let line = dev
                .lines()
                .find(|l| l.starts_with("PAYMENT_ADDR="))
                .expect("PAYMENT_ADDR in ./dev");
            line["PAYMENT_ADDR=".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string()
        });
    let payment_path = dev_health_path("http://$PAYMENT_ADDR");
    assert_http_service(
        &compose,
        "payment-sim",
        "PAYMENT_SIM__LISTEN",
        port_of(&payment),
        &payment_path,
    );
    let console_default = quoted_after(&read("services/console/src/config.rs"), "var(\"ORDERS_LISTEN\", ")
        .expect("the console's default address")
        .to_string();
    assert_http_service(
        &compose,
        "console",
        "ORDERS_LISTEN",
        port_of(&console_default),
        "/health/live",
    );
    let mut targets = Vec::new();
    for r in &all {
        let (api, worker) = (format!("api-{}", r.name), format!("worker-{}", r.name));
        assert_http_service(
            &compose,
            &api,
            "ORDERS_LISTEN",
            &r.api_port.to_string(),
            &api_path,
        );
        assert_http_service(
            &compose,
            &worker,
            "ORDERS_LISTEN",
            &r.worker_port.to_string(),
            &worker_path,
        );
        for name in [&api, &worker] {
            let e = env(service(&compose, name));
            assert_eq!(e["ORDERS_REGION"], r.name, "{name}");
            assert_eq!(e["ORDERS_REGIONS"], names.join(","), "{name}");
            assert_eq!(e["ORDERS_KAFKA"], format!("kafka-{}:9092", r.name), "{name}");
            assert_eq!(e["ORDERS_CASSANDRA"], format!("scylla-{}:9042", r.name), "{name}");
        }
        assert_eq!(
            env(service(&compose, &worker))["ORDERS_PAYMENT_URL"],
            format!("http://payment-sim:{}", port_of(&payment))
        );
        targets.push(format!(
            "{}=api@http://{api}:{},worker@http://{worker}:{}",
            r.name, r.api_port, r.worker_port
        ));

        let kafka = service(&compose, &format!("kafka-{}", r.name));
        let host_port = port_of(&r.kafka);
        assert!(
            strings(kafka.get("ports")).contains(&format!("{host_port}:{host_port}")),
            "kafka {}",
            r.name
        );
        let advertised = &env(kafka)["KAFKA_ADVERTISED_LISTENERS"];
        assert!(
            advertised.contains(&format!("EXTERNAL://localhost:{host_port}")),
            "{advertised}"
        );
        assert!(
            advertised.contains(&format!("INTERNAL://kafka-{}:9092", r.name)),
            "{advertised}"
        );

        let edge = service(&compose, &format!("edge-{}", r.name));
        let e = env(edge);
        assert_eq!(
            e[&format!("ORDERS_EDGE_{}_BIND", upper(&r.name))],
            format!(":{}", r.edge_port)
        );
        for other in &all {
            assert_eq!(
                e[&format!("ORDERS_API_{}", upper(&other.name))],
                format!("api-{}:{}", other.name, other.api_port)
            );
        }
        assert!(
            strings(edge.get("ports")).contains(&format!("{0}:{0}", r.edge_port)),
            "edge {}",
            r.name
        );

        let rackdc = binds(service(&compose, &format!("scylla-{}", r.name)))
            .into_iter()
            .find(|(_, target)| target == "/etc/scylla/cassandra-rackdc.properties")
            .map(|(source, _)| read(&source))
            .expect("a cassandra-rackdc.properties per node");
        assert!(
            rackdc.lines().any(|l| l.trim() == format!("dc={}", r.name)),
            "{rackdc}"
        );
    }
    assert_eq!(
        env(service(&compose, "console"))["ORDERS_CONSOLE_TARGETS"],
        targets.join(";")
    );
}
