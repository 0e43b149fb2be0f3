//! What the bench knows of the running stack, read from the repository the way `./dev` reads it:
//! deploy/regions.conf, .dev/credentials.env, deploy/seed/catalog.csv and the pinned versions in `dev`.
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use orders_config::regions_conf;
pub use orders_config::regions_conf::Region;

/// A SKU of the seed catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku {
    pub sku: String,
    pub price_minor: i64,
    pub currency: String,
    pub stock_per_region: u64,
}

/// SKUs with at least `min_stock` per region, in file order.
pub fn parse_catalog(text: &str, min_stock: u64) -> Vec<Sku> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 5 {
                return None;
            }
            let sku = Sku {
                sku: f[0].into(),
                price_minor: f[2].parse().ok()?,
                currency: f[3].into(),
                stock_per_region: f[4].parse().ok()?,
            };
            (sku.stock_per_region >= min_stock).then_some(sku)
        })
        .collect()
}

/// `KEY=value` lines; comments and blank lines skipped.
pub fn parse_env_file(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
}

/// A `NAME=value` assignment in the `dev` script (e.g. `KAFKA_VERSION=4.3.1`).
pub fn dev_variable(script: &str, name: &str) -> Option<String> {
    script
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name}=")))
        .map(|v| {
            v.split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
        .filter(|v| !v.is_empty())
}

/// The repository and what it says about the stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub root: PathBuf,
    pub regions: Vec<Region>,
    pub skus: Vec<Sku>,
}

impl Stack {
    /// `root` or, when not given, the nearest ancestor of the working directory with deploy/regions.conf.
    pub fn load(root: Option<&Path>) -> anyhow::Result<Stack> {
        let root = match root {
            Some(r) => r.to_path_buf(),
            None => find_root(&std::env::current_dir()?)
                .context("no deploy/regions.conf here or above: run from the repository or pass --root")?,
        };
        let read = |rel: &str| {
            std::fs::read_to_string(root.join(rel))
                .with_context(|| format!("reading {}", root.join(rel).display()))
        };
        let regions = regions_conf::parse(&read("deploy/regions.conf")?)?;
        let skus = parse_catalog(&read("deploy/seed/catalog.csv")?, 1000);
        if skus.is_empty() {
            bail!("deploy/seed/catalog.csv has no SKU with plenty of stock (>= 1000 per region)");
        }
        Ok(Stack { root, regions, skus })
    }

    pub fn region(&self, name: &str) -> anyhow::Result<&Region> {
        self.regions
            .iter()
            .find(|r| r.name == name)
            .with_context(|| format!("no region {name:?} in deploy/regions.conf"))
    }

    /// The storefront key `./dev up` wrote.
    pub fn api_key(&self) -> anyhow::Result<String> {
        let path = self.root.join(".dev/credentials.env");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (is the stack up? ./dev up)", path.display()))?;
        parse_env_file(&text, "API_KEY").context("no API_KEY in .dev/credentials.env")
    }

    pub fn dev_script(&self) -> PathBuf {
        self.root.join("dev")
    }

    /// A pinned version from `dev`, or the one this bench was written against.
    pub fn dev_version(&self, name: &str, fallback: &str) -> String {
        std::fs::read_to_string(self.dev_script())
            .ok()
            .and_then(|s| dev_variable(&s, name))
            .unwrap_or_else(|| fallback.to_string())
    }
}

fn find_root(from: &Path) -> Option<PathBuf> {
    from.ancestors()
        .find(|d| d.join("deploy/regions.conf").is_file())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plentiful_skus_are_used() {
        let csv = "sku,name,price_minor,currency,stock_per_region\nMUG,Mug,1250,EUR,100000\nRARE,Rare,15900,EUR,50\n";
        let skus = parse_catalog(csv, 1000);
        assert_eq!(skus.len(), 1);
        assert_eq!(skus[0].price_minor, 1250);
    }

    #[test]
    fn credentials_and_pinned_versions_are_found() {
        assert_eq!(
            parse_env_file("# dev\nAPI_KEY=abc\nOPS_TOKEN=x=y\n", "OPS_TOKEN").as_deref(),
            Some("x=y")
        );
        let dev = "set -e\nKAFKA_VERSION=4.3.1\nCASSANDRA_VERSION=5.0.6   # pinned\n";
        assert_eq!(dev_variable(dev, "CASSANDRA_VERSION").as_deref(), Some("5.0.6"));
        assert_eq!(dev_variable(dev, "NOPE"), None);
    }
}
