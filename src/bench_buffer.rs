//! `pickaxe bench --buffer`: the store-and-forward path alone. Fills the buffer with cycles
//! of realistic samples as an outage would (encode + one transaction per cycle), then drains
//! it to the fake Foreman on loopback over HTTPS with the real uploader, and reports both
//! rates and the size on disk.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::foreman::metrics::Sample;
use crate::foreman::ForemanClient;
use crate::heartbeat::Heartbeat;
use crate::model::{Board, Family, Fan, FanUnit, Identity, MinerStats, Pool};
use crate::store::{Store, StoreOptions};
use crate::uplink::{encode_cycle, UplinkState, Uploader};

/// A sample with the fields a real S19 reports, varied per miner so gzip sees real entropy.
pub(crate) fn sample(i: usize, cycle: usize) -> Sample {
    let jitter = ((i * 7919 + cycle * 104_729) % 1000) as f64 / 1000.0;
    let boards = (0..3)
        .map(|b| Board {
            slot: b,
            hashrate: Some(3.3e13 + jitter * 1e12 + f64::from(b) * 1e11),
            chips: Some(76),
            board_temps: vec![55.0 + jitter * 5.0, 58.0],
            chip_temps: vec![70.0 + jitter * 6.0, 73.0],
            ..Default::default()
        })
        .collect();
    Sample {
        ip: format!("127.1.{}.{}", i / 250, i % 250 + 1),
        port: 4028,
        stats: MinerStats {
            family: Some(Family::Antminer),
            identity: Identity {
                make: Some("Antminer".into()),
                model: Some("S19 Pro".into()),
                ..Default::default()
            },
            hashrate: Some(1.0e14 + jitter * 3e12),
            hashrate_avg: Some(1.01e14),
            boards,
            fans: (0..4)
                .map(|f| Fan {
                    slot: f,
                    speed: 5400.0 + jitter * 300.0 + f64::from(f) * 10.0,
                    unit: FanUnit::Rpm,
                })
                .collect(),
            uptime: Some(86_400 + (cycle * 60) as u64),
            pools: vec![Pool {
                url: "stratum+tcp://pool.example:3333".into(),
                user: format!("acct.w{i}"),
                alive: true,
                enabled: true,
                accepted: 10_000 + (cycle * 3 + i) as u64,
                rejected: 12,
                ..Default::default()
            }],
            ..Default::default()
        },
    }
}

pub async fn run(miners: usize, cycles: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("buffer.db");
    let store = Store::open_with(&db, StoreOptions::default()).await?;
    let start_ms = chrono::Utc::now().timestamp_millis() - (cycles as i64) * 60_000;

    // Fill: what a `cycles`-minute outage leaves behind.
    let (mut encode, mut write) = (Duration::ZERO, Duration::ZERO);
    for c in 0..cycles {
        let samples: Vec<Sample> = (0..miners).map(|i| sample(i, c)).collect();
        let taken_at = chrono::DateTime::from_timestamp_millis(start_ms + c as i64 * 60_000)
            .unwrap_or_else(chrono::Utc::now);
        let t = Instant::now();
        let batches = encode_cycle(taken_at, &samples, 200)?;
        encode += t.elapsed();
        let t = Instant::now();
        store
            .write_cycle(taken_at.timestamp_millis(), &batches, &[])
            .await?;
        write += t.elapsed();
    }
    let total = (miners * cycles) as f64;
    let backlog = store.backlog().await?;
    let file = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "fill:  {} samples in {} cycles: encode+gzip {:.0} samples/s, commit {:.0} samples/s ({:.1} ms per {miners}-miner cycle), {:.0} B/sample buffered, file {} MB",
        total,
        cycles,
        total / encode.as_secs_f64(),
        total / write.as_secs_f64(),
        write.as_secs_f64() * 1000.0 / cycles as f64,
        backlog.bytes as f64 / total,
        file / (1 << 20)
    );

    // Drain to the fake Foreman over HTTPS, unpaced, with the real uploader.
    let foreman = pickaxe_sim::start_foreman(pickaxe_sim::ForemanConfig {
        ca_out: dir.path().join("ca.pem"),
        ..Default::default()
    })
    .await?;
    let config = Config::parse(&format!(
        "[foreman]\nbase_url = \"{}\"\napi_key = \"{}\"\nclient_id = \"{}\"\nca_file = \"{}\"\n[store]\npath = \"{}\"\n",
        foreman.url(),
        foreman.api_key(),
        foreman.client_id(),
        foreman.ca_path().display(),
        db.display()
    ))?;
    let client = ForemanClient::new(&config, "00000000-0000-4000-8000-000000000000")?;
    let mut upload = config.upload.clone();
    upload.backlog_rate = 1e6;
    let (_live_tx, live_rx) = watch::channel(None);
    let (state_tx, _state_rx) = watch::channel(UplinkState::Starting);
    let stop = CancellationToken::new();
    let uploader = Uploader {
        store: store.clone(),
        client,
        config: upload,
        live_cycle: live_rx,
        wake: Arc::new(Notify::new()),
        state: state_tx,
        compress: Arc::new(AtomicBool::new(true)),
        heartbeat: Heartbeat::new("uploader", Duration::from_secs(60)),
        request_timeout: Duration::from_secs(30),
    };
    let task = tokio::spawn(uploader.run(stop.clone()));
    let t = Instant::now();
    while store.backlog().await?.batches > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain = t.elapsed();
    stop.cancel();
    let _ = task.await;
    let received = foreman.summary().samples_received;
    println!(
        "drain: {received} samples to the fake Foreman (HTTPS, gzip, 200 per request) in {:.2} s: {:.0} samples/s",
        drain.as_secs_f64(),
        received as f64 / drain.as_secs_f64()
    );
    foreman.shutdown().await;
    store.close().await;
    if received as f64 != total {
        anyhow::bail!("the fake Foreman received {received} of {total} samples");
    }
    Ok(())
}
