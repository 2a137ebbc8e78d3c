//! PostgreSQL only: the server's own database connections, as production needs them.

use crate::it::helpers::{TestApp, backend_available};

/// The TCP sockets of this process whose peer is `port`, each with whether `TCP_NODELAY` is
/// set. The server under test runs in this process, so its pool's sockets are among them.
#[cfg(target_os = "linux")]
fn sockets_to(port: u16) -> Vec<bool> {
    use std::os::fd::BorrowedFd;
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(raw) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // SAFETY: the descriptor is only queried, never closed; one closed meanwhile by
        // another test answers an error, which skips it.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        let socket = socket2::SockRef::from(&fd);
        let peer = socket.peer_addr().ok().and_then(|a| a.as_socket());
        if peer.is_some_and(|p| p.port() == port)
            && let Ok(nodelay) = socket.tcp_nodelay()
        {
            found.push(nodelay);
        }
    }
    found
}

/// Over TLS, each query is several small writes; with Nagle's algorithm the second waits for
/// the server's delayed ACK (about 40 ms), which made ingest over TLS about 5× slower.
/// sqlx 0.9.0 stopped setting `TCP_NODELAY`; vendor/sqlx-core sets it again.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn database_connections_set_tcp_nodelay() {
    if !backend_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let url = url::Url::parse(&app.db.url).expect("a URL");
    if url.host().is_none() {
        eprintln!("SKIPPED: the test database is reached over a Unix socket, not TCP");
        return;
    }
    let port = url.port().unwrap_or(5432);
    let sockets = sockets_to(port);
    assert!(
        !sockets.is_empty(),
        "no TCP connection to the database's port {port} found in this process"
    );
    let without = sockets.iter().filter(|nodelay| !**nodelay).count();
    assert_eq!(
        without,
        0,
        "{without} of {} database connections lack TCP_NODELAY",
        sockets.len()
    );
    app.stop().await;
}

/// CI's database URL asks for TLS (`sslmode=require`, as managed PostgreSQL does): the
/// server's connections must then really be encrypted, or the suite would not test what
/// production runs.
#[tokio::test]
async fn database_connections_use_tls_when_the_url_asks() {
    if !backend_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let url = url::Url::parse(&app.db.url).expect("a URL");
    let mode = url
        .query_pairs()
        .find(|(k, _)| k == "sslmode")
        .map(|(_, v)| v.into_owned());
    let wants_tls = matches!(
        mode.as_deref(),
        Some("require" | "verify-ca" | "verify-full")
    );
    let database = url.path().trim_start_matches('/').to_owned();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.db.url)
        .await
        .expect("connect");
    let (tls, all): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
    )
    .bind(&database)
    .fetch_one(&mut conn)
    .await
    .expect("read pg_stat_ssl");
    assert!(all > 0, "the server holds no connection to {database}");
    if wants_tls {
        assert_eq!(
            tls,
            all,
            "sslmode={mode:?}, yet {} of {all} connections are plaintext",
            all - tls
        );
    } else {
        eprintln!(
            "NOTE: the test database URL does not ask for TLS (sslmode={mode:?}); CI sets sslmode=require"
        );
    }
    app.stop().await;
}
