//! The worker's view of who owns which region's orders, refreshed every second, and the operator
//! commands that move ownership (take over a dead region's orders, hand them back).
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use orders_domain::Region;
use orders_store::ownership::{Owner, Ownership, ReadScope, owner_of};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::StoreError;

#[derive(Clone)]
pub struct Owners {
    store: Arc<Ownership>,
    regions: Vec<Region>,
    view: Arc<RwLock<HashMap<String, Owner>>>,
}

impl Owners {
    /// Loads ownership before the worker acts on anything. It insists on a read that reached every
    /// datacenter for a while, so a region coming back from an outage sees a takeover made while it
    /// was gone; with the other datacenters really down, its local view is all there is.
    pub async fn load(store: Ownership, regions: Vec<Region>) -> Result<Self, StoreError> {
        let owners = Owners {
            store: Arc::new(store),
            regions,
            view: Arc::default(),
        };
        for attempt in 0.. {
            match owners.refresh().await? {
                ReadScope::AllDatacenters => break,
                ReadScope::LocalOnly if attempt >= 20 => {
                    warn!("ownership read only from this datacenter: the others are unreachable");
                    break;
                }
                ReadScope::LocalOnly => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        Ok(owners)
    }

    async fn refresh(&self) -> Result<ReadScope, StoreError> {
        let mut scope = ReadScope::AllDatacenters;
        let mut view = HashMap::new();
        for origin in &self.regions {
            let (claims, s) = self.store.claims(origin.as_str()).await?;
            if s == ReadScope::LocalOnly {
                scope = s;
            }
            view.insert(origin.to_string(), owner_of(origin.as_str(), &claims));
        }
        *self.view.write().expect("owners lock") = view;
        Ok(scope)
    }

    /// The region that processes orders placed in `origin`.
    pub fn owner_of(&self, origin: &str) -> String {
        self.view
            .read()
            .expect("owners lock")
            .get(origin)
            .map(|o| o.region.clone())
            .unwrap_or_else(|| origin.to_string())
    }

    pub fn snapshot(&self) -> HashMap<String, Owner> {
        self.view.read().expect("owners lock").clone()
    }

    /// The regions whose orders `region` processes, as this view stands.
    pub fn owned_by(&self, region: &str) -> BTreeSet<String> {
        owned_by(&self.view.read().expect("owners lock"), region)
    }

    /// Claims (`take`) or hands back (`!take`) `origin`'s orders, then refreshes the view.
    pub async fn claim(&self, origin: &str, take: bool) -> Result<Owner, StoreError> {
        let owner = self.store.claim(origin, take).await?;
        info!(origin, owner = %owner.region, epoch = owner.epoch, "ownership changed");
        self.refresh().await?;
        Ok(owner)
    }

    pub async fn run_refresh(self, every: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(error) = self.refresh().await {
                warn!(%error, "ownership refresh failed; keeping the last view");
            }
        }
    }
}

/// The origins `region` processes in `view` (an origin without a claim processes its own).
fn owned_by(view: &HashMap<String, Owner>, region: &str) -> BTreeSet<String> {
    view.iter()
        .filter(|(_, owner)| owner.region == region)
        .map(|(origin, _)| origin.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(region: &str, epoch: i64) -> Owner {
        Owner {
            region: region.into(),
            epoch,
        }
    }

    #[test]
    fn a_region_owns_what_the_view_gives_it() {
        let view: HashMap<String, Owner> = [
            ("eu".to_string(), owner("us", 5)),
            ("us".to_string(), owner("us", 0)),
        ]
        .into();
        assert_eq!(owned_by(&view, "us"), BTreeSet::from(["eu".into(), "us".into()]));
        assert!(owned_by(&view, "eu").is_empty());
    }
}
