//! The container deployment (docker-compose.yml, Dockerfile) and the monitoring files (Prometheus,
//! Grafana) checked against what the local stack runs: the region list, ./dev, the variables the
//! binaries read and the files ./dev uses. No container runs here: the checks read files and run
//! `docker-compose config` and `promtool`, which .ci/run installs.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use orders_tests::{Region, regions, repo_root};
use serde_yaml::Value;

// ---------------------------------------------------------------- reading the files

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml(relative: &str) -> Value {
    let mut value: Value =
        serde_yaml::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"));
    value
        .apply_merge()
        .unwrap_or_else(|e| panic!("{relative}: merge keys: {e}"));
    value
}

fn compose() -> Value {
    yaml("docker-compose.yml")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose
        .get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"))
}

fn services(compose: &Value) -> Vec<(String, &Value)> {
    compose["services"]
        .as_mapping()
        .expect("services is a mapping")
        .iter()
        .map(|(k, v)| (k.as_str().expect("service name").to_string(), v))
        .collect()
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        None => vec![],
        Some(Value::Sequence(items)) => items.iter().map(scalar).collect(),
        Some(other) => vec![scalar(other)],
    }
}

fn env(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        None => BTreeMap::new(),
        Some(Value::Mapping(m)) => m.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Some(other) => panic!("write environment as a mapping, not {other:?}"),
    }
}

/// `./host/path` → container path, for every bind mount of a service.
fn binds(service: &Value) -> BTreeMap<String, String> {
    strings(service.get("volumes"))
        .into_iter()
        .filter(|v| v.starts_with("./"))
        .map(|v| {
            let mut parts = v.split(':');
            (
                parts.next().unwrap().to_string(),
                parts.next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The orders binary a service runs: the first word of its command, when it is one of ours.
fn binary(service: &Value) -> Option<String> {
    let command = strings(service.get("command"));
    let first = command.first()?;
    if first == "sh" {
        return command
            .iter()
            .any(|c| c.contains("orders-stackctl"))
            .then(|| "orders-stackctl".into());
    }
    first.starts_with("orders-").then(|| first.clone())
}

fn healthcheck(service: &Value) -> String {
    strings(service.get("healthcheck").and_then(|h| h.get("test"))).join(" ")
}

fn upper(region: &str) -> String {
    region.to_uppercase().replace('-', "_")
}

fn port_of(address: &str) -> &str {
    address.rsplit(':').next().unwrap()
}

// ---------------------------------------------------------------- what the binaries read

/// The crate directory whose package is `name`, among services/* and shared/*.
fn crate_dir(name: &str) -> PathBuf {
    for group in ["services", "shared"] {
        for entry in std::fs::read_dir(repo_root().join(group)).unwrap().flatten() {
            let manifest = entry.path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            if text.lines().any(|l| l.trim() == format!("name = \"{name}\"")) {
                return entry.path();
            }
        }
    }
    panic!("no crate named {name} under services/ or shared/")
}

/// The crate and every crate of ours it depends on, through `path` and workspace dependencies.
fn with_path_dependencies(dir: &Path) -> BTreeSet<PathBuf> {
    let workspace = read("Cargo.toml");
    let (mut seen, mut todo) = (BTreeSet::new(), vec![dir.canonicalize().unwrap()]);
    while let Some(dir) = todo.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let section = manifest
            .split("\n[")
            .find(|s| s.starts_with("dependencies]"))
            .unwrap_or("");
        for line in section.lines().skip(1) {
            let name = line.split(['=', '.']).next().unwrap_or("").trim();
            let path = if line.contains("workspace = true") || line.contains(".workspace") {
                workspace
                    .lines()
                    .find(|l| l.split('=').next().unwrap_or("").trim() == name)
                    .and_then(|l| quoted_after(l, "path = "))
                    .map(|p| repo_root().join(p))
            } else {
                quoted_after(line, "path = ").map(|p| dir.join(p))
            };
            if let Some(path) = path {
                todo.push(path.canonicalize().unwrap());
            }
        }
    }
    seen
}

fn quoted_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() && name != "tests" {
            rust_sources(&path, out);
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(path);
        }
    }
}

fn is_variable_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every string literal `"ORDERS_…"`/`"PAYMENT_SIM__…"` in the non-test code of a crate and its
/// dependencies. A literal prefix such as `"PAYMENT_SIM__"` is joined with the `"NAME" =>` match arms
/// of its file, which is how a prefixed configuration names its settings.
fn variables_read_by(binary: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in with_path_dependencies(&crate_dir(binary)) {
        let mut files = Vec::new();
        rust_sources(&dir.join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let mut prefixes = Vec::new();
            for prefix in ["ORDERS_", "PAYMENT_SIM__"] {
                for start in code.match_indices(&format!("\"{prefix}")).map(|(i, _)| i + 1) {
                    let Some(end) = code[start..].find('"') else {
                        continue;
                    };
                    let literal = &code[start..start + end];
                    if !is_variable_name(literal) {
                        continue;
                    }
                    if literal.ends_with("__") {
                        prefixes.push(literal.to_string());
                    } else {
                        names.insert(literal.to_string());
                    }
                }
            }
            for prefix in prefixes {
                for (i, _) in code.match_indices("\" =>") {
                    let arm = &code[..i];
                    let setting = &arm[arm.rfind('"').unwrap() + 1..];
                    if is_variable_name(setting) {
                        names.insert(format!("{prefix}{setting}"));
                    }
                }
            }
        }
    }
    names
}

/// The variables ./dev sets for a binary: those in the function that starts it, plus the region's
/// `service_env` when that function uses it. None when ./dev does not start the binary.
fn variables_dev_passes(binary: &str) -> Option<BTreeSet<String>> {
    let dev = read("dev");
    let function = |name: &str| -> Option<String> {
        let start = dev.find(&format!("\n{name}() {{"))?;
        let body = &dev[start + 1..];
        Some(body[..body.find("\n}").unwrap()].to_string())
    };
    let names_in = |body: &str| -> BTreeSet<String> {
        body.match_indices('"')
            .filter_map(|(i, _)| {
                let rest = &body[i + 1..];
                let name = &rest[..rest.find('=')?];
                is_variable_name(name).then(|| name.to_string())
            })
            .filter(|n| n.starts_with("ORDERS_") || n.starts_with("PAYMENT_SIM__"))
            .collect()
    };
    let starter = dev
        .lines()
        .filter_map(|l| l.split_once("() {").map(|(name, _)| name))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .filter_map(function)
        .find(|body| body.contains(&format!("$BIN/{binary}\"")))?;
    let mut names = names_in(&starter);
    if starter.contains("$(service_env") {
        names.extend(names_in(
            &function("service_env").expect("./dev defines service_env"),
        ));
    }
    Some(names)
}

// ---------------------------------------------------------------- running tools

fn run(program: &str, args: &[&str], envs: &[(String, String)], remove: &[String]) -> Option<Output> {
    let mut command = Command::new(program);
    command.args(args).current_dir(repo_root());
    for (k, v) in envs {
        command.env(k, v);
    }
    for k in remove {
        command.env_remove(k);
    }
    command.output().ok()
}

fn promtool(args: &[&str]) -> Output {
    let out = run("promtool", args, &[], &[]).unwrap_or_else(|| {
        panic!(
            "promtool is not installed: .ci/run installs Debian's prometheus package, which ships it \
             (apt-get install prometheus)"
        )
    });
    assert!(
        out.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scratch_dir(what: &str) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("orders-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The variables compose requires from its caller: every `${NAME:?…}`.
fn required_compose_variables() -> Vec<String> {
    let text = read("docker-compose.yml");
    let names: BTreeSet<String> = text
        .match_indices("${")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            let end = rest.find(":?")?;
            is_variable_name(&rest[..end]).then(|| rest[..end].to_string())
        })
        .collect();
    names.into_iter().collect()
}

// ---------------------------------------------------------------- (a) the compose file is valid

#[test]
fn docker_compose_accepts_the_file_and_refuses_to_start_without_its_secrets() {
    let required = required_compose_variables();
    assert!(required.contains(&"ORDERS_OPS_TOKEN".to_string()), "{required:?}");
    let set: Vec<(String, String)> = required
        .iter()
        .map(|k| (k.clone(), "test-value".into()))
        .collect();
    let (program, prefix): (&str, &[&str]) = if run("docker-compose", &["version"], &[], &[]).is_some() {
        ("docker-compose", &[])
    } else if run("docker", &["compose", "version"], &[], &[]).is_some_and(|o| o.status.success()) {
        ("docker", &["compose"])
    } else {
        panic!("docker-compose is not installed: .ci/run installs Debian's docker-compose package")
    };
    // An empty env file, so a developer's .env neither supplies nor breaks anything here.
    let dir = scratch_dir("compose");
    let env_file = dir.join("empty.env");
    std::fs::write(&env_file, "").unwrap();
    let args: Vec<&str> = prefix
        .iter()
        .copied()
        .chain(["--env-file", env_file.to_str().unwrap(), "config", "-q"])
        .collect();
    let out = run(program, &args, &set, &[]).unwrap();
    assert!(
        out.status.success(),
        "{program} config -q: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(program, &args, &[], &required).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(!out.status.success(), "compose started without {required:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ORDERS_"),
        "{out:?}"
    );
}

// ---------------------------------------------------------------- (b) environment variable names

#[test]
fn every_variable_compose_gives_a_binary_is_one_it_reads_and_every_one_dev_passes_is_set() {
    let compose = compose();
    let mut checked = BTreeSet::new();
    for (name, service) in services(&compose) {
        let Some(binary) = binary(service) else { continue };
        let reads = variables_read_by(&binary);
        let set = env(service);
        for key in set.keys() {
            assert!(
                reads.contains(key),
                "service {name}: {binary} never reads {key} (it reads {reads:?})"
            );
        }
        let required = match variables_dev_passes(&binary) {
            Some(passed) => passed.intersection(&reads).cloned().collect(),
            None => reads.clone(),
        };
        for key in &required {
            assert!(
                set.contains_key(key),
                "service {name}: {binary} needs {key}, as ./dev sets it"
            );
        }
        checked.insert(binary);
    }
    for binary in [
        "orders-api",
        "orders-worker",
        "orders-payment-sim",
        "orders-console",
        "orders-stackctl",
    ] {
        assert!(checked.contains(binary), "no compose service runs {binary}");
    }
}

#[test]
fn the_scan_finds_the_variables_each_binary_documents() {
    let api = variables_read_by("orders-api");
    for name in [
        "ORDERS_REGION",
        "ORDERS_LISTEN",
        "ORDERS_OPS_TOKEN",
        "ORDERS_HEALTH_MODEL",
    ] {
        assert!(api.contains(name), "{name} missing from {api:?}");
    }
    let payment = variables_read_by("orders-payment-sim");
    assert!(payment.contains("PAYMENT_SIM__LISTEN"), "{payment:?}");
    assert!(
        !payment.contains("PAYMENT_SIM__LATENCY"),
        "a test's misspelling counted: {payment:?}"
    );
    assert!(!payment.contains("ORDERS_HEALTH_MODEL"), "{payment:?}");
    let passed = variables_dev_passes("orders-worker").expect("./dev starts the worker");
    assert!(
        passed.contains("ORDERS_PAYMENT_URL") && passed.contains("ORDERS_KAFKA"),
        "{passed:?}"
    );
}

#[test]
fn the_image_sets_only_variables_a_binary_reads_and_builds_every_binary_compose_runs() {
    let dockerfile = read("Dockerfile");
    let compose = compose();
    let binaries: BTreeSet<String> = services(&compose).iter().filter_map(|(_, s)| binary(s)).collect();
    let mut read_by_any = BTreeSet::new();
    for binary in &binaries {
        assert!(
            dockerfile.contains(&format!("-p {binary}")),
            "the Dockerfile does not build {binary}"
        );
        read_by_any.extend(variables_read_by(binary));
    }
    for word in dockerfile.split_whitespace() {
        if let Some((name, _)) = word.split_once('=').filter(|(n, _)| n.starts_with("ORDERS_")) {
            assert!(
                read_by_any.contains(name),
                "the Dockerfile sets {name}, which no binary reads"
            );
        }
    }
    for (source, _) in binds(service(&compose, "console")) {
        assert!(repo_root().join(&source).exists(), "{source}");
    }
    let setup = strings(service(&compose, "setup").get("command")).join(" ");
    for (copied, used) in [
        (
            "COPY schemas/cql/ /usr/share/orders/schemas/cql/",
            "--dir /usr/share/orders/schemas/cql",
        ),
        (
            "COPY deploy/seed/ /usr/share/orders/seed/",
            "--catalog /usr/share/orders/seed/catalog.csv",
        ),
    ] {
        assert!(
            dockerfile.contains(copied) && setup.contains(used),
            "{copied} / {used}"
        );
    }
}

// ---------------------------------------------------------------- (c) ports, addresses, health paths

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

// ---------------------------------------------------------------- (d) mounted files

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

/// (targets, region label, service) of a file_sd file.
fn sd_targets(relative: &str) -> BTreeSet<(String, String, String)> {
    let groups: serde_json::Value = serde_json::from_str(&read(relative)).expect("file_sd JSON");
    let mut out = BTreeSet::new();
    for group in groups.as_array().expect("a list of target groups") {
        let labels = &group["labels"];
        let region = labels["region"].as_str().unwrap_or("").to_string();
        let service = labels["__orders_service"]
            .as_str()
            .expect("__orders_service")
            .to_string();
        for target in group["targets"].as_array().unwrap() {
            out.insert((
                target.as_str().unwrap().to_string(),
                region.clone(),
                service.clone(),
            ));
        }
    }
    out
}

#[test]
fn prometheus_scrapes_every_api_worker_and_the_console_in_both_setups() {
    let console_port =
        port_of(quoted_after(&read("services/console/src/config.rs"), "var(\"ORDERS_LISTEN\", ").unwrap())
            .to_string();
    let (mut local, mut compose) = (BTreeSet::new(), BTreeSet::new());
    for r in regions() {
        for (service, port) in [("api", r.api_port), ("worker", r.worker_port)] {
            local.insert((format!("127.0.0.1:{port}"), r.name.clone(), service.to_string()));
            compose.insert((
                format!("{service}-{}:{port}", r.name),
                r.name.clone(),
                service.to_string(),
            ));
        }
    }
    local.insert((
        format!("127.0.0.1:{console_port}"),
        String::new(),
        "console".into(),
    ));
    compose.insert((format!("console:{console_port}"), String::new(), "console".into()));
    assert_eq!(sd_targets("deploy/prometheus/targets/local.json"), local);
    assert_eq!(sd_targets("deploy/prometheus/targets/compose.json"), compose);
}

// ---------------------------------------------------------------- (e) promtool

/// Lays out prometheus.yml, rules/ and targets/orders.json as a setup mounts them and checks the config.
fn check_prometheus_layout(targets: &str) {
    let dir = scratch_dir("prometheus");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::create_dir_all(dir.join("targets")).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        read("deploy/prometheus/prometheus.yml"),
    )
    .unwrap();
    for entry in std::fs::read_dir(repo_root().join("deploy/prometheus/rules"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(entry.path(), dir.join("rules").join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.join("targets/orders.json"), read(targets)).unwrap();
    let out = promtool(&["check", "config", dir.join("prometheus.yml").to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        !text.contains("WARNING"),
        "promtool check config with {targets}:\n{text}"
    );
    assert!(
        text.contains("1 rule files found"),
        "the rules were not found:\n{text}"
    );
}

#[test]
fn promtool_accepts_the_prometheus_configuration_as_compose_and_a_local_run_lay_it_out() {
    check_prometheus_layout("deploy/prometheus/targets/compose.json");
    check_prometheus_layout("deploy/prometheus/targets/local.json");
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    promtool(&["check", "rules", "deploy/prometheus/rules/orders.rules.yml"]);
    promtool(&["test", "rules", "deploy/prometheus/tests/orders.rules.test.yml"]);
}

fn rules() -> Vec<Value> {
    let file = yaml("deploy/prometheus/rules/orders.rules.yml");
    file["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
        .collect()
}

#[test]
fn every_alert_has_a_test_where_it_fires_and_one_where_it_does_not_and_every_record_is_tested() {
    let tests = yaml("deploy/prometheus/tests/orders.rules.test.yml");
    let cases: Vec<&Value> = tests["tests"].as_sequence().unwrap().iter().collect();
    let alert_tests: Vec<&Value> = cases
        .iter()
        .filter_map(|c| c.get("alert_rule_test").and_then(Value::as_sequence))
        .flatten()
        .collect();
    let exprs: Vec<String> = cases
        .iter()
        .filter_map(|c| c.get("promql_expr_test").and_then(Value::as_sequence))
        .flatten()
        .map(|t| scalar(&t["expr"]))
        .collect();
    for rule in rules() {
        if let Some(alert) = rule.get("alert").map(scalar) {
            let of_this = alert_tests.iter().filter(|t| scalar(&t["alertname"]) == alert);
            let (firing, quiet): (Vec<&&Value>, Vec<&&Value>) =
                of_this.partition(|t| t["exp_alerts"].as_sequence().is_some_and(|a| !a.is_empty()));
            assert!(!firing.is_empty(), "no test where {alert} fires");
            assert!(!quiet.is_empty(), "no test where {alert} stays quiet");
        }
        if let Some(record) = rule.get("record").map(scalar) {
            assert!(
                exprs.iter().any(|e| e.contains(&record)),
                "no promql_expr_test for {record}"
            );
        }
    }
}

#[test]
fn the_dashboard_is_provisioned_json_whose_queries_parse_and_name_recorded_series() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/orders.json")).expect("dashboard JSON");
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()), "uid");
    assert!(dashboard["schemaVersion"].as_u64().is_some(), "schemaVersion");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(variables.contains(&"region"), "{variables:?}");
    let datasource = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    let uid = scalar(&datasource["datasources"][0]["uid"]);
    let recorded: BTreeSet<String> = rules()
        .iter()
        .filter_map(|r| r.get("record").map(scalar))
        .collect();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["uid"], uid, "panel {}", panel["title"]);
            queries.push(target["expr"].as_str().unwrap().replace("$region", ".*"));
        }
    }
    assert!(queries.len() >= 10, "{queries:?}");
    for query in &queries {
        // Label values such as check="worker:consumerLag" hold colons too: look outside quotes only.
        let unquoted: String = query.split('"').step_by(2).collect::<Vec<_>>().join(" ");
        let names = unquoted.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        for name in names.filter(|n| n.contains(':') && n.starts_with(char::is_alphabetic)) {
            assert!(
                recorded.contains(name),
                "the dashboard queries {name}, which no rule records"
            );
        }
    }
    // promtool parses each query as a recording rule's expression.
    let dir = scratch_dir("dashboard");
    let mut file = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        file.push_str(&format!(
            "      - record: dashboard:query_{i}:check\n        expr: {query:?}\n"
        ));
    }
    let path = dir.join("dashboard.rules.yml");
    std::fs::write(&path, file).unwrap();
    let result = std::panic::catch_unwind(|| promtool(&["check", "rules", path.to_str().unwrap()]));
    std::fs::remove_dir_all(&dir).ok();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
