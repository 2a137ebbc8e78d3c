use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;

const FIELDS: [&str; 25] = [
    "id",
    "tenant_id",
    "name",
    "description",
    "url",
    "events",
    "secret",
    "status",
    "disabled_reason",
    "disabled_at",
    "failing_since",
    "disable_after",
    "retry_count",
    "retry_schedule",
    "timeout_seconds",
    "headers",
    "rate_limit_per_second",
    "filter",
    "is_active",
    "total_deliveries",
    "successful_deliveries",
    "failed_deliveries",
    "last_triggered_at",
    "created_at",
    "updated_at",
];

fn assert_shape(w: &Value) {
    let mut keys: Vec<&str> = w.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = FIELDS.to_vec();
    expected.sort();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn create_answers_the_whole_webhook_with_defaults_and_secret() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let w = app.webhook(&t, sample_webhook()).await;
    assert_shape(&w);
    assert!(w["id"].as_str().unwrap().starts_with("wh_"));
    assert_eq!(w["tenant_id"], t.id.as_str());
    assert_eq!(w["name"], "CRM sync");
    assert!(w["description"].is_null());
    assert_eq!(w["url"], "https://example.com/hooks/crm");
    assert_eq!(w["events"], json!(["message.sent", "contact.created"]));
    let secret = w["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(w["status"], "active");
    assert_eq!(w["retry_count"], 3);
    assert!(w["retry_schedule"].is_null());
    assert_eq!(w["timeout_seconds"], 30);
    assert_eq!(w["headers"], json!({}));
    assert!(w["rate_limit_per_second"].is_null());
    assert_eq!(w["is_active"], true);
    for counter in [
        "total_deliveries",
        "successful_deliveries",
        "failed_deliveries",
    ] {
        assert_eq!(w[counter], 0);
    }
    assert!(w["last_triggered_at"].is_null());
    assert_eq!(w["created_at"], w["updated_at"]);
}

#[tokio::test]
async fn create_with_every_field() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let secret = format!("whsec_{}", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=");
    let w = app
        .webhook(
            &t,
            json!({
                "name": "All events", "description": "everything to the warehouse",
                "url": "http://hooks.example.org:8443/in?src=hookrelay",
                "events": ["*", "message.new", "*"], "secret": secret,
                "retry_count": 0, "timeout_seconds": 60, "is_active": false,
                "headers": {"X-Source": "crm"}, "rate_limit_per_second": 50
            }),
        )
        .await;
    assert_eq!(w["description"], "everything to the warehouse");
    assert_eq!(w["url"], "http://hooks.example.org:8443/in?src=hookrelay");
    assert_eq!(w["events"], json!(["*", "message.new"]));
    assert_eq!(w["secret"], secret.as_str());
    assert_eq!(w["retry_count"], 0);
    assert_eq!(w["timeout_seconds"], 60);
    assert_eq!(w["headers"], json!({"x-source": "***"}));
    assert_eq!(w["rate_limit_per_second"], 50);
    assert_eq!(w["is_active"], false);
    assert_eq!(w["status"], "disabled");
    assert_eq!(w["disabled_reason"], "manual");
    assert!(w["disabled_at"].is_string());
}

#[tokio::test]
async fn get_masks_the_secret_and_secret_route_reveals_it() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let created = app.webhook(&t, sample_webhook()).await;
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();

    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{id}"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = r.json().await.unwrap();
    assert_shape(&got);
    let masked = got["secret"].as_str().unwrap();
    assert_eq!(masked, format!("{}…", &secret[..10]));
    let mut expected = created.clone();
    expected["secret"] = json!(masked);
    assert_eq!(got, expected);

    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/secret"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"secret": secret}));
}

#[tokio::test]
async fn list_paginates_filters_and_masks() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut body = sample_webhook();
        body["name"] = json!(format!("hook {i}"));
        body["is_active"] = json!(i % 2 == 0);
        ids.push(
            app.webhook(&t, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.reverse();

    let r = app
        .call(Method::GET, "/api/v1/webhooks?limit=2", Some(&t.key), None)
        .await;
    let page: Value = r.json().await.unwrap();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], ids[0].as_str());
    assert!(
        data.iter()
            .all(|w| w["secret"].as_str().unwrap().ends_with('…'))
    );
    data.iter().for_each(assert_shape);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page: Value = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks?limit=2&cursor={cursor}"),
            Some(&t.key),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let got: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[3].as_str()]);

    let all: Value = app
        .call(Method::GET, "/api/v1/webhooks", Some(&t.key), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 5);
    assert!(all["next_cursor"].is_null());

    let active: Value = app
        .call(
            Method::GET,
            "/api/v1/webhooks?is_active=true",
            Some(&t.key),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let active = active["data"].as_array().unwrap();
    assert_eq!(active.len(), 3);
    assert!(active.iter().all(|w| w["is_active"] == true));
    let inactive: Value = app
        .call(
            Method::GET,
            "/api/v1/webhooks?is_active=false",
            Some(&t.key),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inactive["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn patch_changes_only_the_named_fields() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let created = app.webhook(&t, sample_webhook()).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/webhooks/{id}");

    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(json!({"name": "Renamed", "is_active": false, "events": ["*"]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.unwrap();
    assert_shape(&patched);
    assert_eq!(patched["name"], "Renamed");
    assert_eq!(patched["is_active"], false);
    assert_eq!(patched["status"], "disabled");
    assert_eq!(patched["disabled_reason"], "manual");
    assert_eq!(patched["events"], json!(["*"]));
    for same in [
        "id",
        "tenant_id",
        "url",
        "retry_count",
        "retry_schedule",
        "timeout_seconds",
        "headers",
        "rate_limit_per_second",
        "created_at",
        "description",
    ] {
        assert_eq!(patched[same], created[same], "{same} changed");
    }
    assert!(patched["secret"].as_str().unwrap().ends_with('…'));
    assert!(patched["updated_at"].as_str().unwrap() >= created["updated_at"].as_str().unwrap());

    // Every writable field, then read back.
    let secret = format!("whsec_{}", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(
                json!({"url": "https://new.example.com/h", "retry_count": 10, "timeout_seconds": 1,
                        "description": "d", "secret": secret, "is_active": true}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = app
        .call(Method::GET, &path, Some(&t.key), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["url"], "https://new.example.com/h");
    assert_eq!(got["retry_count"], 10);
    assert_eq!(got["timeout_seconds"], 1);
    assert_eq!(got["description"], "d");
    assert_eq!(got["status"], "active");
    let revealed: Value = app
        .call(Method::GET, &format!("{path}/secret"), Some(&t.key), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revealed["secret"], secret.as_str());

    // description: null clears it.
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(json!({"description": null})),
        )
        .await;
    assert!(r.json::<Value>().await.unwrap()["description"].is_null());
}

#[tokio::test]
async fn delete_is_204_then_404() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let created = app.webhook(&t, sample_webhook()).await;
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap());
    let r = app.call(Method::DELETE, &path, Some(&t.key), None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.bytes().await.unwrap().is_empty());
    for method in [Method::GET, Method::DELETE] {
        problem(
            app.call(method, &path, Some(&t.key), None).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let list: Value = app
        .call(Method::GET, "/api/v1/webhooks", Some(&t.key), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn event_catalogue_lists_22_types_and_the_wildcard() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let r = app
        .call(Method::GET, "/api/v1/webhooks/events", Some(&t.key), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 23);
    let names: Vec<&str> = data.iter().map(|e| e["name"].as_str().unwrap()).collect();
    for expected in [
        "message.new",
        "message.sent",
        "message.delivered",
        "message.read",
        "message.failed",
        "conversation.created",
        "conversation.updated",
        "conversation.assigned",
        "conversation.resolved",
        "conversation.closed",
        "contact.created",
        "contact.updated",
        "campaign.started",
        "campaign.completed",
        "campaign.failed",
        "flow.started",
        "flow.completed",
        "flow.failed",
        "automation.triggered",
        "automation.completed",
        "template.approved",
        "template.rejected",
        "*",
    ] {
        assert!(names.contains(&expected), "{expected} missing");
    }
    for e in &data[..22] {
        assert!(!e["description"].as_str().unwrap().is_empty());
        assert!(e["sample"].is_object(), "{e}");
    }
    let new = data.iter().find(|e| e["name"] == "message.new").unwrap();
    assert!(
        new["sample"].to_string().contains("\"+"),
        "phone numbers are E.164"
    );
    // The admin key reads it too, without naming a tenant.
    assert_eq!(
        app.admin(Method::GET, "/api/v1/webhooks/events", None)
            .await
            .status(),
        StatusCode::OK
    );
}
