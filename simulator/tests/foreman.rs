//! Fake Foreman over HTTPS (trusting only its generated CA) and its admin API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::{http_client, https_client, metrics_body};
use pickaxe_sim::{
    start_foreman, Foreman, ForemanConfig, ForemanFault, MinerConfigEntry, OutageMode,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn foreman() -> (Foreman, reqwest::Client) {
    let f = start_foreman(ForemanConfig::default()).await.unwrap();
    let pem = std::fs::read_to_string(f.ca_path()).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let c = https_client(&pem);
    (f, c)
}

const TS: &str = "2026-12-03T07:19:27.753-0500";

async fn put_metrics(
    f: &Foreman,
    c: &reqwest::Client,
    body: String,
    key: Option<&str>,
) -> reqwest::Response {
    let mut r = c
        .put(format!(
            "{}/api/metrics/1/6b3615b4-0000-4000-8000-000000000001",
            f.url()
        ))
        .header("Authorization", "Token test-key")
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn auth_is_enforced() {
    let (f, c) = foreman().await;
    let url = format!("{}/api/pickaxe/abc/appConfig", f.url());
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].is_string());
    let r = c
        .get(&url)
        .header("Authorization", "Token nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(&url)
        .header("Authorization", "Bearer test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(&url)
        .header("Authorization", "Token test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"readSocketTimeout":2,"readSocketTimeoutUnits":"SECONDS","writeSocketTimeout":2,
               "writeSocketTimeoutUnits":"SECONDS","commandCompletionBatchSize":500,"metricsBatchSize":200,
               "compressMetrics":true})
    );
    // A client id that is not ours: 403.
    let r = c
        .get(format!("{}/api/ping/2", f.url()))
        .header("Authorization", "Token test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .get(format!("{}/api/ping/1", f.url()))
        .header("Authorization", "Token test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ping":"pong"}));
    // Ping without auth.
    let r = c.get(format!("{}/api/ping", f.url())).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ping":"pong"}));
    let s = f.summary();
    assert_eq!(s.requests.rejected_auth, 4);
    assert_eq!(s.requests.app_config, 1);
    assert_eq!(s.requests.ping, 2);
    f.shutdown().await;
}

#[tokio::test]
async fn only_the_generated_ca_is_trusted() {
    let (f, _) = foreman().await;
    let (other, _) = foreman().await;
    // A client trusting another throwaway CA must fail the handshake.
    let wrong = https_client(other.ca_pem());
    let e = wrong
        .get(format!("{}/api/ping", f.url()))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect() || e.is_request(), "{e:?}");
    let right = https_client(f.ca_pem());
    assert!(right
        .get(format!("{}/api/ping", f.url()))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    // localhost is in the certificate too.
    let url = f.url().replace("127.0.0.1", "localhost");
    assert!(right
        .get(format!("{url}/api/ping"))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    f.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn metrics_put_is_201_and_recorded() {
    let (f, c) = foreman().await;
    let body = metrics_body(
        TS,
        &[
            ("127.1.0.1", 4028, "110566890000000.0000000000"),
            ("127.1.0.2", 4028, "1"),
        ],
    );
    let r = put_metrics(&f, &c, body, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"accepted": 2}));

    // gzip body
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(
        metrics_body(
            "2026-12-03T12:20:27.753+0000",
            &[("127.1.0.1", 4028, "2.5")],
        )
        .as_bytes(),
    )
    .unwrap();
    let r = c
        .put(format!("{}/api/metrics/1/p", f.url()))
        .header("Authorization", "Token test-key")
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Bad bodies: 400 with a message.
    for bad in [
        metrics_body(TS, &[]),
        metrics_body("2026-12-03T07:19:27Z", &[("127.1.0.1", 4028, "1")]),
        metrics_body(TS, &[("127.1.0.1", 4028, "1e9")]),
        "{".to_string(),
    ] {
        let r = put_metrics(&f, &c, bad, None).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.json::<Value>().await.unwrap()["message"].is_string());
    }
    let s = f.summary();
    assert_eq!(s.batches_received, 2);
    assert_eq!(s.samples_received, 3);
    assert_eq!(s.requests.metrics, 6);
    assert_eq!(s.requests.bad_request, 4);

    let samples = f.samples();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].ip, "127.1.0.1");
    assert_eq!(samples[0].samples.len(), 2);
    assert_eq!(samples[0].samples[0].timestamp, TS);
    assert_eq!(
        samples[0].samples[0].hash_rate,
        "110566890000000.0000000000"
    );
    assert_eq!(samples[0].samples[0].count, 1);

    // The same through the admin API.
    let a = http_client();
    let v: Value = a
        .get(format!("{}/admin/samples", f.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["miners"][0]["ip"], "127.1.0.1");
    assert_eq!(v["miners"][0]["port"], 4028);
    assert_eq!(v["miners"][0]["samples"][0]["timestamp"], TS);
    assert_eq!(v["miners"][0]["samples"][0]["count"], 1);
    assert_eq!(
        v["miners"][0]["samples"][0]["hashRate"],
        "110566890000000.0000000000"
    );
    f.shutdown().await;
}

#[tokio::test]
async fn duplicate_idempotency_key_is_counted_not_recorded() {
    let (f, c) = foreman().await;
    let body = metrics_body(TS, &[("127.1.0.1", 4028, "5"), ("127.1.0.2", 4028, "6")]);
    for _ in 0..2 {
        let r = put_metrics(&f, &c, body.clone(), Some("batch-1")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"accepted": 2}));
    }
    let s = f.summary();
    assert_eq!((s.batches_received, s.batches_duplicate), (1, 1));
    assert_eq!((s.samples_received, s.samples_duplicate), (2, 0));
    assert!(f.samples().iter().all(|m| m.samples[0].count == 1));

    // The same sample in a different batch (new key) is a duplicate sample.
    let r = put_metrics(
        &f,
        &c,
        metrics_body(TS, &[("127.1.0.1", 4028, "5")]),
        Some("batch-2"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let s = f.summary();
    assert_eq!((s.batches_received, s.batches_duplicate), (2, 1));
    assert_eq!((s.samples_received, s.samples_duplicate), (2, 1));
    assert_eq!(f.samples()[0].samples[0].count, 2);

    // Admin summary has the exact shape.
    let v: Value = http_client()
        .get(format!("{}/admin/summary", f.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["batches_received"], 2);
    assert_eq!(v["batches_duplicate"], 1);
    assert_eq!(v["samples_received"], 2);
    assert_eq!(v["samples_duplicate"], 1);
    assert_eq!(v["started"], 0);
    for k in [
        "metrics",
        "config",
        "app_config",
        "started",
        "ping",
        "rejected_auth",
        "faulted",
    ] {
        assert!(v["requests"][k].is_u64(), "requests.{k}");
    }
    assert_eq!(v["requests"]["metrics"], 3);
    f.shutdown().await;
}

#[tokio::test]
async fn outage_refuse_then_recover() {
    let (f, c) = foreman().await;
    let ping = format!("{}/api/ping", f.url());
    assert!(c.get(&ping).send().await.unwrap().status().is_success());

    f.inject(ForemanFault::Outage {
        mode: OutageMode::Refuse,
        seconds: None,
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = tokio::net::TcpStream::connect(f.addr()).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let e = c.get(&ping).send().await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    // The admin API stays up and clears it.
    let a = http_client();
    let r = a
        .delete(format!("{}/admin/faults", f.admin_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(c.get(&ping).send().await.unwrap().status().is_success());

    // A timed outage through the admin API ends by itself, on the same port.
    let r = a
        .post(format!("{}/admin/faults", f.admin_url()))
        .json(&json!({"kind":"outage","mode":"refuse","seconds":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(c.get(&ping).send().await.is_err());
    let t0 = Instant::now();
    loop {
        if let Ok(r) = c.get(&ping).send().await {
            assert!(r.status().is_success());
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "outage did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f.shutdown().await;
}

#[tokio::test]
async fn outage_503_rate_limit_and_slow() {
    let (f, c) = foreman().await;
    let url = format!("{}/api/pickaxe/x/appConfig", f.url());
    let get = || c.get(&url).header("Authorization", "Token test-key").send();

    f.inject(ForemanFault::Outage {
        mode: OutageMode::Unavailable,
        seconds: Some(30.0),
    });
    let r = get().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message":"Service Unavailable"})
    );
    f.clear_faults();
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);

    let a = http_client();
    let r = a
        .post(format!("{}/admin/faults", f.admin_url()))
        .json(&json!({"kind":"rate_limit","count":2,"retry_after":7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for _ in 0..2 {
        let r = get().await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "7");
    }
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);

    f.inject(ForemanFault::Slow {
        count: 1,
        seconds: 0.5,
    });
    let t0 = Instant::now();
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    assert!(t0.elapsed() >= Duration::from_millis(500));
    let t0 = Instant::now();
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    assert!(t0.elapsed() < Duration::from_millis(500));

    let s = f.summary();
    assert_eq!(s.requests.faulted, 3);
    // Bad fault bodies are rejected.
    let r = a
        .post(format!("{}/admin/faults", f.admin_url()))
        .json(&json!({"kind":"meltdown"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    f.shutdown().await;
}

#[tokio::test]
async fn config_started_and_assigned_miners() {
    let (f, c) = foreman().await;
    let a = http_client();
    let list = json!([{"apiIp":"127.1.0.1","apiPort":4028,"apiType":19,"params":[]},
                      {"apiIp":"127.1.0.2","apiPort":4028,"apiType":19,"params":[]}]);
    let r = a
        .put(format!("{}/admin/miners", f.admin_url()))
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = a
        .get(format!("{}/admin/miners", f.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, list);

    let r = c
        .get(format!(
            "{}/api/config/1/pk-1/0.1.0/?hostname=site-a&ip=127.0.0.1",
            f.url()
        ))
        .header("Authorization", "Token test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), list);
    let r = c
        .get(format!("{}/api/config/9/pk-1/0.1.0/", f.url()))
        .header("Authorization", "Token test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = c
        .post(format!("{}/api/pickaxe/pk-1/started", f.url()))
        .header("Authorization", "Token test-key")
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status":"success"})
    );
    let s = f.summary();
    assert_eq!(
        (s.started, s.requests.started, s.requests.config),
        (1, 1, 1)
    );
    let p = &f.pickaxes()[0];
    assert_eq!(p.id, "pk-1");
    assert_eq!(p.hostname.as_deref(), Some("site-a"));
    assert_eq!(p.started, 1);

    f.set_miners(vec![MinerConfigEntry::antminer(
        "127.1.0.9:4028".parse().unwrap(),
    )]);
    assert_eq!(f.miners()[0].api_ip, "127.1.0.9");
    let r = c
        .get(format!("{}/api/nope", f.url()))
        .header("Authorization", "Token test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    f.shutdown().await;
}
