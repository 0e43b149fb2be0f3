//! Placement request parsing: bytes as a `POST /v1/orders` body through the request type,
//! validation and pricing the API runs before anything is written.
//!
//! Properties: nothing panics; every field error points at a field of the request; a request
//! that validates is priced or refused only for what validation cannot know (the catalog:
//! unknown SKU, bad price, mixed currencies, a total too large), and a priced order has one
//! line per item at the requested quantity and a total that is their exact sum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orders_domain::{
    Money, PlaceOrderRequest, PricingError, order_id_for, price_order, validate_place_order,
};

fn catalog(sku: &str) -> Option<Money> {
    let (amount_minor, currency) = match sku {
        "MUG-LOGO" => (1250, "EUR"),
        "STICKER-PACK" => (399, "EUR"),
        "FREE" => (0, "EUR"),
        "GOLD" => (i64::MAX / 1000, "EUR"),
        "MAX" => (i64::MAX, "EUR"),
        "USD-CAP" => (2400, "USD"),
        "BAD-PRICE" => (-1, "EUR"),
        "BAD-CURRENCY" => (100, "eur"),
        _ => return None,
    };
    Some(Money {
        amount_minor,
        currency: currency.into(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<PlaceOrderRequest>(data) else {
        return;
    };
    let _ = order_id_for("fuzz-client", &String::from_utf8_lossy(data));
    let as_value = serde_json::to_value(&request).expect("a request always encodes");
    if let Err(errors) = validate_place_order(&request) {
        assert!(!errors.is_empty(), "a refusal names at least one field");
        for error in &errors {
            assert!(
                as_value.pointer(&error.pointer).is_some(),
                "field error {} points at no field of {as_value}",
                error.pointer
            );
        }
        let _ = price_order(&request, &catalog);
        return;
    }
    match price_order(&request, &catalog) {
        Ok((lines, total)) => {
            assert_eq!(lines.len(), request.items.len());
            let mut sum: i128 = 0;
            for (line, item) in lines.iter().zip(&request.items) {
                assert_eq!(line.sku, item.sku);
                assert_eq!(i64::from(line.quantity), item.quantity);
                assert_eq!(line.unit_price.currency, total.currency);
                sum += i128::from(line.unit_price.amount_minor) * i128::from(line.quantity);
            }
            assert_eq!(
                sum,
                i128::from(total.amount_minor),
                "the total is the exact sum of the lines"
            );
        }
        Err(PricingError::UnknownSku { .. })
        | Err(PricingError::InvalidCatalogPrice { .. })
        | Err(PricingError::CurrencyMismatch { .. })
        | Err(PricingError::Overflow { .. }) => {}
        Err(other @ (PricingError::NoItems | PricingError::InvalidQuantity { .. })) => {
            panic!("validation let through what pricing refuses: {other}")
        }
    }
});
