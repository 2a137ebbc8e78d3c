//! The event-type registry across nodes: a type added or changed through one node is
//! accepted, enforced and delivered by the others as soon as they hear of it, without a
//! restart.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::tenant_key;
use crate::it::crash::Node;
use crate::it::helpers::{ADMIN_KEY, TestDb, backend_available};
use crate::it::receiver::{Receiver, Reply};

/// Notifications arrive in milliseconds; this only bounds a broken build.
const HEAR_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_added_on_one_node_is_accepted_and_enforced_on_another() {
    if !backend_available() {
        return;
    }
    let rx = Receiver::start().await;
    rx.script("/in", |_| Reply::status(200));
    let db = TestDb::create().await;
    let nodes = [Node::start(&db).await, Node::start(&db).await];
    let key = tenant_key(&nodes[0], "registry").await;
    let event = json!({"type": "invoice.paid", "data": {"amount": 10}});
    let (status, _) = nodes[1]
        .send(Method::POST, "/api/v1/events", &key, Some(event.clone()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown at first");

    nodes[0]
        .call(
            Method::POST,
            "/api/v1/event-types",
            ADMIN_KEY,
            Some(
                json!({"name": "invoice.paid", "description": "An invoice was paid.",
                        "schema": {"type": "object", "required": ["amount"]},
                        "sample": {"amount": 1}}),
            ),
        )
        .await;
    // Node 2 takes a subscription to the new group once it has heard of the type.
    let hook = json!({"name": "invoices", "url": rx.url("/in"), "events": ["invoice.*"]});
    let deadline = Instant::now() + HEAR_WITHIN;
    loop {
        let (status, answer) = nodes[1]
            .send(Method::POST, "/api/v1/webhooks", &key, Some(hook.clone()))
            .await;
        if status == StatusCode::CREATED {
            break;
        }
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(Instant::now() < deadline, "node 2 never heard of the type");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, answer) = nodes[1]
        .send(Method::POST, "/api/v1/events", &key, Some(event.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["deliveries"], 1);
    rx.wait_for("/in", 1, HEAR_WITHIN).await;

    // A schema tightened on node 2 is enforced on node 1.
    nodes[1]
        .call(
            Method::PATCH,
            "/api/v1/event-types/invoice.paid",
            ADMIN_KEY,
            Some(
                json!({"schema": {"type": "object", "required": ["amount", "currency"]},
                        "sample": {"amount": 1, "currency": "BRL"}}),
            ),
        )
        .await;
    let deadline = Instant::now() + HEAR_WITHIN;
    loop {
        let (status, answer) = nodes[0]
            .send(Method::POST, "/api/v1/events", &key, Some(event.clone()))
            .await;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(answer["errors"][0]["field"], "data", "{answer}");
            break;
        }
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert!(
            Instant::now() < deadline,
            "node 1 never heard of the new schema"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
