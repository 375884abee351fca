//! The web face: HTTP/1.1 with hyper (as `gateway/src/metrics/http.rs`),
//! two routes: `/` the page (one file, embedded, no external asset) and
//! `/api/fleet` the snapshot as JSON, which the page polls every second.
//! Polling rather than Server-Sent Events: one request a second per open
//! page is nothing on a loopback, and a page left open across a restart of
//! the view simply carries on. No TLS, no authentication: bind it to
//! loopback (the default everywhere in the docs).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::snapshot::FleetSnapshot;

/// The page: HTML, CSS and JavaScript in one file.
pub const PAGE: &str = include_str!("page.html");

/// Where the page gets the fleet from.
pub type Source = Arc<dyn Fn() -> FleetSnapshot + Send + Sync>;

/// Serves every connection on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, source: Source) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, most likely: wait, do not spin.
                tracing::warn!(%error, "fleet web page: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let source = source.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = route(&source, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let served = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "fleet web page: connection ended");
            }
        });
    }
}

fn route(source: &Source, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".into(),
        );
    }
    match request.uri().path() {
        "/" | "/index.html" => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            Bytes::from_static(PAGE.as_bytes()),
        ),
        "/api/fleet" => match serde_json::to_vec(&source()) {
            Ok(json) => reply(StatusCode::OK, "application/json", json.into()),
            Err(error) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                format!("{error}\n").into(),
            ),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "edgevisor fleet serves / and /api/fleet\n".into(),
        ),
    }
}

fn reply(status: StatusCode, kind: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_needs_nothing_from_outside() {
        assert!(PAGE.contains("/api/fleet"));
        for outside in ["http://", "https://", "//cdn", "<link "] {
            assert!(!PAGE.contains(outside), "the page refers to {outside}");
        }
    }
}
