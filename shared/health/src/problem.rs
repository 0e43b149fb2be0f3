//! RFC 9457 problem details: the one place a service turns a problem into its HTTP response.
//!
//! Each service keeps its own closed set of problems (its error type); this module only renders
//! them, so every problem+json response carries the same headers.

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem with only the standard members. `type_uri` is a relative reference such as
/// `/problems/<slug>`, or `about:blank` when the status says all there is to say.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    pub status: StatusCode,
    pub type_uri: &'a str,
    pub title: &'a str,
    pub detail: &'a str,
}

/// The body of a [`Problem`]. Members are declared in name order on purpose: these bodies were
/// first built as JSON maps, which serialize sorted, and clients have seen exactly those bytes.
#[derive(Serialize)]
struct Members<'a> {
    detail: &'a str,
    status: u16,
    title: &'a str,
    #[serde(rename = "type")]
    type_uri: &'a str,
}

impl IntoResponse for Problem<'_> {
    fn into_response(self) -> Response {
        let body = Members {
            detail: self.detail,
            status: self.status.as_u16(),
            title: self.title,
            type_uri: self.type_uri,
        };
        respond(self.status, &body)
    }
}

/// Renders any problem body (one with extension members, say): the body as compact JSON, the
/// status, `Content-Type: application/problem+json`, and on 401 a `WWW-Authenticate: Bearer`
/// challenge, since every credential these services accept is a bearer token.
pub fn respond(status: StatusCode, body: &impl Serialize) -> Response {
    let body = match serde_json::to_vec(body) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "problem body cannot be serialized");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = (status, [(CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(response: Response) -> (StatusCode, axum::http::HeaderMap, String) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_problem_keeps_the_member_order_clients_have_always_seen() {
        let problem = Problem {
            status: StatusCode::NOT_FOUND,
            type_uri: "about:blank",
            title: "Unknown region",
            detail: "no region \"mars\" is configured",
        };
        let (status, headers, body) = parts(problem.into_response()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[CONTENT_TYPE], PROBLEM_JSON);
        assert!(headers.get(WWW_AUTHENTICATE).is_none());
        assert_eq!(
            body,
            r#"{"detail":"no region \"mars\" is configured","status":404,"title":"Unknown region","type":"about:blank"}"#
        );
    }

    #[tokio::test]
    async fn an_unauthorized_problem_carries_a_bearer_challenge() {
        let problem = Problem {
            status: StatusCode::UNAUTHORIZED,
            type_uri: "/problems/unauthorized",
            title: "unauthorized",
            detail: "the operator token is required",
        };
        let (status, headers, _) = parts(problem.into_response()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(headers[WWW_AUTHENTICATE], "Bearer");
    }

    #[tokio::test]
    async fn a_body_with_extension_members_is_rendered_as_its_own_fields_say() {
        #[derive(Serialize)]
        struct WithErrors {
            #[serde(rename = "type")]
            kind: &'static str,
            status: u16,
            errors: Vec<&'static str>,
        }
        let body = WithErrors {
            kind: "/problems/validation",
            status: 422,
            errors: vec!["/items/0/sku"],
        };
        let (status, headers, text) = parts(respond(StatusCode::UNPROCESSABLE_ENTITY, &body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(headers[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(
            text,
            r#"{"type":"/problems/validation","status":422,"errors":["/items/0/sku"]}"#
        );
    }
}
