//! The placement protocol: replay of a placement that already happened, refusal of a sold-out SKU,
//! the idempotency claim (422 for a reused key, 409 while in flight) and the placement's writes,
//! acknowledged globally or, with the other regions unreachable, degraded to this region
//! (docs/decisions/0004-idempotency-across-regions.md, docs/decisions/0006-write-path.md).
//!
//! The route parses and prices the request, calls `Placement::place` and renders what it returns.
//! The protocol reaches the world through three small ports, implemented here over the store and
//! the journal, and by in-memory fakes in its tests. The traits use `async fn`: the API only runs
//! them over the concrete adapters, whose futures are `Send`.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use orders_domain::{
    Claim, ClaimVerdict, EventEnvelope, LineItem, Money, OrderEvent, OrderState, OrderStream,
    PlaceOrderRequest, Region, judge_claims, next_envelope, order_id_for,
};
use orders_journal::{Journal, JournalError};
use orders_store::customers::{CustomerOrder, Customers};
use orders_store::idempotency::{ClaimRequest, Idempotency, KeyRecord, Scope};
use orders_store::open_orders::OpenOrders;
use orders_store::reach::Reach;
use orders_store::{Appended, Durability, StoreError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::problem::ApiError;

#[cfg(test)]
mod fakes;
#[cfg(test)]
mod tests;

/// The order's stream and the writes of a placement.
#[allow(async_fn_in_trait)]
pub trait Orders {
    /// The durability placements are acknowledged with.
    fn durability(&self) -> Durability;
    /// This region's view of whether the other datacenters can take part now.
    fn reach(&self) -> &Reach;
    /// Every event of the order visible in this region.
    async fn read_stream(&self, order_id: Uuid) -> Result<OrderStream, StoreError>;
    /// The customer's row of the order (harmless if the placement then fails).
    async fn record_customer_order(&self, customer_id: Uuid, row: &CustomerOrder) -> Result<(), StoreError>;
    /// The order among this region's open orders, which is also the placement's intent: it must be
    /// in place before the event is (harmless if the placement then fails).
    async fn add_open_order(
        &self,
        origin: &str,
        order_id: Uuid,
        placed_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Writes `OrderPlaced` (the caller holds the key's claim and wrote the open-orders row) and
    /// publishes it.
    async fn place(&self, envelope: &EventEnvelope) -> Result<Appended, JournalError>;
}

/// The idempotency claims of a key: one row per claiming request.
#[allow(async_fn_in_trait)]
pub trait Claims {
    /// Writes this request's claim of the key.
    async fn claim(&self, scope: Scope, request: &ClaimRequest<'_>) -> Result<(), StoreError>;
    /// Every claim of the key, as far as `scope` reaches.
    async fn records(&self, scope: Scope, client: &str, key: &str) -> Result<Vec<KeyRecord>, StoreError>;
    /// Gives this request's claim up.
    async fn release(&self, client: &str, key: &str, claimant: Uuid) -> Result<(), StoreError>;
}

/// What is left to sell in this region, as last seen.
pub trait SoldOut {
    /// Whether `quantity` of `sku` is known to be more than this region has left.
    fn sold_out(&self, sku: &str, quantity: i64) -> bool;
}

/// The production `Orders`: the journal and the rows written beside a placement.
pub struct Store<'a> {
    pub journal: &'a Arc<Journal>,
    pub customers: &'a Customers,
    pub open_orders: &'a OpenOrders,
}

impl Orders for Store<'_> {
    fn durability(&self) -> Durability {
        self.journal.durability()
    }

    fn reach(&self) -> &Reach {
        self.journal.store().reach()
    }

    async fn read_stream(&self, order_id: Uuid) -> Result<OrderStream, StoreError> {
        self.journal.store().read_stream(order_id).await
    }

    async fn record_customer_order(&self, customer_id: Uuid, row: &CustomerOrder) -> Result<(), StoreError> {
        self.customers.record(customer_id, row).await
    }

    async fn add_open_order(
        &self,
        origin: &str,
        order_id: Uuid,
        placed_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.open_orders.add(origin, order_id, placed_at).await
    }

    async fn place(&self, envelope: &EventEnvelope) -> Result<Appended, JournalError> {
        self.journal.place(envelope).await
    }
}

impl Claims for Idempotency {
    async fn claim(&self, scope: Scope, request: &ClaimRequest<'_>) -> Result<(), StoreError> {
        Idempotency::claim(self, scope, request).await
    }

    async fn records(&self, scope: Scope, client: &str, key: &str) -> Result<Vec<KeyRecord>, StoreError> {
        Idempotency::records(self, scope, client, key).await
    }

    async fn release(&self, client: &str, key: &str, claimant: Uuid) -> Result<(), StoreError> {
        Idempotency::release(self, client, key, claimant).await
    }
}

impl SoldOut for crate::allotments::Allotments {
    fn sold_out(&self, sku: &str, quantity: i64) -> bool {
        crate::allotments::Allotments::sold_out(self, sku, quantity)
    }
}

/// Striped per-order locks of the placements in this instance.
pub struct Placing {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Default for Placing {
    fn default() -> Self {
        Placing {
            stripes: (0..256).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

impl Placing {
    async fn lock(&self, order_id: Uuid) -> tokio::sync::MutexGuard<'_, ()> {
        self.stripes[(order_id.as_u128() % self.stripes.len() as u128) as usize]
            .lock()
            .await
    }
}

/// A valid, priced request to place an order under an idempotency key.
pub struct Order {
    pub client: String,
    pub key: String,
    pub request: PlaceOrderRequest,
    pub items: Vec<LineItem>,
    pub total: Money,
}

/// What a placement came to.
#[derive(Debug)]
pub enum Placed {
    /// This request placed the order, acknowledged with `durability` (`global`,
    /// `global_degraded` or `local`, as counted in `orders_placed_total`).
    Created {
        state: OrderState,
        durability: &'static str,
    },
    /// The order was placed before under this key with this body: the same order again.
    Replayed(OrderState),
}

/// The placement protocol of one region over its ports.
pub struct Placement<'a, O, C, A> {
    pub region: &'a Region,
    pub orders: &'a O,
    pub claims: &'a C,
    pub allotments: &'a A,
    /// One placement at a time per order in this instance: concurrent retries of one key wait
    /// for the first and replay it, instead of stepping back together.
    pub placing: &'a Placing,
    /// `orders_placed_total` by durability.
    pub placed: &'a prometheus::IntCounterVec,
}

/// The order's state if the stream holds its placement.
fn placed_before(stream: &OrderStream) -> Option<OrderState> {
    stream.state().ok().flatten()
}

/// A retry of a placement: the same order again, if the body is the same.
fn replay(existing: OrderState, fingerprint: &str) -> Result<Placed, ApiError> {
    match existing.idempotency_fingerprint == fingerprint {
        true => Ok(Placed::Replayed(existing)),
        false => Err(ApiError::IdempotencyKeyReused),
    }
}

/// The request's identity for idempotency: a hash of its parsed, canonical form.
pub fn fingerprint(request: &PlaceOrderRequest) -> String {
    let canonical = serde_json::to_vec(request).expect("a request always serializes");
    hex::encode(Sha256::digest(canonical))
}

impl<O: Orders, C: Claims, A: SoldOut> Placement<'_, O, C, A> {
    /// Places the order, or finds it placed before, or says why not. Nothing is written for a
    /// refusal but this request's own claim, given up again before answering.
    pub async fn place(&self, order: Order) -> Result<Placed, ApiError> {
        let Order {
            client,
            key,
            request,
            items,
            total,
        } = order;
        let fingerprint = fingerprint(&request);
        let order_id = order_id_for(&client, &key);
        let _placing = self.placing.lock(order_id).await;
        let claim = ClaimRequest {
            client: &client,
            key: &key,
            claimant: Uuid::new_v4(),
            fingerprint: &fingerprint,
            order_id,
            now: Utc::now(),
        };

        let sold_out = (request.items.iter().enumerate())
            .find(|(_, item)| self.allotments.sold_out(&item.sku, item.quantity));
        let stream = if let Some((i, item)) = sold_out {
            // Refused at once from the cached allotments rather than accepted and rejected a
            // moment later, writing nothing; unless it is a retry of an order placed before.
            let stream = self.orders.read_stream(order_id).await?;
            if let Some(existing) = placed_before(&stream) {
                return replay(existing, &fingerprint);
            }
            return Err(ApiError::SoldOut {
                sku: item.sku.clone(),
                pointer: format!("/items/{i}/sku"),
            });
        } else {
            // Whether this is a retry of a placement that already happened, here or in another
            // region, is read while the key is claimed: one round trip less for a fresh key.
            let (stream, claimed) = tokio::join!(self.orders.read_stream(order_id), self.claim(&claim));
            let stream = match stream {
                Ok(stream) => stream,
                Err(error) => {
                    if claimed.is_ok() {
                        self.claims.release(&client, &key, claim.claimant).await?;
                    }
                    return Err(error.into());
                }
            };
            if let Some(existing) = placed_before(&stream) {
                if claimed.is_ok() {
                    self.claims.release(&client, &key, claim.claimant).await?;
                }
                return replay(existing, &fingerprint);
            }
            claimed?;
            stream
        };
        let now = claim.now;

        let event = OrderEvent::OrderPlaced {
            customer_id: request.customer_id,
            items,
            total: total.clone(),
            shipping_address: request.shipping_address,
            idempotency_fingerprint: fingerprint.clone(),
        };
        let envelope = next_envelope(&stream, self.region, event, Uuid::now_v7(), now);
        let row = CustomerOrder {
            order_id,
            placed_at: envelope.occurred_at,
            origin_region: self.region.to_string(),
            total_minor: total.amount_minor,
            currency: total.currency.clone(),
        };
        // The rows beside the event are harmless if the placement then fails (readers skip orders
        // without events; the relay drops an open-orders row whose event never came), so they are
        // written at once, and the event after them: the open-orders row is the placement's intent,
        // from which the relay publishes the event if this process dies before it does.
        tokio::try_join!(
            self.orders.record_customer_order(request.customer_id, &row),
            self.orders
                .add_open_order(self.region.as_str(), order_id, envelope.occurred_at),
        )?;
        let outcome = self.orders.place(&envelope).await?;
        let durability = match (outcome, self.orders.durability()) {
            (Appended::Degraded, _) => "global_degraded",
            (_, Durability::Global) => "global",
            _ => "local",
        };
        self.placed.with_label_values(&[durability]).inc();
        let mut stream = stream;
        stream
            .insert(envelope)
            .map_err(|e| ApiError::Internal(e.into()))?;
        let state = stream
            .state()
            .map_err(|e| ApiError::Internal(e.into()))?
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "order {order_id} has no state after its placement"
                ))
            })?;
        Ok(Placed::Created { state, durability })
    }

    /// Claims (client, key) for this request: `Ok` when it may place the order itself.
    ///
    /// The request writes its own claim row, then reads every claim of the key. In `global`
    /// durability both reach every datacenter (EACH_QUORUM write, QUORUM read), so of two requests
    /// claiming the same key at once, anywhere, at least one sees the other and steps back (409)
    /// after giving its own claim up, so a retry is never blocked for long. In `local` durability
    /// they reach this datacenter: two regions can both place the same key within the replication
    /// lag, and the fold then keeps the first placement
    /// (docs/decisions/0004-idempotency-across-regions.md).
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<(), ApiError> {
        let ClaimRequest {
            client,
            key,
            claimant,
            fingerprint,
            order_id,
            now,
        } = *request;
        let reach = self.orders.reach();
        let mut scope = match self.orders.durability() == Durability::Global && reach.is_global_possible() {
            true => Scope::Everywhere,
            false => Scope::Local,
        };
        let claims = self.claims;
        let claimed = claims.claim(scope, request).await;
        let records = match claimed {
            Ok(()) => claims.records(scope, client, key).await,
            Err(e) => Err(e),
        };
        let records = match records {
            Ok(records) => records,
            Err(error) if scope == Scope::Everywhere => {
                // The other datacenters did not answer in time: claim as far as reaches now.
                reach.declare_unreachable(format!("idempotency claim: {error}"));
                scope = Scope::Local;
                claims.claim(scope, request).await?;
                claims.records(scope, client, key).await?
            }
            Err(error) => return Err(error.into()),
        };
        let seen: Vec<Claim> = records
            .into_iter()
            .map(|r| Claim {
                claimant: r.claimant,
                fingerprint: r.fingerprint,
                started_at: r.started_at,
            })
            .collect();
        let verdict = judge_claims(claimant, fingerprint, &seen, now);
        if verdict != ClaimVerdict::Proceed {
            claims.release(client, key, claimant).await?;
        }
        match verdict {
            ClaimVerdict::Proceed => Ok(()),
            ClaimVerdict::Reused => Err(ApiError::IdempotencyKeyReused),
            ClaimVerdict::InFlight => {
                tracing::info!(%order_id, "same key in flight in another request");
                Err(ApiError::IdempotencyKeyInFlight)
            }
        }
    }
}
