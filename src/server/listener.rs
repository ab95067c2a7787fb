//! The accept loop: each TCP connection goes, plain, to the HTTP router or the signalling hub
//! by its request head, or, with TLS, through the handshake to the hub.

use std::time::Duration;

use super::{Server, http};
use crate::signalling::hub;

/// Accept connections until the hub shuts down.
pub(super) async fn accept_loop(server: Server) {
    let mut stop = server.hub.shutdown_rx();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = server.listener.accept() => match accepted {
                Ok((tcp, remote)) => {
                    let _ = tcp.set_nodelay(true);
                    let hub = server.hub.clone();
                    let timeout = server.join_timeout;
                    // Separate spawns: one async block holding both the plain and the
                    // TLS connection futures would size every plain connection's task
                    // for the (much larger) TLS variant.
                    match server.tls.clone() {
                        None => {
                            // Plain: route by the request head (WebSocket upgrade, or the
                            // browser client's files over HTTP). The WebSocket connection
                            // gets its own task so its size stays as small as before.
                            let web = server.http.clone();
                            tokio::spawn(async move {
                                match http::classify(&tcp, timeout).await {
                                    http::Route::WebSocket => {
                                        tokio::spawn(hub::serve(hub, tcp, remote));
                                    }
                                    http::Route::Http => http::serve(tcp, &web).await,
                                }
                            });
                        }
                        Some(acc) => {
                            tokio::spawn(async move {
                                match tokio::time::timeout(timeout, acc.accept(tcp)).await {
                                    Ok(Ok(s)) => Box::pin(hub::serve(hub, s, remote)).await,
                                    Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                                    Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    tracing::info!("signalling server stopped accepting");
}
