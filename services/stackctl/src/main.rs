//! `orders-stackctl`: the small, real checks and set-up steps `./dev` runs against the stack.
//!
//! Each subcommand exits 0 on success and non-zero with a one-line reason otherwise, so `./dev` can
//! poll it while waiting for readiness.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use orders_log::{ORDERS_PARTITIONS, ORDERS_TOPIC};
use orders_store::StoreConfig;

const USAGE: &str = "usage: orders-stackctl <kafka-ready|create-topics|mirror-ready|cql-ready|apply-schema|seed> [--flag value]...";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("orders-stackctl: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().context(USAGE)?;
    let flags = parse_flags(args)?;
    let flag = |name: &str| {
        flags
            .get(name)
            .cloned()
            .with_context(|| format!("--{name} is required"))
    };
    let list =
        |name: &str| -> Result<Vec<String>> { Ok(flag(name)?.split(',').map(str::to_string).collect()) };
    match command.as_str() {
        "kafka-ready" => orders_log::metadata_ready(&flag("bootstrap")?, Duration::from_secs(2)).await?,
        "create-topics" => {
            let bootstrap = flag("bootstrap")?;
            orders_log::create_topics(
                &bootstrap,
                &[
                    (ORDERS_TOPIC, ORDERS_PARTITIONS),
                    (orders_log::DEAD_LETTER_TOPIC, 1),
                ],
            )
            .await?;
        }
        "mirror-ready" => mirror_ready(&flag("bootstrap")?, &flag("region")?, &list("regions")?).await?,
        "cql-ready" => cql_ready(&flag("contact")?, &flag("datacenter")?, &list("datacenters")?).await?,
        "apply-schema" => {
            let session =
                orders_store::connect(&StoreConfig::new(flag("contact")?, flag("datacenter")?)).await?;
            let n = orders_store::schema::apply_dir(
                &session,
                &PathBuf::from(flag("dir")?),
                &list("datacenters")?,
            )
            .await?;
            println!("    applied {n} schema statements");
        }
        "seed" => {
            let session =
                orders_store::connect(&StoreConfig::new(flag("contact")?, flag("datacenter")?)).await?;
            seed(
                &session,
                &PathBuf::from(flag("catalog")?),
                &PathBuf::from(flag("credentials")?),
                &list("regions")?,
            )
            .await?;
        }
        _ => bail!("unknown command {command}\n{USAGE}"),
    }
    Ok(())
}

fn parse_flags(args: impl Iterator<Item = String>) -> Result<HashMap<String, String>> {
    let mut flags = HashMap::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let name = arg
            .strip_prefix("--")
            .with_context(|| format!("unexpected argument {arg}\n{USAGE}"))?;
        let value = args.next().with_context(|| format!("--{name} needs a value"))?;
        flags.insert(name.to_string(), value);
    }
    Ok(flags)
}

/// Ready when every other region's `orders` is mirrored here and its MirrorMaker 2 heartbeats arrive fresh.
async fn mirror_ready(bootstrap: &str, region: &str, regions: &[String]) -> Result<()> {
    for other in regions.iter().filter(|r| r.as_str() != region) {
        let topic = orders_log::mirrored(other, ORDERS_TOPIC);
        if !orders_log::topic_exists(bootstrap, &topic, Duration::from_secs(2)).await? {
            bail!("{topic} does not exist yet in {region}");
        }
        let heartbeats = orders_log::mirrored(other, "heartbeats");
        let latest = orders_log::latest_record(bootstrap, &heartbeats, Duration::from_secs(3))
            .await?
            .with_context(|| format!("no heartbeat mirrored from {other} into {region} yet"))?;
        if latest.age() > Duration::from_secs(10) {
            bail!(
                "newest heartbeat from {other} in {region} is {:?} old",
                latest.age()
            );
        }
    }
    Ok(())
}

/// Ready when the node answers a query in its datacenter and sees every datacenter of the cluster.
async fn cql_ready(contact: &str, datacenter: &str, datacenters: &[String]) -> Result<()> {
    let session = orders_store::connect(&StoreConfig::new(contact, datacenter)).await?;
    session
        .query_unpaged("SELECT release_version FROM system.local", ())
        .await?;
    let state = session.get_cluster_state();
    for dc in datacenters {
        let up = state
            .get_nodes_info()
            .iter()
            .any(|n| n.datacenter.as_deref() == Some(dc.as_str()));
        if !up {
            bail!("datacenter {dc} not yet visible from {contact}");
        }
    }
    Ok(())
}

/// Seeds the catalog and the dev credentials; running it again changes nothing.
async fn seed(
    session: &Arc<scylla::client::session::Session>,
    catalog: &PathBuf,
    credentials: &PathBuf,
    regions: &[String],
) -> Result<()> {
    let stock = orders_store::stock::Stock::new(session.clone()).await?;
    let text = std::fs::read_to_string(catalog).with_context(|| format!("reading {}", catalog.display()))?;
    let mut n = 0;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let [sku, name, price, currency, per_region] = f[..] else {
            bail!("bad catalog line: {line}")
        };
        let price: i64 = price.parse().with_context(|| format!("bad price in: {line}"))?;
        let per_region: i64 = per_region
            .parse()
            .with_context(|| format!("bad stock in: {line}"))?;
        // Stock is set once; later runs keep what orders have reserved since.
        for region in regions {
            if !stock.is_seeded(sku, region).await? {
                stock.set_available(sku, region, per_region).await?;
            }
        }
        session
            .query_unpaged(
                "INSERT INTO orders.catalog (sku, name, price_minor, currency) VALUES (?, ?, ?, ?)",
                (sku, name, price, currency),
            )
            .await?;
        n += 1;
    }
    println!("    catalog: {n} SKUs");
    let mut creds = std::fs::read_to_string(credentials).unwrap_or_default();
    let get = |creds: &str, k: &str| {
        creds
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    if get(&creds, "API_KEY").is_none() || get(&creds, "OPS_TOKEN").is_none() {
        creds = format!(
            "# Dev credentials written by ./dev up. Storefront key for Authorization: Bearer; operator token for /admin.\nAPI_KEY=sk_dev_{}\nOPS_TOKEN=ops_dev_{}\n",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        std::fs::write(credentials, &creds).with_context(|| format!("writing {}", credentials.display()))?;
    }
    let key = get(&creds, "API_KEY").context("API_KEY missing")?;
    orders_store::api_keys::register(session, &key, "dev-storefront").await?;
    println!("    credentials: {}", credentials.display());
    Ok(())
}
