//! Checks the Rust event types against the JSON Schemas in `schemas/events/`, one per event type.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use orders_domain::{OrderEvent, OrderStream, next_envelope};
use serde_json::{Value, json};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events")
}

fn schema(type_name: &str) -> Value {
    let path = schema_dir().join(format!("{type_name}.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn validator(type_name: &str) -> jsonschema::Validator {
    // Formats (date-time) are only annotations in 2020-12 unless asked for.
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema(type_name))
        .unwrap()
}

fn errors(type_name: &str, instance: &Value) -> Vec<String> {
    validator(type_name)
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// An envelope written in `ap` after seeing two events of `eu`: three regions, two slots.
fn envelope_json(event: OrderEvent) -> Value {
    let (eu, ap, mut log) = (region("eu"), region("ap-south-1"), Log::new());
    let mut stream = OrderStream::new(order_id());
    log.append(&mut stream, &eu, placed());
    log.append(&mut stream, &eu, reserved(1));
    serde_json::to_value(next_envelope(&stream, &ap, event, event_id(9), at(9))).unwrap()
}

#[test]
fn a_schema_file_exists_for_every_event_type_and_for_nothing_else() {
    let files: BTreeSet<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let expected: BTreeSet<String> = OrderEvent::TYPE_NAMES
        .iter()
        .map(|name| format!("{name}.json"))
        .collect();
    assert_eq!(files, expected);
    let sampled: Vec<&str> = every_variant().iter().map(OrderEvent::type_name).collect();
    assert_eq!(sampled, OrderEvent::TYPE_NAMES);
}

#[test]
fn every_schema_is_a_closed_2020_12_schema() {
    for name in OrderEvent::TYPE_NAMES {
        let schema = schema(name);
        assert!(jsonschema::meta::is_valid(&schema), "{name}");
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["additionalProperties"], false, "{name}");
        assert_eq!(schema["properties"]["type"]["const"], name);
        let payload = &schema["properties"]["payload"];
        assert_eq!(payload["additionalProperties"], false, "{name}");
        assert_eq!(payload["properties"]["type"]["const"], name);
    }
}

#[test]
fn every_event_type_serializes_to_an_envelope_its_schema_accepts() {
    let mut with_line2 = placed();
    if let OrderEvent::OrderPlaced { shipping_address, .. } = &mut with_line2 {
        shipping_address.line2 = Some("Flat 2".into());
    }
    for event in every_variant().into_iter().chain([with_line2]) {
        let name = event.type_name();
        let instance = envelope_json(event);
        assert_eq!(errors(name, &instance), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn an_envelope_is_refused_by_the_schema_of_another_type() {
    let instance = envelope_json(OrderEvent::OrderConfirmed {});
    for name in OrderEvent::TYPE_NAMES {
        let accepted = validator(name).is_valid(&instance);
        assert_eq!(accepted, name == "OrderConfirmed", "{name}");
    }
}

/// Turns a valid instance into an invalid one.
type Breakage = fn(&mut Value);

#[test]
fn schemas_refuse_extra_fields_and_malformed_values() {
    let good = envelope_json(placed());
    let broken: [(&str, Breakage); 9] = [
        ("extra payload field", |v| v["payload"]["extra"] = json!(1)),
        ("extra envelope field", |v| v["extra"] = json!(1)),
        ("missing payload field", |v| {
            v["payload"].as_object_mut().unwrap().remove("total");
        }),
        ("event id not v7", |v| {
            v["event_id"] = json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
        }),
        ("upper-case region", |v| v["origin_region"] = json!("EU")),
        ("seq zero", |v| v["seq"] = json!(0)),
        ("bad currency", |v| {
            v["payload"]["total"]["currency"] = json!("eur")
        }),
        ("bad timestamp", |v| v["occurred_at"] = json!("yesterday")),
        ("zero quantity", |v| {
            v["payload"]["items"][0]["quantity"] = json!(0)
        }),
    ];
    assert!(validator("OrderPlaced").is_valid(&good));
    for (what, breaking) in broken {
        let mut instance = good.clone();
        breaking(&mut instance);
        assert!(!validator("OrderPlaced").is_valid(&instance), "{what}");
    }
}
