//! Payload filters end to end: what a filter refuses becomes no delivery and is counted; a
//! bad filter is refused naming where; test sends and replays see the filter too.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(20);

fn whatsapp_over_100() -> Value {
    json!({"data.channel": {"$eq": "whatsapp"}, "data.amount": {"$gte": 100}})
}

fn message(channel: Option<&str>, amount: i64) -> Value {
    let mut data = json!({"amount": amount});
    if let Some(channel) = channel {
        data["channel"] = json!(channel);
    }
    json!({"type": "message.new", "data": data})
}

#[tokio::test]
async fn a_filter_delivers_what_it_accepts_and_counts_what_it_refuses() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/filtered", |_| Reply::status(200));
    rx.script("/all", |_| Reply::status(200));
    let t = app.tenant("Acme").await;
    let filtered = app
        .webhook(
            &t,
            json!({"name": "big WhatsApp sales", "url": rx.url("/filtered"),
                   "events": ["message.*"], "filter": whatsapp_over_100()}),
        )
        .await;
    assert_eq!(filtered["filter"], whatsapp_over_100(), "shown as written");
    let all = app
        .webhook(
            &t,
            json!({"name": "everything", "url": rx.url("/all"), "events": ["*"]}),
        )
        .await;
    assert_eq!(all["filter"], Value::Null);
    let wid = filtered["id"].as_str().unwrap();

    // Passes; wrong channel; too small; no channel at all; another type (not subscribed,
    // so not counted as filtered).
    let cases = [
        (message(Some("whatsapp"), 150), 2),
        (message(Some("sms"), 500), 1),
        (message(Some("whatsapp"), 99), 1),
        (message(None, 1000), 1),
        (
            json!({"type": "contact.created", "data": {"channel": "whatsapp", "amount": 500}}),
            1,
        ),
    ];
    for (event, deliveries) in &cases {
        let accepted = app.event(&t, event.clone()).await;
        assert_eq!(accepted["deliveries"], *deliveries, "{event}");
    }
    rx.wait_for("/all", cases.len(), WAIT).await;
    let hits = rx.wait_for("/filtered", 1, WAIT).await;
    assert_eq!(
        hits[0].json()["data"],
        json!({"amount": 150, "channel": "whatsapp"})
    );

    let stats = app.get(&t, &format!("/api/v1/webhooks/{wid}/stats")).await;
    assert_eq!(stats["filtered_events"], 3, "{stats}");
    assert_eq!(stats["total_deliveries"], 1, "{stats}");
    let stats = app
        .get(
            &t,
            &format!("/api/v1/webhooks/{}/stats", all["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(stats["filtered_events"], 0, "{stats}");

    // A test send with the catalogue's sample (no channel) is sent, and says the filter
    // would refuse such an event; one with a matching payload says it passes.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{wid}/test"),
            Some(&t.key),
            None,
        )
        .await;
    let test: Value = r.json().await.unwrap();
    assert_eq!(test["success"], true, "{test}");
    assert_eq!(test["filter_matched"], false, "{test}");
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{wid}/test"),
            Some(&t.key),
            Some(json!({"payload": {"channel": "whatsapp", "amount": 100}})),
        )
        .await;
    let test: Value = r.json().await.unwrap();
    assert_eq!(test["filter_matched"], true, "{test}");
    rx.wait_for("/filtered", 3, WAIT).await;

    // Removing the filter delivers every subscribed event again.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{wid}"),
            Some(&t.key),
            Some(json!({"filter": null})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let hook: Value = r.json().await.unwrap();
    assert_eq!(hook["filter"], Value::Null);
    let accepted = app.event(&t, message(Some("sms"), 1)).await;
    assert_eq!(accepted["deliveries"], 2);
    rx.wait_for("/filtered", 4, WAIT).await;
}

#[tokio::test]
async fn a_bad_filter_is_refused_naming_where_and_changes_nothing() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let body = |filter: Value| json!({"name": "x", "url": "https://example.com/h", "events": ["*"], "filter": filter});
    let cases = [
        (
            json!({"data.amount": {"$gte": true}}),
            "filter[\"data.amount\"].$gte",
        ),
        (
            json!({"data.amount": {"$regex": "x"}}),
            "filter[\"data.amount\"].$regex",
        ),
        (
            json!({"$or": [{"a": 1}, {"b..c": 1}]}),
            "filter.$or[1][\"b..c\"]",
        ),
        (json!({"$nor": [{"a": 1}]}), "filter.$nor"),
        (json!({}), "filter"),
        (json!("data.channel == whatsapp"), "filter"),
    ];
    for (filter, field) in cases {
        let r = app
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&t.key),
                Some(body(filter.clone())),
            )
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["errors"][0]["field"], field, "{filter}: {p}");
    }
    let list = app.get(&t, "/api/v1/webhooks").await;
    assert_eq!(list["data"], json!([]), "nothing was created");

    let w = app
        .webhook(&t, body(json!({"data.channel": "whatsapp"})))
        .await;
    let path = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(json!({"name": "renamed", "filter": {"data.channel": {"$in": []}}})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        p["errors"][0]["field"], "filter[\"data.channel\"].$in",
        "{p}"
    );
    let kept = app.get(&t, &path).await;
    assert_eq!(kept["name"], "x");
    assert_eq!(kept["filter"], json!({"data.channel": "whatsapp"}));
}

#[tokio::test]
async fn a_replay_goes_only_where_the_filter_lets_it() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/wa", |_| Reply::status(200));
    rx.script("/all", |_| Reply::status(200));
    let t = app.tenant("Acme").await;
    let wa = app
        .webhook(
            &t,
            json!({"name": "wa", "url": rx.url("/wa"), "events": ["message.new"],
                   "filter": {"data.channel": "whatsapp"}}),
        )
        .await;
    app.webhook(
        &t,
        json!({"name": "all", "url": rx.url("/all"), "events": ["message.new"]}),
    )
    .await;
    let event = app.event(&t, message(Some("sms"), 1)).await;
    assert_eq!(event["deliveries"], 1);
    rx.wait_for("/all", 1, WAIT).await;
    let replay = format!("/api/v1/events/{}/replay", event["id"].as_str().unwrap());

    let r = app.call(Method::POST, &replay, Some(&t.key), None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let made: Value = r.json().await.unwrap();
    assert_eq!(made["deliveries"].as_array().unwrap().len(), 1, "{made}");
    rx.wait_for("/all", 2, WAIT).await;

    let r = app
        .call(
            Method::POST,
            &replay,
            Some(&t.key),
            Some(json!({"webhook_ids": [wa["id"]]})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], "webhook_ids[0]", "{p}");
    assert!(rx.hits("/wa").is_empty());
}

/// The JSON blocks of docs/api.md between the filter-example markers.
fn documented_example() -> Vec<Value> {
    doc_json_blocks("docs/api.md", "filter-example")
}

#[tokio::test]
async fn the_documented_example_does_what_docs_api_md_says() {
    let [webhook, delivered, filtered] = &documented_example()[..] else {
        panic!("docs/api.md shows a webhook, an event delivered and one filtered");
    };
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/sales", |_| Reply::status(200));
    let t = app.tenant("Acme").await;
    let mut body = webhook.clone();
    body["url"] = json!(rx.url("/sales"));
    let w = app.webhook(&t, body).await;
    assert_eq!(app.event(&t, delivered.clone()).await["deliveries"], 1);
    assert_eq!(app.event(&t, filtered.clone()).await["deliveries"], 0);
    let hits = rx.wait_for("/sales", 1, WAIT).await;
    assert_eq!(hits[0].json()["data"], delivered["data"]);
    let stats = app
        .get(
            &t,
            &format!("/api/v1/webhooks/{}/stats", w["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(stats["filtered_events"], 1);
}
