//! After a receiver broke, from a shell: a webhook's deliveries, retrying one, recovering a
//! window of failures (`hookrelay webhooks deliveries|retry|recover|recovery`), and replaying
//! an event (`hookrelay events replay`). See docs/recovery.md.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{Client, Connection, Failure, field, print_json, table};

/// How often `recover --wait` looks at the recovery.
const POLL: Duration = Duration::from_millis(500);

/// A delivery's status, as `--status` filters it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeliveryStatus {
    Pending,
    Held,
    Succeeded,
    Failed,
    Cancelled,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Held => "held",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }
}

pub struct DeliveryFilters {
    pub status: Option<DeliveryStatus>,
    pub since: Option<String>,
    pub until: Option<String>,
}

pub async fn deliveries(
    client: &Client,
    id: &str,
    limit: usize,
    filters: &DeliveryFilters,
    json: bool,
) -> Result<(), Failure> {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(status) = filters.status {
        query.push(("status", status.as_str()));
    }
    if let Some(since) = &filters.since {
        query.push(("since", since));
    }
    if let Some(until) = &filters.until {
        query.push(("until", until));
    }
    let rows = super::admin::list_all(
        client,
        &["webhooks", id, "deliveries"],
        &query,
        "deliveries",
        Some(limit),
    )
    .await?;
    if json {
        print_json(&json!({ "data": rows }));
        return Ok(());
    }
    let mut table_rows = vec![vec![
        "ID".into(),
        "CREATED".into(),
        "EVENT".into(),
        "EVENT TYPE".into(),
        "STATUS".into(),
        "ATTEMPTS".into(),
        "LAST STATUS".into(),
        "LAST ERROR".into(),
    ]];
    table_rows.extend(rows.iter().map(|d| {
        vec![
            field(d, "id"),
            field(d, "created_at"),
            field(d, "event_id"),
            field(d, "event_type"),
            field(d, "status"),
            field(d, "attempts"),
            field(d, "last_status"),
            field(d, "last_error"),
        ]
    }));
    print!("{}", table(&table_rows));
    Ok(())
}

pub async fn retry(
    client: &Client,
    id: &str,
    delivery_id: &str,
    json: bool,
) -> Result<(), Failure> {
    let delivery = client
        .call(
            Method::POST,
            &["webhooks", id, "deliveries", delivery_id, "retry"],
            &[],
            None,
        )
        .await?;
    if json {
        print_json(&delivery);
    } else {
        println!(
            "Delivery {} queued again ({}).",
            field(&delivery, "id"),
            field(&delivery, "status")
        );
    }
    Ok(())
}

pub struct RecoverArgs {
    pub since: String,
    pub until: Option<String>,
    pub wait: bool,
    pub timeout: Duration,
}

pub async fn recover(
    client: &Client,
    id: &str,
    args: RecoverArgs,
    json: bool,
) -> Result<(), Failure> {
    let mut body = Map::new();
    body.insert("since".into(), Value::String(args.since));
    if let Some(until) = args.until {
        body.insert("until".into(), Value::String(until));
    }
    let mut recovery = client
        .call(
            Method::POST,
            &["webhooks", id, "recover"],
            &[],
            Some(&Value::Object(body)),
        )
        .await?;
    if args.wait {
        let recovery_id = field(&recovery, "id");
        let started = Instant::now();
        while recovery.get("state").and_then(Value::as_str) == Some("running") {
            if started.elapsed() >= args.timeout {
                show_recovery(&recovery, json);
                return Err(Failure::Other(format!(
                    "recovery {recovery_id} still running after {}",
                    humantime::format_duration(args.timeout)
                )));
            }
            tokio::time::sleep(POLL).await;
            recovery = client
                .call(
                    Method::GET,
                    &["webhooks", id, "recoveries", &recovery_id],
                    &[],
                    None,
                )
                .await?;
        }
    }
    show_recovery(&recovery, json);
    Ok(())
}

pub async fn recovery(
    client: &Client,
    id: &str,
    recovery_id: &str,
    cancel: bool,
    json: bool,
) -> Result<(), Failure> {
    let recovery = if cancel {
        client
            .call(
                Method::POST,
                &["webhooks", id, "recoveries", recovery_id, "cancel"],
                &[],
                None,
            )
            .await?
    } else {
        client
            .call(
                Method::GET,
                &["webhooks", id, "recoveries", recovery_id],
                &[],
                None,
            )
            .await?
    };
    show_recovery(&recovery, json);
    Ok(())
}

fn show_recovery(recovery: &Value, json: bool) {
    if json {
        print_json(recovery);
        return;
    }
    println!(
        "Recovery {}: {}, {} of {} failed deliveries queued again ({}%), {} per second.",
        field(recovery, "id"),
        field(recovery, "state"),
        field(recovery, "requeued"),
        field(recovery, "total"),
        field(recovery, "progress_percent"),
        field(recovery, "pace"),
    );
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,

    /// With the admin key: the tenant to act for (`ten_…`).
    #[arg(long, env = "HOOKRELAY_TENANT", global = true)]
    pub tenant: Option<String>,

    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Show an event and where each of its deliveries stands.
    Get {
        /// The event (`evt_…`).
        id: String,
    },
    /// Send an event again, to every webhook subscribed to its type now or to those named.
    /// Receivers see the event's own id as `webhook-id`, so they recognise it.
    Replay {
        /// The event (`evt_…`).
        id: String,
        /// Only this webhook (`wh_…`); repeat for several.
        #[arg(long = "webhook", value_name = "WEBHOOK_ID")]
        webhooks: Vec<String>,
    },
}

pub async fn events(args: EventsArgs) -> Result<(), Failure> {
    let client = Client::new(&args.connection)?.acting_for(args.tenant);
    let json = args.connection.json;
    match args.command {
        EventsCommand::Get { id } => {
            let event = client
                .call(Method::GET, &["events", &id], &[], None)
                .await?;
            if json {
                print_json(&event);
                return Ok(());
            }
            println!(
                "Event {} ({}), accepted {}",
                field(&event, "id"),
                field(&event, "type"),
                field(&event, "created_at")
            );
            print!("{}", deliveries_table(event.get("deliveries"), "state"));
        }
        EventsCommand::Replay { id, webhooks } => {
            let body = if webhooks.is_empty() {
                None
            } else {
                Some(json!({ "webhook_ids": webhooks }))
            };
            let made = client
                .call(Method::POST, &["events", &id, "replay"], &[], body.as_ref())
                .await?;
            if json {
                print_json(&made);
                return Ok(());
            }
            let count = made
                .get("deliveries")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            println!("Event {id} replayed: {count} new deliveries.");
            print!("{}", deliveries_table(made.get("deliveries"), "status"));
        }
    }
    Ok(())
}

fn deliveries_table(deliveries: Option<&Value>, status: &str) -> String {
    let mut rows = vec![vec![
        "DELIVERY".into(),
        "WEBHOOK".into(),
        "STATUS".into(),
        "ATTEMPTS".into(),
    ]];
    if let Some(Value::Array(list)) = deliveries {
        rows.extend(list.iter().map(|d| {
            vec![
                field(d, "id"),
                field(d, "webhook_id"),
                field(d, status),
                field(d, "attempts"),
            ]
        }));
    }
    table(&rows)
}
