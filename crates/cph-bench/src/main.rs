//! `cph-bench`: the control plane's benchmarks, each against a baseline measured in the same run
//! on the same machine.
//!
//! 1. ListCloudPhones (`limit=200`) over 100,000 phones, 64 concurrent keep-alive clients: requests
//!    per second and p50/p99 latency, against the same server answering a precomputed body of the
//!    same size on a route that exists only in this binary (the ceiling).
//! 2. batch-restart of 6,000 phones: time to accept, and time until every job is terminal, against
//!    the restart duration of a phone.
//! 3. Resident memory of the process holding 100,000 phones.
//!
//! Both stores are measured: SQLite (a fresh file) and PostgreSQL (a fresh database on
//! `--pg-url`). Run: `cargo run --release -p cph-bench -- --help`.

use anyhow::Context;
use clap::Parser;
use cph_bench::{client, proc, seed};
use cph_domain::{Clock, SystemClock};
use cph_runtime::virtual_host::{Durations, VirtualHostAgent};
use cph_service::{Service, ServiceConfig};
use sqlx::{AssertSqlSafe, Connection};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Control-plane benchmarks against same-run baselines")]
struct Args {
    /// Phones to seed (servers of 60).
    #[arg(long, default_value_t = 100_000)]
    phones: usize,
    /// Load duration per measurement, seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Phones in the batch-restart measurement.
    #[arg(long, default_value_t = 6000)]
    restart_phones: usize,
    /// Stores to measure: sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    store: String,
    /// PostgreSQL server for the postgres run (a fresh database is created and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
}

/// Resident memory of this process, MiB (0 if unreadable).
fn rss_mb() -> f64 {
    proc::status_kib("self", "VmRSS")
        .map(|kb| kb as f64 / 1024.0)
        .unwrap_or(0.0)
}

struct Env {
    url: String,
    cleanup: Option<(String, String)>,
    dir: Option<std::path::PathBuf>,
}

async fn fresh_store(kind: &str, pg_url: &str) -> anyhow::Result<Env> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    if kind == "sqlite" {
        let dir = std::env::temp_dir().join(format!("cph-bench-{tag}"));
        std::fs::create_dir_all(&dir)?;
        Ok(Env {
            url: format!("sqlite://{}", dir.join("bench.db").display()),
            cleanup: None,
            dir: Some(dir),
        })
    } else {
        sqlx::any::install_default_drivers();
        let name = format!("cph_bench_{tag}");
        let mut c = sqlx::AnyConnection::connect(pg_url)
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await?;
        let base = pg_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or_default();
        Ok(Env {
            url: format!("{base}/{name}"),
            cleanup: Some((pg_url.to_string(), name)),
            dir: None,
        })
    }
}

async fn drop_store(env: Env) {
    if let Some((admin, name)) = env.cleanup
        && let Ok(mut c) = sqlx::AnyConnection::connect(&admin).await
    {
        let _ = sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await;
    }
    if let Some(d) = env.dir {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stores: Vec<&str> = match args.store.as_str() {
        "both" => vec!["sqlite", "postgres"],
        s => vec![s],
    };
    let mut rows = Vec::new();
    for kind in stores {
        rows.push(
            run_one(kind, &args)
                .await
                .with_context(|| format!("{kind} run"))?,
        );
    }
    println!();
    println!(
        "| store | ListCloudPhones req/s | p50 ms | p99 ms | ceiling req/s | ratio | batch-restart {} accept ms | all terminal s (restart {} s) | RSS MB ({} phones) |",
        args.restart_phones, 1.5, args.phones
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

async fn run_one(kind: &str, args: &Args) -> anyhow::Result<String> {
    let env = fresh_store(kind, &args.pg_url).await?;
    let store = cph_store::Store::open(&env.url).await?;
    let durations = Durations {
        boot: Duration::from_millis(1000),
        stop: Duration::from_millis(500),
        reset: Duration::from_millis(1000),
    };
    let agent = Arc::new(VirtualHostAgent::new("bench", durations));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let service = Service::new(
        store.clone(),
        cph_catalog::Catalog::builtin(),
        clock.clone(),
        ServiceConfig {
            token_key: b"bench-token-key-bench-token-key!".to_vec(),
            ..ServiceConfig::default()
        },
        agent,
    );
    let boot = service
        .bootstrap(&cph_service::iam::BootstrapRequest {
            domain_name: "bench".into(),
            user_name: "admin".into(),
            access_key: None,
            secret_key: None,
        })
        .await?;
    eprintln!("[{kind}] seeding {} phones…", args.phones);
    let t = Instant::now();
    let server_ids = seed::phones(&service, &boot.project_id, args.phones).await?;
    eprintln!(
        "[{kind}] seeded {} servers in {:.1}s",
        server_ids.len(),
        t.elapsed().as_secs_f64()
    );
    service.recover().await?;
    let engine = service.start_engine();
    let token = service
        .issue_token(
            "bench",
            "admin",
            boot.password.as_deref().unwrap_or_default(),
            Some(&boot.project_id),
            None,
        )
        .await?
        .token;

    let app = cph_api::router(cph_api::AppState {
        service: service.clone(),
        clock,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let list_path = format!(
        "/v1/{}/cloud-phone/phones?limit=200&offset=0",
        boot.project_id
    );
    // The ceiling answers a precomputed body of the same size as a real ListCloudPhones page.
    let ceiling_body: Arc<std::sync::OnceLock<&'static [u8]>> = Arc::default();
    let cb = ceiling_body.clone();
    let app = app.route(
        "/bench/ceiling",
        axum::routing::get(move || {
            let body: &'static [u8] = cb.get().copied().unwrap_or_default();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let sample = client::one(addr, "GET", &list_path, &token, None).await?;
    anyhow::ensure!(
        sample.0 == 200,
        "ListCloudPhones answered {}: {}",
        sample.0,
        String::from_utf8_lossy(&sample.1)
    );
    let body: &'static [u8] = Box::leak(sample.1.clone().into_boxed_slice());
    let _ = ceiling_body.set(body);
    let rss = rss_mb();
    eprintln!(
        "[{kind}] RSS with {} phones: {rss:.0} MB; page body {} bytes",
        args.phones,
        body.len()
    );

    let secs = Duration::from_secs(args.seconds);
    eprintln!(
        "[{kind}] ceiling: {} clients for {}s…",
        args.clients, args.seconds
    );
    let ceiling = client::load(addr, "/bench/ceiling", &token, args.clients, secs).await?;
    eprintln!(
        "[{kind}] ceiling {:.0} req/s p50 {:.2} ms p99 {:.2} ms",
        ceiling.rps, ceiling.p50_ms, ceiling.p99_ms
    );
    // Spread the load over pages so the store does real work, as clients paging through would.
    eprintln!(
        "[{kind}] ListCloudPhones: {} clients for {}s…",
        args.clients, args.seconds
    );
    let list = client::load(addr, &list_path, &token, args.clients, secs).await?;
    eprintln!(
        "[{kind}] list {:.0} req/s p50 {:.2} ms p99 {:.2} ms",
        list.rps, list.p50_ms, list.p99_ms
    );

    // Batch restart of N phones through the API.
    let n = args.restart_phones.min(args.phones);
    let mut c = store.read().await?;
    let mut ids = Vec::with_capacity(n);
    for sid in &server_ids {
        for p in cph_store::phones::of_server(&mut c, sid).await? {
            ids.push(p.phone_id);
            if ids.len() == n {
                break;
            }
        }
        if ids.len() == n {
            break;
        }
    }
    drop(c);
    let req_body = serde_json::json!({"phones": ids.iter().map(|id| serde_json::json!({"phone_id": id})).collect::<Vec<_>>()}).to_string();
    let path = format!("/v1/{}/cloud-phone/phones/batch-restart", boot.project_id);
    let t0 = Instant::now();
    let (status, resp) =
        client::one(addr, "POST", &path, &token, Some(req_body.as_bytes())).await?;
    let accept_ms = t0.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        status == 200,
        "batch-restart answered {status}: {}",
        String::from_utf8_lossy(&resp)
    );
    let v: serde_json::Value = serde_json::from_slice(&resp)?;
    let request_id = v["request_id"].as_str().unwrap_or_default().to_string();
    let all_done = loop {
        let mut c = store.read().await?;
        let (done, total) =
            cph_store::jobs::progress(&mut c, &boot.project_id, &request_id).await?;
        if total as usize == n && done == total {
            break t0.elapsed().as_secs_f64();
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(120),
            "batch restart did not finish: {done}/{total}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "[{kind}] batch-restart of {n}: accepted in {accept_ms:.0} ms, all terminal after {all_done:.2} s"
    );

    server.abort();
    engine.shutdown().await;
    store.close().await;
    drop_store(env).await;
    Ok(format!(
        "| {kind} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0}% | {:.0} | {:.2} | {:.0} |",
        list.rps,
        list.p50_ms,
        list.p99_ms,
        ceiling.rps,
        100.0 * list.rps / ceiling.rps.max(1.0),
        accept_ms,
        all_done,
        rss
    ))
}
