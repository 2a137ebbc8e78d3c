//! The HTTP listener: accepts TCP connections and serves each with hyper, HTTP/1.1 and HTTP/2
//! on the same port, within the limits a production server keeps and `axum::serve` does not:
//! a deadline for every request head, an idle timeout, a cap on connections overall and per
//! client address with a cheap refusal past it, shedding of connections that have sent no
//! request when the cap is reached, HTTP/2 stream and reset limits, and descriptor headroom.
//!
//! Layout: this file (the settings, the accept loop, one task per connection), `registry`
//! (who is connected; the deadlines; what to shed), `io` (the socket wrapper noticing bytes
//! and rewriting hyper's bodiless error answers), `answers` (those answers), `fds` (the
//! open-file limit).

mod answers;
mod fds;
mod io;
mod registry;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use answers::Answers;
use registry::{Caps, Refusal, Registry, Ticket};

use crate::config::{ConnectionLimits, MIN_HEADER_BYTES};

pub use fds::raise_nofile_limit;

/// HTTP/2 streams this server may reset for a client's errors before it hangs up (hyper's
/// default, set here so it cannot change under us: the "MadeYouReset" guard).
const H2_MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// A pause after an accept error that is not about one connection (out of descriptors), so
/// the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Descriptors kept free beside the connections: standard streams, the database files, the
/// listener, the runtime's own, logs and traces.
const RESERVED_FDS: u64 = 64;

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets every connection finish
/// its requests in flight (HTTP/2: GOAWAY) and returns when all are closed. `reserve_fds` is
/// what the rest of the process needs of the open-file limit beside the connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ConnectionLimits,
    reserve_fds: u64,
    shutdown: CancellationToken,
) {
    let nofile = fds::raise_nofile_limit();
    let max = fds::effective_cap(
        limits.max_connections,
        nofile,
        reserve_fds.saturating_add(RESERVED_FDS),
    );
    if max < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            in_effect = max,
            open_file_limit = nofile,
            "max connections lowered to stay under the open-file limit"
        );
    }
    let registry = Registry::new(Caps {
        max,
        per_ip: limits.max_connections_per_ip,
        head_timeout: limits.header_read_timeout,
        idle_timeout: limits.idle_timeout,
    });
    let answers = Arc::new(Answers::new(limits.max_header_bytes));
    let builder = Arc::new(builder(limits));
    let connections = TaskTracker::new();
    let stop_sweeping = CancellationToken::new();
    let sweeper = tokio::spawn(sweep(registry.clone(), stop_sweeping.clone()));
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::warn!(%error, "accept error");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        match registry.admit(address_key(peer.ip())) {
            Ok(ticket) => {
                connections.spawn(serve_connection(
                    builder.clone(),
                    stream,
                    peer,
                    ticket,
                    app.clone(),
                    answers.clone(),
                    shutdown.clone(),
                ));
            }
            Err(refusal) => {
                tracing::debug!(%peer, ?refusal, "connection refused");
                refuse(stream, &answers, refusal);
            }
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    stop_sweeping.cancel();
    let _ = sweeper.await;
}

/// hyper, with this server's limits.
fn builder(limits: &ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        // The head must fit in hyper's read buffer: past it, 431.
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        // The registry keeps the head deadline instead: hyper's timer starts as soon as a
        // connection is idle, so it would also cut kept-alive connections at that deadline.
        .header_read_timeout(None);
    builder
        .http2()
        .max_concurrent_streams(limits.http2_max_streams)
        .max_pending_accept_reset_streams(limits.http2_max_pending_resets)
        .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// One connection, until it ends, is cut, or is closed (idle, or the server stopping).
async fn serve_connection(
    builder: Arc<Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    app: Router,
    answers: Arc<Answers>,
    shutdown: CancellationToken,
) {
    let conn = ticket.conn.clone();
    let activity = conn.activity.clone();
    let io = TokioIo::new(io::Tracked::new(stream, activity.clone(), answers));
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let in_flight = activity.begin(request.version() == hyper::Version::HTTP_2);
        // What `into_make_service_with_connect_info` would add: the per-client rate limit
        // reads it.
        request.extensions_mut().insert(ConnectInfo(peer));
        let answer = app.clone().oneshot(request);
        async move {
            let response = answer.await;
            drop(in_flight);
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                break;
            }
            () = conn.cut.cancelled() => {
                tracing::debug!(%peer, "connection cut");
                break;
            }
            () = conn.close.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
    drop(ticket);
}

/// Applies the deadlines now and then, until told to stop.
async fn sweep(registry: Arc<Registry>, stop: CancellationToken) {
    let mut every = tokio::time::interval(registry.sweep_every());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => registry.sweep(),
            () = stop.cancelled() => return,
        }
    }
}

/// Refuses a connection at once: a short 503 problem if the socket takes it without waiting,
/// then closed. What the client already sent is read first, so that the close is a FIN, not a
/// reset that could discard the answer. Plain non-blocking calls on the socket: tokio's
/// `try_*` would see no readiness yet on a socket the reactor has not polled, and skip them.
fn refuse(stream: TcpStream, answers: &Answers, refusal: Refusal) {
    use std::io::{Read, Write};
    let Ok(mut socket) = stream.into_std() else {
        return;
    };
    let mut sent = [0u8; 2048];
    let _ = socket.read(&mut sent);
    let answer = match refusal {
        Refusal::PerAddress => &answers.per_address,
        Refusal::Full => &answers.full,
    };
    let _ = socket.write(answer);
}

/// The address connections are counted by: IPv4 as is (also when mapped into IPv6), IPv6 by
/// its /64, the block one subscriber usually holds.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Errors about one connection that went away before it was accepted: no reason to pause.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_by_ipv4_address_or_ipv6_64() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.7"), key("::ffff:192.0.2.7"));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn the_defaults_are_valid_and_bad_values_are_named() {
        assert!(ConnectionLimits::default().validate().is_ok());
        let bad = ConnectionLimits {
            max_header_bytes: 100,
            ..ConnectionLimits::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("HOOKRELAY_MAX_HEADER_BYTES"), "{err}");
        let bad = ConnectionLimits {
            header_read_timeout: Duration::ZERO,
            ..ConnectionLimits::default()
        };
        assert!(bad.validate().is_err());
    }
}
