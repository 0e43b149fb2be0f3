//! Stock allotments against the running stack's database: a crowd of concurrent reservations of
//! one SKU sells exactly what the allotment holds, in groups, and a retry among them changes nothing.
use std::sync::Arc;

use orders_store::stock::{Reservation, Stock};
use orders_tests::{region, session};
use uuid::Uuid;

async fn stock() -> Arc<Stock> {
    Arc::new(
        Stock::new(session(&region("eu")).await)
            .await
            .expect("stock statements"),
    )
}

/// Reserves one unit for each order, all at once; the outcomes in the orders' order.
async fn crowd(stock: &Arc<Stock>, sku: &str, orders: &[Uuid]) -> Vec<Reservation> {
    let tasks: Vec<_> = orders
        .iter()
        .map(|&order_id| {
            let (stock, sku) = (stock.clone(), sku.to_string());
            tokio::spawn(async move { stock.reserve(&sku, "eu", order_id, 1, None).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task").expect("reservation"));
    }
    outcomes
}

#[tokio::test]
async fn a_crowd_on_one_sku_gets_exactly_the_allotment_reserved_in_groups() {
    let stock = stock().await;
    let sku = format!("TEST-CROWD-{}", Uuid::new_v4().simple());
    stock.set_available(&sku, "eu", 40).await.expect("seed");
    let orders: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();

    let outcomes = crowd(&stock, &sku, &orders).await;

    let held: Vec<Uuid> = (orders.iter().zip(&outcomes))
        .filter(|(_, r)| **r == Reservation::Held)
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(held.len(), 40, "exactly the allotment is sold: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|r| matches!(r, Reservation::Held | Reservation::Insufficient { .. })),
        "{outcomes:?}"
    );
    assert_eq!(stock.available(&sku, "eu").await.unwrap(), 0);
    for order_id in &held {
        assert!(
            stock.holds(&sku, "eu", *order_id).await.unwrap(),
            "{order_id} holds its unit"
        );
    }
    assert!(
        stock.grouped() > 0,
        "100 concurrent reservations of one SKU made at least one group"
    );
}

#[tokio::test]
async fn a_retry_among_a_group_is_held_once_and_the_count_stays_exact() {
    let stock = stock().await;
    let sku = format!("TEST-RETRY-{}", Uuid::new_v4().simple());
    stock.set_available(&sku, "eu", 30).await.expect("seed");
    let first: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    assert!(
        crowd(&stock, &sku, &first)
            .await
            .iter()
            .all(|r| *r == Reservation::Held)
    );

    // The same ten again (retries) among ten new ones, all at once.
    let mut again = first.clone();
    again.extend((0..10).map(|_| Uuid::new_v4()));
    let outcomes = crowd(&stock, &sku, &again).await;

    assert!(outcomes.iter().all(|r| *r == Reservation::Held), "{outcomes:?}");
    assert_eq!(
        stock.available(&sku, "eu").await.unwrap(),
        10,
        "30 - 10 - 10 new: a retry never takes a second unit"
    );
}
