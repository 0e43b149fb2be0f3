//! Event decoding: bytes as the store and the `orders` topic hold them (one JSON envelope per
//! line) through the decoder every reader uses, then the fold over whatever decoded.
//!
//! Properties: nothing panics; an envelope that decodes encodes back to itself; a stream folds
//! whatever mix of events it is given; the next envelope a region would append is accepted by
//! the stream it was built from (unless the lane is full: its last seq is the store's maximum).
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use orders_domain::{EventEnvelope, OrderEvent, OrderStream, Region, decide_cancel, next_envelope};
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let events: Vec<EventEnvelope> = data
        .split(|&b| b == b'\n')
        .take(32)
        .filter_map(|line| serde_json::from_slice::<EventEnvelope>(line).ok())
        .collect();
    for event in &events {
        let bytes = serde_json::to_vec(event).expect("an envelope always encodes");
        let again: EventEnvelope = serde_json::from_slice(&bytes).expect("what we write we can read");
        assert_eq!(&again, event, "an envelope survives a round trip");
    }
    let Some(first) = events.first() else { return };
    let mut stream = OrderStream::new(first.order_id);
    let region = first.origin_region.clone();
    for event in events.iter().cloned() {
        let _ = stream.insert(event);
    }
    let _ = stream.ordered();
    let _ = stream.is_causally_complete();
    if let Ok(Some(state)) = stream.state() {
        let _ = state.next_saga_step();
        let _ = state.compensation();
        let _ = decide_cancel(&state, "fuzz");
    }
    // A region appending to this stream: its envelope must be one the stream takes.
    let mut id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000);
    while stream.contains(id) {
        id = Uuid::from_u128(id.as_u128() + 1);
    }
    let now: DateTime<Utc> = DateTime::from_timestamp_millis(1_767_225_600_000).expect("a valid instant");
    let full = stream.lane_head(&region) == i64::MAX.unsigned_abs();
    let appended = next_envelope(&stream, &region, OrderEvent::OrderConfirmed {}, id, now);
    let accepted = stream.insert(appended);
    if !full {
        assert_eq!(accepted, Ok(true), "a region's next envelope is accepted");
    }
    let _ = Region::new(region.as_str()).expect("a decoded region is a valid region");
});
