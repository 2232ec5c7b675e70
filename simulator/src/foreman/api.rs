//! The Foreman endpoints a pickaxe uses, with Foreman's codes and shapes (protocol §2-§4).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;

use super::metrics;
use super::state::{OutageMode, Shared};

type St = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/ping", get(ping))
        .route("/api/ping/{client_id}", get(ping_client))
        .route(
            "/api/config/{client_id}/{pickaxe_id}/{version}/",
            get(config),
        )
        .route(
            "/api/config/{client_id}/{pickaxe_id}/{version}",
            get(config),
        )
        .route("/api/metrics/{client_id}/{pickaxe_id}", put(put_metrics))
        .route("/api/pickaxe/{pickaxe_id}/appConfig", get(app_config))
        .route("/api/pickaxe/{pickaxe_id}/started", post(started))
        .route("/api/pickaxe/{pickaxe_id}/commands", get(commands))
        .route(
            "/api/pickaxe/{pickaxe_id}/command/{kind}",
            post(command_batch),
        )
        .route("/api/pickaxe/{pickaxe_id}/macs", post(macs))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(metrics::MAX_BODY))
        .layer(middleware::from_fn_with_state(shared.clone(), faults))
        .with_state(shared)
}

fn message(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "message": msg }))).into_response()
}

/// Injected faults, applied before anything else: 503 outage, 5xx burst, 429 rate limit,
/// slow responses.
async fn faults(State(st): St, req: Request, next: Next) -> Response {
    if st.outage() == Some(OutageMode::Unavailable) {
        let mut rec = st.rec();
        rec.summary.requests.faulted += 1;
        rec.summary.faults.outage_503 += 1;
        return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    let (server_error, limited, retry_after, slow) = {
        let mut f = st.fault_counters();
        if f.server_error_left > 0 {
            f.server_error_left -= 1;
            (Some(f.server_error_status), false, None, None)
        } else if f.rate_limit_left > 0 {
            f.rate_limit_left -= 1;
            (None, true, f.retry_after, None)
        } else if f.slow_left > 0 {
            f.slow_left -= 1;
            (None, false, None, Some(f.slow_secs))
        } else {
            (None, false, None, None)
        }
    };
    if let Some(code) = server_error {
        {
            let mut rec = st.rec();
            rec.summary.requests.faulted += 1;
            rec.summary.faults.server_error += 1;
        }
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return message(status, "A server error occurred.");
    }
    if limited {
        {
            let mut rec = st.rec();
            rec.summary.requests.faulted += 1;
            rec.summary.faults.rate_limited += 1;
        }
        let mut r = message(StatusCode::TOO_MANY_REQUESTS, "Request was throttled.");
        if let Some(s) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        return r;
    }
    if let Some(secs) = slow {
        st.rec().summary.faults.slow += 1;
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
    next.run(req).await
}

/// `Authorization: Token <key>` exactly, and (where the path has one) our client id.
/// Returns the 401/403 answer when the request is not allowed.
fn deny(st: &Shared, headers: &HeaderMap, client_id: Option<&str>) -> Option<Response> {
    if st.fault_counters().key_revoked && headers.contains_key(header::AUTHORIZATION) {
        let mut rec = st.rec();
        rec.summary.requests.rejected_auth += 1;
        rec.summary.requests.faulted += 1;
        rec.summary.faults.revoked += 1;
        return Some(message(StatusCode::UNAUTHORIZED, "Invalid token."));
    }
    let expected = format!("Token {}", st.api_key());
    let denied = match headers.get(header::AUTHORIZATION) {
        None => Some(message(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials were not provided.",
        )),
        Some(v) if v.as_bytes() != expected.as_bytes() => {
            Some(message(StatusCode::UNAUTHORIZED, "Invalid token."))
        }
        Some(_) => match client_id {
            Some(c) if c != st.client_id => Some(message(
                StatusCode::FORBIDDEN,
                "You do not have permission to perform this action.",
            )),
            _ => None,
        },
    };
    if denied.is_some() {
        st.rec().summary.requests.rejected_auth += 1;
    }
    denied
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found.")
}

async fn ping(State(st): St) -> Response {
    st.rec().summary.requests.ping += 1;
    Json(json!({"ping": "pong"})).into_response()
}

async fn ping_client(State(st): St, headers: HeaderMap, Path(client_id): Path<String>) -> Response {
    if let Some(r) = deny(&st, &headers, Some(&client_id)) {
        return r;
    }
    st.rec().summary.requests.ping += 1;
    Json(json!({"ping": "pong"})).into_response()
}

async fn config(
    State(st): St,
    headers: HeaderMap,
    Path((client_id, pickaxe_id, version)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = deny(&st, &headers, Some(&client_id)) {
        return r;
    }
    {
        let mut rec = st.rec();
        rec.summary.requests.config += 1;
        let p = rec.pickaxe(&pickaxe_id);
        p.version = Some(version);
        if let Some(h) = q.get("hostname") {
            p.hostname = Some(h.clone());
        }
        if let Some(ip) = q.get("ip") {
            p.ip = Some(ip.clone());
        }
    }
    let miners = st.miners.read().unwrap_or_else(|e| e.into_inner()).clone();
    Json(miners).into_response()
}

async fn put_metrics(
    State(st): St,
    headers: HeaderMap,
    Path((client_id, _pickaxe_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    // A size limit acts before anything else, like a proxy's; measured as sent.
    let limit = st.fault_counters().max_body;
    if let Some(max) = limit.filter(|m| body.len() as u64 > *m) {
        {
            let mut rec = st.rec();
            rec.summary.requests.faulted += 1;
            rec.summary.faults.max_body += 1;
        }
        let msg = format!("Request body of {} bytes exceeds {max} bytes.", body.len());
        return message(StatusCode::PAYLOAD_TOO_LARGE, &msg);
    }
    if let Some(r) = deny(&st, &headers, Some(&client_id)) {
        return r;
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    {
        let mut rec = st.rec();
        rec.summary.requests.metrics += 1;
        if encoding
            .is_some_and(|e| matches!(e.trim().to_ascii_lowercase().as_str(), "gzip" | "x-gzip"))
        {
            rec.summary.metrics_gzip += 1;
        }
    }
    let reject = {
        let mut f = st.fault_counters();
        (f.reject_left > 0).then(|| {
            f.reject_left -= 1;
            f.reject_message.clone()
        })
    };
    if let Some(msg) = reject {
        {
            let mut rec = st.rec();
            rec.summary.requests.faulted += 1;
            rec.summary.faults.reject += 1;
        }
        return message(StatusCode::BAD_REQUEST, &msg);
    }
    let parsed = metrics::decode(encoding, &body).and_then(|b| metrics::validate(&b));
    let samples = match parsed {
        Ok(s) => s,
        Err(msg) => {
            st.rec().summary.requests.bad_request += 1;
            tracing::warn!(%msg, "metrics batch rejected");
            return message(StatusCode::BAD_REQUEST, &msg);
        }
    };
    let poisoned = st.fault_counters().poisoned(&samples);
    if let Some(status) = poisoned {
        {
            let mut rec = st.rec();
            rec.summary.requests.faulted += 1;
            rec.summary.faults.poison += 1;
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return message(status, "Internal error while storing a sample.");
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let accepted = samples.len();
    let answer = {
        let mut rec = st.rec();
        match key.as_deref().and_then(|k| rec.seen_key(k)) {
            Some(n) => n,
            None => {
                rec.record_batch(key.as_deref(), samples, accepted);
                accepted
            }
        }
    };
    // `slow` with `commit_first`: the batch is in, the answer comes late (a client may time
    // out and retry under the same key).
    let late = {
        let mut f = st.fault_counters();
        (f.slow_commit_left > 0).then(|| {
            f.slow_commit_left -= 1;
            f.slow_commit_secs
        })
    };
    if let Some(secs) = late {
        st.rec().summary.faults.slow_commit += 1;
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
    (StatusCode::CREATED, Json(json!({ "accepted": answer }))).into_response()
}

async fn app_config(State(st): St, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&st, &headers, None) {
        return r;
    }
    st.rec().summary.requests.app_config += 1;
    Json(json!({
        "readSocketTimeout": 2,
        "readSocketTimeoutUnits": "SECONDS",
        "writeSocketTimeout": 2,
        "writeSocketTimeoutUnits": "SECONDS",
        "commandCompletionBatchSize": 500,
        "metricsBatchSize": 200,
        "compressMetrics": true
    }))
    .into_response()
}

async fn started(State(st): St, headers: HeaderMap, Path(pickaxe_id): Path<String>) -> Response {
    if let Some(r) = deny(&st, &headers, None) {
        return r;
    }
    {
        let mut rec = st.rec();
        rec.summary.requests.started += 1;
        rec.summary.started += 1;
        rec.pickaxe(&pickaxe_id).started += 1;
    }
    tracing::info!(%pickaxe_id, "pickaxe started");
    Json(json!({"status": "success"})).into_response()
}

/// Commands not started yet, with the poll hint (protocol §2.4).
async fn commands(State(st): St, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&st, &headers, None) {
        return r;
    }
    st.rec().summary.requests.commands += 1;
    let body = st.commands().list();
    Json(body).into_response()
}

/// `POST .../command/start|update|done` batches: `{"success":n}` (protocol §2.5).
async fn command_batch(
    State(st): St,
    headers: HeaderMap,
    Path((_pickaxe_id, kind)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(r) = deny(&st, &headers, None) {
        return r;
    }
    if !matches!(kind.as_str(), "start" | "update" | "done") {
        return message(StatusCode::NOT_FOUND, "Not found.");
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return message(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    match st.commands().apply(&kind, &parsed) {
        Ok(n) => Json(json!({ "success": n })).into_response(),
        Err(msg) => message(StatusCode::BAD_REQUEST, &msg),
    }
}

/// `POST .../macs` `{"updates":[{"ip","apiPort","mac"}]}`, at most 100 per request (§2.7).
async fn macs(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = deny(&st, &headers, None) {
        return r;
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return message(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    let Some(updates) = parsed.get("updates").and_then(|u| u.as_array()) else {
        return message(StatusCode::BAD_REQUEST, "body needs an \"updates\" array");
    };
    if updates.len() > 100 {
        return message(StatusCode::BAD_REQUEST, "at most 100 updates per request");
    }
    st.commands().macs.extend(updates.iter().cloned());
    Json(json!({"status": "success"})).into_response()
}
