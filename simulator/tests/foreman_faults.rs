//! The fake Foreman's fault schedule (issue #5): 5xx bursts, 400 rejects, 413 above a size,
//! slow replies that still commit, a revoked key, and timed schedules, over real HTTPS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::{http_client, https_client, metrics_body};
use pickaxe_sim::{start_foreman, Foreman, ForemanConfig, ForemanFault};
use reqwest::StatusCode;
use serde_json::{json, Value};

const TS: &str = "2026-12-03T07:19:27.753-0500";
const PATH: &str = "/api/metrics/1/6b3615b4-0000-4000-8000-000000000001";

async fn foreman() -> (Foreman, reqwest::Client) {
    let f = start_foreman(ForemanConfig::default()).await.unwrap();
    let c = https_client(f.ca_pem());
    (f, c)
}

fn body(ts: &str) -> String {
    metrics_body(ts, &[("127.1.0.1", 4028, "1000.5")])
}

async fn put(
    f: &Foreman,
    c: &reqwest::Client,
    key: &str,
    body: Vec<u8>,
    gzip: bool,
    idem: Option<&str>,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut r = c
        .put(format!("{}{PATH}", f.url()))
        .header("Authorization", format!("Token {key}"))
        .header("Content-Type", "application/json")
        .body(body);
    if gzip {
        r = r.header("Content-Encoding", "gzip");
    }
    if let Some(k) = idem {
        r = r.header("Idempotency-Key", k);
    }
    r.send().await
}

async fn admin(f: &Foreman, path: &str, body: Value) -> StatusCode {
    http_client()
        .post(format!("{}{path}", f.admin_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn summary(f: &Foreman) -> Value {
    http_client()
        .get(format!("{}/admin/summary", f.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn server_error_burst_then_normal() {
    let (f, c) = foreman().await;
    let fault = json!({"kind": "server_error", "count": 2, "status": 502});
    assert_eq!(admin(&f, "/admin/faults", fault).await, StatusCode::OK);
    for _ in 0..2 {
        let r = put(&f, &c, "test-key", body(TS).into(), false, None)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].is_string());
    }
    let r = put(&f, &c, "test-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let s = summary(&f).await;
    assert_eq!(s["faults"]["server_error"], 2);
    assert_eq!(s["batches_received"], 1);
    // Defaults to 500.
    f.inject(serde_json::from_value(json!({"kind": "server_error", "count": 1})).unwrap());
    let r = put(&f, &c, "test-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    f.shutdown().await;
}

#[tokio::test]
async fn reject_answers_400_and_records_nothing() {
    let (f, c) = foreman().await;
    let fault = json!({"kind": "reject", "count": 1, "message": "poison batch"});
    assert_eq!(admin(&f, "/admin/faults", fault).await, StatusCode::OK);
    let r = put(&f, &c, "test-key", body(TS).into(), false, Some("k1"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["message"], "poison batch");
    // Not recorded, so the same key is a first receipt afterwards.
    let r = put(&f, &c, "test-key", body(TS).into(), false, Some("k1"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let s = f.summary();
    assert_eq!(
        (s.faults.reject, s.batches_received, s.batches_duplicate),
        (1, 1, 0)
    );
    assert_eq!(f.samples()[0].samples[0].count, 1);
    f.shutdown().await;
}

#[tokio::test]
async fn max_body_measured_as_sent_and_gzip_counted() {
    let (f, c) = foreman().await;
    let big = metrics_body(
        TS,
        &(1..=40)
            .map(|i| ("127.1.0.1", 4000 + i as u16, "1000"))
            .collect::<Vec<_>>(),
    );
    assert!(big.len() > 4000);
    assert_eq!(
        admin(
            &f,
            "/admin/faults",
            json!({"kind": "max_body", "bytes": 2000})
        )
        .await,
        StatusCode::OK
    );
    let r = put(&f, &c, "test-key", big.clone().into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.json::<Value>().await.unwrap()["message"].is_string());
    // The same body gzip'd is under the limit as sent.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(big.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 2000);
    let r = put(&f, &c, "test-key", gz, true, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = put(&f, &c, "test-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let s = f.summary();
    assert_eq!(
        (s.faults.max_body, s.metrics_gzip, s.batches_received),
        (1, 1, 2)
    );
    assert_eq!(f.active_faults().max_body, Some(2000));
    f.clear_faults();
    assert_eq!(f.active_faults().max_body, None);
    f.shutdown().await;
}

#[tokio::test]
async fn slow_commit_first_then_retry_is_deduplicated() {
    let (f, _) = foreman().await;
    let impatient = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(f.ca_pem().as_bytes()).unwrap()])
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let fault = json!({"kind": "slow", "count": 1, "seconds": 2.0, "commit_first": true});
    assert_eq!(admin(&f, "/admin/faults", fault).await, StatusCode::OK);
    let first = put(
        &f,
        &impatient,
        "test-key",
        body(TS).into(),
        false,
        Some("batch-7"),
    )
    .await;
    assert!(first.unwrap_err().is_timeout(), "the client gave up");
    // Committed although the client saw no answer; the retry under the same key is a duplicate.
    assert_eq!(f.summary().batches_received, 1);
    let retry = put(
        &f,
        &impatient,
        "test-key",
        body(TS).into(),
        false,
        Some("batch-7"),
    )
    .await
    .unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    let s = f.summary();
    assert_eq!((s.batches_received, s.batches_duplicate), (1, 1));
    assert_eq!((s.samples_received, s.faults.slow_commit), (1, 1));
    assert_eq!(f.samples()[0].samples[0].count, 1);
    f.shutdown().await;
}

#[tokio::test]
async fn revoked_key_until_a_new_one_is_set() {
    let (f, c) = foreman().await;
    assert_eq!(
        admin(&f, "/admin/faults", json!({"kind": "revoke_key"})).await,
        StatusCode::OK
    );
    let r = put(&f, &c, "test-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let cfg = c
        .get(format!("{}/api/pickaxe/x/appConfig", f.url()))
        .header("Authorization", "Token test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(cfg.status(), StatusCode::UNAUTHORIZED);
    assert!(f.active_faults().key_revoked);
    let set = json!({"kind": "set_key", "key": "rotated-key"});
    assert_eq!(admin(&f, "/admin/faults", set).await, StatusCode::OK);
    assert_eq!(f.api_key(), "rotated-key");
    let r = put(&f, &c, "test-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = put(&f, &c, "rotated-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(f.summary().faults.revoked, 2);
    // Clearing the faults also ends a revocation.
    f.inject(ForemanFault::RevokeKey);
    f.clear_faults();
    let r = put(&f, &c, "rotated-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    f.shutdown().await;
}

#[tokio::test]
async fn a_three_step_schedule() {
    let (f, c) = foreman().await;
    let steps = json!([
        {"at_secs": 0.0, "fault": {"kind": "server_error", "count": 1000, "status": 500}},
        {"at_secs": 0.8, "fault": {"kind": "outage", "mode": "503"}},
        {"at_secs": 1.6, "clear": true}
    ]);
    assert_eq!(admin(&f, "/admin/schedule", steps).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = put(&f, &c, "test-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let r = put(&f, &c, "test-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let r = put(&f, &c, "test-key", body(TS).into(), false, None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let st: Value = http_client()
        .get(format!("{}/admin/schedule", f.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["applied"], 3);
    assert_eq!(st["entries"].as_array().unwrap().len(), 3);
    let s = f.summary();
    assert_eq!((s.faults.server_error, s.faults.outage_503), (1, 1));
    // A step needs a fault or a clear, not both.
    let bad = json!([{"at_secs": 0, "clear": true, "fault": {"kind": "revoke_key"}}]);
    assert_eq!(
        admin(&f, "/admin/schedule", bad).await,
        StatusCode::BAD_REQUEST
    );
    f.shutdown().await;
}

#[tokio::test]
async fn app_config_asks_for_compressed_metrics() {
    let (f, c) = foreman().await;
    let v: Value = c
        .get(format!("{}/api/pickaxe/x/appConfig", f.url()))
        .header("Authorization", "Token test-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["compressMetrics"], true);
    // Fault shapes round-trip as JSON.
    for j in [
        json!({"kind": "slow", "count": 1, "seconds": 2.0, "commit_first": true}),
        json!({"kind": "slow", "count": 1, "seconds": 2.0}),
        json!({"kind": "max_body", "bytes": 10}),
        json!({"kind": "set_key", "key": "k"}),
    ] {
        let fault: ForemanFault = serde_json::from_value(j.clone()).unwrap();
        assert_eq!(serde_json::to_value(&fault).unwrap(), j);
    }
    f.shutdown().await;
}
