//! The files compose mounts and the brokers it runs: the same files, templates and settings as the
//! local stack's Kafka, MirrorMaker 2 and HAProxy edges.
use orders_tests::{regions, repo_root};

use crate::repo::{binds, compose, env, read, scalar, service, services, strings, yaml};

#[test]
fn compose_kafka_mirrors_the_local_broker_settings_and_version() {
    let compose = compose();
    let template = read("deploy/local/kafka/server.properties.tmpl");
    // The listener layout differs by design: the containers and the host reach the broker by two names.
    let layout = [
        "listeners",
        "advertised.listeners",
        "controller.quorum.voters",
        "listener.security.protocol.map",
        "inter.broker.listener.name",
        "log.dirs",
    ];
    let version = read("dev")
        .lines()
        .find_map(|l| l.strip_prefix("KAFKA_VERSION="))
        .expect("KAFKA_VERSION in ./dev")
        .to_string();
    for r in regions() {
        let kafka = service(&compose, &format!("kafka-{}", r.name));
        assert_eq!(scalar(&kafka["image"]), format!("apache/kafka:{version}"));
        let e = env(kafka);
        for line in template
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
        {
            let (key, value) = line.split_once('=').unwrap();
            let var = format!(
                "KAFKA_{}",
                key.replace('_', "__").replace('.', "_").to_uppercase()
            );
            let set = e
                .get(&var)
                .unwrap_or_else(|| panic!("kafka-{} lacks {var} ({key})", r.name));
            if !layout.contains(&key) {
                assert_eq!(set, value, "kafka-{} {var}", r.name);
            }
        }
    }
}

#[test]
fn every_file_compose_mounts_exists_and_is_the_one_the_local_stack_uses() {
    let compose = compose();
    for (name, service) in services(&compose) {
        for source in binds(service).keys() {
            assert!(
                repo_root().join(source).exists(),
                "service {name} mounts missing {source}"
            );
        }
    }
    let dev = read("dev");
    assert!(
        dev.contains("\"$ROOT/deploy/haproxy/edge-$e.cfg\""),
        "./dev no longer runs deploy/haproxy"
    );
    for r in regions() {
        let edge = service(&compose, &format!("edge-{}", r.name));
        let source = format!("./deploy/haproxy/edge-{}.cfg", r.name);
        assert_eq!(binds(edge)[&source], "/usr/local/etc/haproxy/haproxy.cfg");
        let cfg = read(&source[2..]);
        let e = env(edge);
        for (i, _) in cfg.match_indices("${") {
            let var = &cfg[i + 2..i + 2 + cfg[i + 2..].find('}').unwrap()];
            assert!(
                e.contains_key(var),
                "edge-{} does not set {var}, which {source} uses",
                r.name
            );
        }
    }
    let prometheus = service(&compose, "prometheus");
    let mounts = binds(prometheus);
    assert_eq!(
        mounts["./deploy/prometheus/prometheus.yml"],
        "/etc/prometheus/prometheus.yml"
    );
    assert_eq!(mounts["./deploy/prometheus/rules"], "/etc/prometheus/rules");
    assert_eq!(
        mounts["./deploy/prometheus/targets/compose.json"],
        "/etc/prometheus/targets/orders.json"
    );
    assert!(
        strings(prometheus.get("command")).contains(&"--config.file=/etc/prometheus/prometheus.yml".into())
    );
    let grafana = binds(service(&compose, "grafana"));
    assert_eq!(
        grafana["./deploy/grafana/provisioning"],
        "/etc/grafana/provisioning"
    );
    let provider = yaml("deploy/grafana/provisioning/dashboards/orders.yml");
    let path = scalar(&provider["providers"][0]["options"]["path"]);
    assert_eq!(grafana["./deploy/grafana/dashboards"], path);
}

#[test]
fn compose_mirrormaker_is_the_local_template_with_compose_brokers() {
    let names: Vec<String> = regions().into_iter().map(|r| r.name).collect();
    let mut clusters = vec![format!("clusters = {}", names.join(","))];
    clusters.extend(
        names
            .iter()
            .map(|r| format!("{r}.bootstrap.servers = kafka-{r}:9092")),
    );
    for a in &names {
        clusters.extend(
            names
                .iter()
                .filter(|b| *b != a)
                .map(|b| format!("{a}->{b}.enabled = true")),
        );
    }
    let body = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let expected: Vec<String> = body(&read("deploy/local/mirrormaker/mm2.properties.tmpl"))
        .into_iter()
        .flat_map(|l| {
            if l == "@CLUSTERS@" {
                clusters.clone()
            } else {
                vec![l]
            }
        })
        .collect();
    assert_eq!(body(&read("deploy/compose/mm2.properties")), expected);
    let compose = compose();
    assert_eq!(
        binds(service(&compose, "mirrormaker"))["./deploy/compose/mm2.properties"],
        "/etc/orders/mm2.properties"
    );
}
