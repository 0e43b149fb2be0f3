//! The compose file is valid, and the environment variables compose and the Dockerfile set are those
//! the binaries read and ./dev passes.
use std::collections::BTreeSet;

use orders_tests::repo_root;

use crate::repo::{binary, binds, compose, env, read, service, services, strings};
use crate::scan::{is_variable_name, variables_dev_passes, variables_read_by};
use crate::tools::{run, scratch_dir};

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

// ---------------------------------------------------------------- the compose file is valid

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

// ---------------------------------------------------------------- environment variable names

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
