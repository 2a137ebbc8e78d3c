//! Changes made through one node take effect on every node: two real nodes on one fresh
//! database, the backlog leased and queued on node 2, the change made through node 1.
//!
//! The receiver holds the first attempts open, so node 2's lane for the webhook is full (its
//! per-webhook concurrency) and no attempt can start until the test releases them: what is
//! open at the receiver when the change is answered is exactly what was in flight.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::it::crash::Node;
use crate::it::helpers::{ADMIN_KEY, TestDb, backend_available};
use crate::it::receiver::Receiver;

/// Node 2's attempts in flight for one webhook (`HOOKRELAY_PER_WEBHOOK_CONCURRENCY` of
/// [`Node`]).
const PER_WEBHOOK: usize = 4;
const BACKLOG: usize = 100;
/// Where the webhook points first; requests there are held open until released.
const HELD: &str = "/held";

/// Two nodes, a tenant with a key and a webhook at [`HELD`], all made through node 1.
struct Cluster {
    db: TestDb,
    rx: Receiver,
    nodes: [Node; 2],
    /// Each node's id, as its heartbeat and its change connection name it.
    ids: [String; 2],
    client: reqwest::Client,
    tenant_id: String,
    key: String,
    key_id: String,
    webhook: String,
}

impl Cluster {
    async fn start() -> Cluster {
        let rx = Receiver::start().await;
        rx.hold(HELD);
        let db = TestDb::create().await;
        let first = Node::start(&db).await;
        let one = db.strings("SELECT id FROM nodes").await;
        let second = Node::start(&db).await;
        let both = db.strings("SELECT id FROM nodes").await;
        assert_eq!((one.len(), both.len()), (1, 2), "{both:?}");
        let other = both.iter().find(|id| **id != one[0]).cloned().unwrap();
        let mut cluster = Cluster {
            db,
            rx,
            nodes: [first, second],
            ids: [one[0].clone(), other],
            client: reqwest::Client::new(),
            tenant_id: String::new(),
            key: String::new(),
            key_id: String::new(),
            webhook: String::new(),
        };
        let tenant = cluster.nodes[0]
            .call(
                Method::POST,
                "/api/v1/tenants",
                ADMIN_KEY,
                Some(json!({"name": "changes"})),
            )
            .await;
        cluster.tenant_id = tenant["id"].as_str().unwrap().to_owned();
        let key = cluster.nodes[0]
            .call(
                Method::POST,
                &format!("/api/v1/tenants/{}/keys", cluster.tenant_id),
                ADMIN_KEY,
                Some(json!({})),
            )
            .await;
        cluster.key = key["key"].as_str().unwrap().to_owned();
        cluster.key_id = key["id"].as_str().unwrap().to_owned();
        let body = json!({"name": "held", "url": cluster.rx.url(HELD), "events": ["*"],
            "timeout_seconds": 60, "retry_count": 0});
        let webhook = cluster.nodes[0]
            .call(Method::POST, "/api/v1/webhooks", &cluster.key, Some(body))
            .await;
        cluster.webhook = format!("/api/v1/webhooks/{}", webhook["id"].as_str().unwrap());
        cluster
    }

    /// The backlog, accepted by node 2 (which leases and queues it), until node 2's attempts
    /// for the webhook are all held open at the receiver: none more can start.
    async fn backlog_on_node_2(&self) {
        let events: Vec<Value> = (0..BACKLOG)
            .map(|n| json!({"type": "message.new", "data": {"n": n}}))
            .collect();
        let (status, _) = self
            .call(
                1,
                Method::POST,
                "/api/v1/events/batch",
                &self.key,
                Some(json!({"events": events})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let full = wait_until(Duration::from_secs(30), || async {
            self.rx.open(HELD) == PER_WEBHOOK
        })
        .await;
        assert!(full, "{} attempts held open", self.rx.open(HELD));
        assert_eq!(self.rx.hits(HELD).len(), PER_WEBHOOK);
    }

    /// A request to node `n` (0 or 1): its status and JSON body (`Null` when empty).
    async fn call(
        &self,
        n: usize,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.nodes[n].send(method, path, key, body).await
    }

    /// A sample of node `n`'s `/metrics`, by its name with labels; 0 when absent.
    async fn metric(&self, n: usize, series: &str) -> f64 {
        let url = format!("{}/metrics", self.nodes[n].base);
        let text = self.client.get(url).send().await.unwrap().text().await;
        text.unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Changes of `kind` node `n` heard of from the database.
    async fn heard(&self, n: usize, kind: &str) -> f64 {
        let series = format!("hookrelay_changes_heard_total{{kind=\"{kind}\"}}");
        self.metric(n, &series).await
    }

    /// Gives node 2 the time to hear of a change (bounded; a build that never hears of
    /// changes gets the whole bound, and the assertions after judge it).
    async fn node_2_hears(&self, kind: &str, times: f64) {
        wait_until(Duration::from_secs(10), || async {
            self.heard(1, kind).await >= times
        })
        .await;
    }

    /// Answers what was held, then waits until no node has anything queued or in flight.
    async fn release_and_settle(&self) {
        self.rx.release(HELD);
        let settled = wait_until(Duration::from_secs(60), || async {
            let mut idle = true;
            for n in 0..2 {
                idle &= self.metric(n, "hookrelay_attempts_in_flight").await == 0.0
                    && self.metric(n, "hookrelay_local_queue_deliveries").await == 0.0;
            }
            idle
        })
        .await;
        assert!(settled, "the nodes never settled");
    }

    /// Deactivates or deletes the webhook through node 1 (`change`), then checks that no
    /// delivery arrives after the answer but the attempts open at the receiver then.
    async fn stop_through_node_1(&self, change: Method, body: Option<Value>) {
        self.backlog_on_node_2().await;
        let (status, _) = self.call(0, change, &self.webhook, &self.key, body).await;
        assert!(status.is_success(), "{status}");
        let in_flight = self.rx.open(HELD);
        let arrived = self.rx.hits(HELD).len();
        assert_eq!(arrived, in_flight, "everything that arrived was still open");
        self.node_2_hears("webhook", 1.0).await;
        self.release_and_settle().await;
        assert_eq!(
            self.rx.hits(HELD).len(),
            in_flight,
            "deliveries arrived after the answer beyond the {in_flight} in flight then"
        );
    }
}

/// Waits until `condition` holds, at most `limit`; whether it did.
async fn wait_until<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_deactivated_through_one_node_stops_on_the_other() {
    if !backend_available() {
        return;
    }
    let cluster = Cluster::start().await;
    cluster
        .stop_through_node_1(Method::PATCH, Some(json!({"is_active": false})))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_deleted_through_one_node_gets_nothing_more_from_the_other() {
    if !backend_available() {
        return;
    }
    let cluster = Cluster::start().await;
    cluster.stop_through_node_1(Method::DELETE, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_url_change_through_one_node_the_other_sends_to_the_new_url() {
    if !backend_available() {
        return;
    }
    let cluster = Cluster::start().await;
    cluster.backlog_on_node_2().await;
    let body = json!({"url": cluster.rx.url("/new")});
    let (status, _) = cluster
        .call(0, Method::PATCH, &cluster.webhook, &cluster.key, Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);
    let in_flight = cluster.rx.open(HELD);
    cluster.node_2_hears("webhook", 1.0).await;
    cluster.rx.release(HELD);
    let rest = BACKLOG - in_flight;
    cluster
        .rx
        .wait_for("/new", rest, Duration::from_secs(60))
        .await;
    cluster.release_and_settle().await;
    assert_eq!(
        cluster.rx.hits(HELD).len(),
        in_flight,
        "only the attempts in flight at the answer went to the old URL"
    );
    assert_eq!(cluster.rx.hits("/new").len(), rest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_node_is_refused_by_the_other() {
    if !backend_available() {
        return;
    }
    let cluster = Cluster::start().await;
    // Node 2 has just read the key, so it holds it in memory.
    let (status, _) = cluster
        .call(1, Method::GET, "/api/v1/webhooks", &cluster.key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let revoke = format!(
        "/api/v1/tenants/{}/keys/{}",
        cluster.tenant_id, cluster.key_id
    );
    let (status, _) = cluster
        .call(0, Method::DELETE, &revoke, ADMIN_KEY, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A bound well under the 5 s a node used to trust a key from memory, not a speed test.
    let refused = wait_until(Duration::from_secs(3), || async {
        let (status, _) = cluster
            .call(1, Method::GET, "/api/v1/webhooks", &cluster.key, None)
            .await;
        status == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "node 2 still accepts the revoked key");
    cluster.node_2_hears("api_key", 1.0).await;
    assert_eq!(cluster.heard(1, "api_key").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_change_connection_is_cut_converges_once_it_is_back() {
    if !backend_available() {
        return;
    }
    let cluster = Cluster::start().await;
    cluster.backlog_on_node_2().await;
    let resyncs = cluster.heard(1, "resync").await;
    // Node 2 cannot listen again until the test says so; the other connections stay up.
    let url = url::Url::parse(&cluster.db.url).unwrap();
    // The path only: the URL may carry options (`?sslmode=require`).
    let name = url.path().trim_start_matches('/').to_owned();
    let admin = std::env::var(crate::it::helpers::POSTGRES_URL_VAR).unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    let allow = |allowed: bool| format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allowed}");
    sqlx::query(sqlx::AssertSqlSafe(allow(false)))
        .execute(&mut conn)
        .await
        .unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(format!("hookrelay changes {}", cluster.ids[1]))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(cut, [true], "node 2's change connection, cut");

    // Made while node 2 cannot hear of it.
    let body = json!({"is_active": false});
    let (status, _) = cluster
        .call(0, Method::PATCH, &cluster.webhook, &cluster.key, Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);
    let in_flight = cluster.rx.open(HELD);
    assert_eq!(cluster.rx.hits(HELD).len(), in_flight);
    assert_eq!(
        cluster.heard(1, "webhook").await,
        0.0,
        "node 2 heard nothing"
    );

    sqlx::query(sqlx::AssertSqlSafe(allow(true)))
        .execute(&mut conn)
        .await
        .unwrap();
    cluster.node_2_hears("resync", resyncs + 1.0).await;
    cluster.release_and_settle().await;
    assert_eq!(
        cluster.rx.hits(HELD).len(),
        in_flight,
        "node 2 went on with its queue after reconnecting"
    );
}
