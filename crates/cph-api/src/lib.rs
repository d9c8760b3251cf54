//! The HTTP API: routes, authentication, wire conversion and error rendering.
//!
//! Handlers are thin: parse the wire request (`cph-wire`), call one `cph-service` method, and
//! convert its domain result back to wire types ([`convert`]). All error bodies are rendered in
//! [`error::finalize`].

pub mod auth;
pub mod cache;
pub mod convert;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod ops;
pub mod relay;
pub mod routes;

use axum::Router;
use cph_domain::Clock;
use cph_service::Service;
use std::sync::Arc;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub clock: Arc<dyn Clock>,
}

/// The complete API router (all routes, authentication, error rendering).
pub fn router(state: AppState) -> Router {
    let api = routes::api_routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ));
    Router::new()
        .merge(api)
        .merge(routes::public_routes(&state))
        .fallback(routes::not_found)
        .with_state(state)
        .layer(axum::Extension(Arc::new(cache::PageCache::default())))
        .layer(axum::extract::DefaultBodyLimit::max(auth::MAX_BODY))
        .layer(axum::middleware::from_fn(error::finalize))
}
