//! An HTTP client of one region's orders API for tests, and the contract check: every reply it
//! gets is validated against `schemas/openapi.yaml` (status, content type, required headers, body).
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jsonschema::Validator;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Region, credentials, region, repo_root};

/// The client id the dev storefront key belongs to (`./dev up` registers it).
pub const CLIENT_ID: &str = "dev-storefront";

/// One reply, with what the contract check needs to find its response in the spec.
#[derive(Debug, Clone)]
pub struct Reply {
    pub method: Method,
    /// The path template as the spec and router spell it, e.g. `/v1/orders/{id}`.
    pub route: &'static str,
    pub status: u16,
    pub headers: HeaderMap,
    /// The body parsed as JSON; `Value::Null` when it is empty or not JSON (see `text`).
    pub json: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type without parameters, lower case.
    pub fn content_type(&self) -> String {
        media_type(self.header("content-type").unwrap_or(""))
    }

    /// The problem `type`, or "" when the body is not a problem.
    pub fn problem_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or("")
    }

    /// The `id` of an order body.
    pub fn order_id(&self) -> Uuid {
        self.json["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_else(|| panic!("not an order: {} {}", self.status, self.text))
    }

    /// Asserts an RFC 9457 problem of this status and type.
    pub fn assert_problem(&self, status: u16, slug: &str) {
        let what = format!("{} {} -> {} {}", self.method, self.route, self.status, self.text);
        assert_eq!(self.status, status, "{what}");
        assert_eq!(self.content_type(), "application/problem+json", "{what}");
        assert_eq!(self.problem_type(), format!("/problems/{slug}"), "{what}");
        assert_eq!(self.json["status"], status, "{what}");
    }
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A client of one region's API, authenticated with the dev storefront key.
#[derive(Clone)]
pub struct ApiClient {
    pub region: Region,
    base: String,
    api_key: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(region_name: &str) -> Self {
        let region = region(region_name);
        let (api_key, http) = storefront();
        ApiClient {
            base: region.api_url(),
            region,
            api_key,
            http,
        }
    }

    /// A client of another API process of region `region_name` at `base` (e.g. one a test started
    /// with its own environment), with the same key and contract check.
    pub fn at(region_name: &str, base: impl Into<String>) -> Self {
        ApiClient {
            base: base.into(),
            ..Self::new(region_name)
        }
    }

    /// A request with the storefront's Authorization header; add headers and a body, then `send`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path).bearer_auth(&self.api_key)
    }

    /// A request without Authorization.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends `request`, reads the reply and checks it against the spec's response for `route`.
    pub async fn send(&self, route: &'static str, request: RequestBuilder) -> Reply {
        let request = request.build().expect("a well-formed request");
        let method = request.method().clone();
        let url = request.url().clone();
        let response = self.http.execute(request).await.unwrap_or_else(|e| {
            panic!(
                "{method} {url}: no answer from the {} API ({e}); is the stack up (./dev up)?",
                self.region.name
            )
        });
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("reply body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        let reply = Reply {
            method,
            route,
            status,
            headers,
            json,
            text,
        };
        if let Err(e) = openapi().check_reply(&reply) {
            panic!(
                "{} {url} -> {} breaks schemas/openapi.yaml: {e}\nbody: {}",
                reply.method, reply.status, reply.text
            );
        }
        reply
    }

    /// `POST /v1/orders` with a JSON body.
    pub async fn place(&self, key: &str, body: &Value) -> Reply {
        let request = self
            .request(Method::POST, "/v1/orders")
            .header("idempotency-key", key)
            .json(body);
        self.send("/v1/orders", request).await
    }

    /// `POST /v1/orders` with any key (or none), content type (or none) and raw bytes.
    pub async fn place_raw(&self, key: Option<&str>, content_type: Option<&str>, body: Vec<u8>) -> Reply {
        let mut request = self.request(Method::POST, "/v1/orders").body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.send("/v1/orders", request).await
    }

    pub async fn get_order(&self, id: impl std::fmt::Display) -> Reply {
        let request = self.request(Method::GET, &format!("/v1/orders/{id}"));
        self.send("/v1/orders/{id}", request).await
    }

    pub async fn events(&self, id: impl std::fmt::Display) -> Reply {
        let request = self.request(Method::GET, &format!("/v1/orders/{id}/events"));
        self.send("/v1/orders/{id}/events", request).await
    }

    /// `POST /v1/orders/{id}/cancel`, with `{"reason": ...}` when a reason is given, else no body.
    pub async fn cancel(&self, id: impl std::fmt::Display, reason: Option<&str>) -> Reply {
        let mut request = self.request(Method::POST, &format!("/v1/orders/{id}/cancel"));
        if let Some(reason) = reason {
            request = request.json(&json!({ "reason": reason }));
        }
        self.send("/v1/orders/{id}/cancel", request).await
    }

    /// `GET /v1/customers/{id}/orders` with a raw query string (`""`, `"limit=2"`, ...).
    pub async fn customer_orders(&self, customer: impl std::fmt::Display, query: &str) -> Reply {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let request = self.request(Method::GET, &format!("/v1/customers/{customer}/orders{query}"));
        self.send("/v1/customers/{id}/orders", request).await
    }

    pub async fn catalog(&self) -> Reply {
        let request = self.request(Method::GET, "/v1/catalog");
        self.send("/v1/catalog", request).await
    }

    pub async fn live(&self) -> Reply {
        let request = self.anonymous(Method::GET, "/health/live");
        self.send("/health/live", request).await
    }
}

/// The dev storefront's API key (`./dev up` writes it to .dev/credentials.env) and an HTTP client
/// with the timeout every test client uses.
pub fn storefront() -> (String, reqwest::Client) {
    let api_key = credentials()
        .remove("API_KEY")
        .expect("API_KEY in .dev/credentials.env: run ./dev up");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("http client");
    (api_key, http)
}

/// A fresh Idempotency-Key.
pub fn fresh_key() -> String {
    format!("test-{}", Uuid::new_v4())
}

/// SKUs of deploy/seed/catalog.csv with plenty of stock, in file order.
pub fn plentiful_skus() -> Vec<String> {
    let path = repo_root().join("deploy/seed/catalog.csv");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let stock: u64 = fields.last()?.trim().parse().ok()?;
            (stock >= 1000).then(|| fields[0].trim().to_string())
        })
        .collect()
}

/// A valid placement body for `customer_id`: two seeded SKUs and a German address.
pub fn sample_order(customer_id: Uuid) -> Value {
    let skus = plentiful_skus();
    assert!(
        skus.len() >= 2,
        "deploy/seed/catalog.csv needs two plentiful SKUs"
    );
    json!({
        "customer_id": customer_id,
        "items": [
            { "sku": skus[0], "quantity": 1 },
            { "sku": skus[1], "quantity": 2 },
        ],
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "1 Test Street",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
    })
}

/// `schemas/openapi.yaml`, loaded once with the event schemas it refers to, and a validator per
/// schema location, built on first use.
pub struct OpenApi {
    pub doc: Value,
    uri: String,
    registry: jsonschema::Registry<'static>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// The spec every reply is checked against.
pub fn openapi() -> &'static OpenApi {
    static SPEC: OnceLock<OpenApi> = OnceLock::new();
    SPEC.get_or_init(|| OpenApi::load().unwrap_or_else(|e| panic!("{e}")))
}

fn load(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// One JSON pointer token, escaped (RFC 6901) and made safe for a URI fragment.
fn pointer_token(token: &str) -> String {
    token
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

impl OpenApi {
    /// Reads the spec and registers it and every schemas/events/*.json under their file URIs, so
    /// the spec's relative `$ref`s to event envelopes resolve without any retrieval.
    fn load() -> Result<Self, String> {
        let dir = repo_root().join("schemas");
        let path = dir.join("openapi.yaml");
        let doc = load(&path)?;
        let mut resources = vec![(file_uri(&path), doc.clone())];
        let events = std::fs::read_dir(dir.join("events")).map_err(|e| format!("schemas/events: {e}"))?;
        for entry in events {
            let path = entry.map_err(|e| e.to_string())?.path();
            resources.push((file_uri(&path), load(&path)?));
        }
        let registry = jsonschema::Registry::new()
            .draft(jsonschema::Draft::Draft202012)
            .extend(resources)
            .and_then(|builder| builder.prepare())
            .map_err(|e| format!("cannot register the spec's schemas: {e}"))?;
        Ok(OpenApi {
            doc,
            uri: file_uri(&path),
            registry,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// Every (method, path template) the spec documents, upper-case methods.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ] {
                if item.get(method).is_some() {
                    out.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    /// Follows `$ref`s local to the spec; returns the value and its JSON pointer.
    fn deref(&self, mut pointer: String) -> Result<(&Value, String), String> {
        for _ in 0..8 {
            let value = self
                .doc
                .pointer(&pointer.replace("%7B", "{").replace("%7D", "}"))
                .ok_or_else(|| format!("nothing at #{pointer}"))?;
            match value.get("$ref").and_then(Value::as_str) {
                Some(target) => {
                    pointer = target
                        .strip_prefix('#')
                        .ok_or_else(|| format!("non-local $ref {target} at #{pointer}"))?
                        .to_string();
                }
                None => return Ok((value, pointer)),
            }
        }
        Err(format!("$ref chain too long at #{pointer}"))
    }

    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        if let Some(v) = self.validators.lock().expect("validators").get(pointer) {
            return Ok(v.clone());
        }
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .with_registry(&self.registry)
            .build(&json!({ "$ref": format!("{}#{pointer}", self.uri) }))
            .map_err(|e| format!("the schema at #{pointer} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        self.validators
            .lock()
            .expect("validators")
            .insert(pointer.to_string(), validator.clone());
        Ok(validator)
    }

    /// Validates `instance` against the schema at `pointer`; every violation in the error.
    pub fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let validator = self.validator(pointer)?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{e} (at {})", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("against #{pointer}: {}", errors.join("; ")))
        }
    }

    fn operation_pointer(&self, method: &Method, route: &str) -> String {
        format!(
            "/paths/{}/{}",
            pointer_token(route),
            method.as_str().to_ascii_lowercase()
        )
    }

    /// Checks a request body against the operation's request body schema.
    pub fn check_request(&self, method: &Method, route: &str, body: &Value) -> Result<(), String> {
        let operation = self.operation_pointer(method, route);
        let (_, body_pointer) = self.deref(format!("{operation}/requestBody"))?;
        self.validate(&format!("{body_pointer}/content/application~1json/schema"), body)
    }

    /// Checks that the spec documents this reply: its status for the operation, its content type,
    /// its required headers, and that the body validates against the schema.
    pub fn check_reply(&self, reply: &Reply) -> Result<(), String> {
        let operation = self.operation_pointer(&reply.method, reply.route);
        let (response, response_pointer) = self
            .deref(format!("{operation}/responses/{}", reply.status))
            .map_err(|e| {
                format!(
                    "status {} is not documented for the operation ({e})",
                    reply.status
                )
            })?;
        if let Some(headers) = response.get("headers").and_then(Value::as_object) {
            for name in headers.keys() {
                let (header, header_pointer) =
                    self.deref(format!("{response_pointer}/headers/{}", pointer_token(name)))?;
                match reply.header(name) {
                    Some(value) => self.validate(&format!("{header_pointer}/schema"), &json!(value))?,
                    None if header["required"] == true => {
                        return Err(format!("required header {name} is missing"));
                    }
                    None => {}
                }
            }
        }
        let content_type = reply.content_type();
        let documented = response.get("content").and_then(Value::as_object);
        match documented {
            None if reply.text.is_empty() => Ok(()),
            None => Err("the spec documents no body for this response".into()),
            Some(content) => {
                if !content.contains_key(&content_type) {
                    let known: Vec<&String> = content.keys().collect();
                    return Err(format!("content type {content_type:?} is not among {known:?}"));
                }
                if reply.json.is_null() {
                    return Err("the body is not JSON".into());
                }
                self.validate(
                    &format!(
                        "{response_pointer}/content/{}/schema",
                        pointer_token(&content_type)
                    ),
                    &reply.json,
                )
            }
        }
    }
}
