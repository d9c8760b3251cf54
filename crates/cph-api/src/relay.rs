//! The connect relay's listener: `GET /v1/connect?phone_id=..&session_id=..&timestamp=..&ticket=..`
//! upgraded to a WebSocket that carries raw ADB bytes in binary messages (the framing of
//! websockify and browser WebADB clients).
//!
//! The ticket is checked by [`cph_service::Service::open_connect`] before the upgrade: a
//! refusal answers `401`/`403`/`502`/`503` with a `{error_code, error_msg}` body and no upgrade.
//! A request without WebSocket upgrade headers is refused before anything is checked.
//! The listener is bounded: one request per connection (no keep-alive), a deadline for the
//! request head, a cap on connections waiting for their upgrade, and WebSocket messages no
//! larger than one ADB packet.

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use cph_service::Service;
use cph_service::connect::{ConnectQuery, MAX_MESSAGE, RELAY_PATH};
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Connections accepted at once that have not been upgraded yet; more wait in the backlog.
const MAX_PENDING: usize = 256;
/// Longest time for a client to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time for a request before its upgrade (verification included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy)]
struct Peer(SocketAddr);

#[derive(serde::Deserialize)]
struct RawQuery {
    phone_id: Option<String>,
    session_id: Option<String>,
    timestamp: Option<String>,
    ticket: Option<String>,
}

/// The relay's routes.
pub fn relay_router(service: Service) -> Router {
    Router::new()
        .route(RELAY_PATH, get(connect))
        .with_state(service)
}

fn refuse(status: u16, code: &str, msg: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    (
        status,
        axum::Json(serde_json::json!({"error_code": code, "error_msg": msg})),
    )
        .into_response()
}

async fn connect(
    State(service): State<Service>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    query: Result<Query<RawQuery>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let q = match query {
        Ok(Query(q)) => ConnectQuery {
            phone_id: q.phone_id,
            session_id: q.session_id,
            timestamp: q.timestamp,
            ticket: q.ticket,
        },
        Err(_) => ConnectQuery::default(),
    };
    let session = match service.open_connect(&q, peer).await {
        Ok(s) => s,
        Err(r) => return refuse(r.status, r.code, &r.message),
    };
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let (tx, rx) = socket.split();
            let rx = rx
                .filter_map(|m| async move {
                    match m {
                        Ok(Message::Binary(b)) => Some(Ok(b)),
                        Ok(Message::Text(_)) => Some(Err(std::io::Error::other(
                            "text messages carry no ADB data",
                        ))),
                        Ok(_) => None,
                        Err(e) => Some(Err(std::io::Error::other(e))),
                    }
                })
                .boxed();
            let tx = tx.with(|b: Bytes| async move { Ok::<_, axum::Error>(Message::Binary(b)) });
            session.run(rx, Box::pin(tx)).await;
        })
}

/// Serves the relay on `listener` until `shutdown` is cancelled.
pub async fn serve_relay(
    listener: TcpListener,
    service: Service,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = relay_router(service).layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        REQUEST_TIMEOUT,
    ));
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            p = pending.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "connect relay accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = router.clone().layer(axum::Extension(Peer(peer)));
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .max_buf_size(64 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
            drop(permit);
        });
    }
}
