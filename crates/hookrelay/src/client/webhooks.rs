//! `hookrelay webhooks …`: a tenant's webhooks (create, list, get, update, delete, secrets)
//! and the event catalogue; their activity (test sends, logs, stats) is in [`super::activity`].

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::activity::{self, LogStatus};
use super::admin::list_all;
use super::recovery;
use super::webhook_view::{list_field, show, webhooks_table};
use super::{Client, Connection, Failure, field, print_json, table};

#[derive(Debug, Args)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    pub command: WebhooksCommand,

    /// With the admin key: the tenant to act for (`ten_…`).
    #[arg(long, env = "HOOKRELAY_TENANT", global = true)]
    pub tenant: Option<String>,

    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register a webhook; its signing secret is printed.
    Create {
        /// A name to tell webhooks apart (1–100 characters).
        #[arg(long)]
        name: String,
        /// Where deliveries are POSTed (http or https). (`--url` names the server.)
        #[arg(long, value_name = "URL")]
        webhook_url: String,
        /// Event types, comma-separated (`message.new,message.read`), groups (`message.*`), or `*`
        /// for all.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        #[command(flatten)]
        options: WebhookOptions,
    },
    /// List the tenant's webhooks, newest first.
    List {
        /// Only active webhooks.
        #[arg(long, conflicts_with = "inactive")]
        active: bool,
        /// Only inactive webhooks.
        #[arg(long)]
        inactive: bool,
    },
    /// Show one webhook (its secret and header values masked).
    Get {
        /// The webhook (`wh_…`).
        id: String,
    },
    /// Change some of a webhook's settings; the others stay as they are.
    Update {
        /// The webhook (`wh_…`).
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new URL to deliver to.
        #[arg(long, value_name = "URL")]
        webhook_url: Option<String>,
        /// New event types, comma-separated; they replace the old ones.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        #[command(flatten)]
        options: WebhookOptions,
        /// Deliver again (the opposite of `--inactive`).
        #[arg(long, conflicts_with = "inactive")]
        active: bool,
        /// Remove every custom header.
        #[arg(long, conflicts_with = "header")]
        no_headers: bool,
        /// Remove the delivery rate limit.
        #[arg(long, conflicts_with = "rate_limit_per_second")]
        no_rate_limit: bool,
        /// Remove the payload filter: every subscribed event is delivered again.
        #[arg(long, conflicts_with = "filter")]
        no_filter: bool,
    },
    /// Enable a webhook again: held deliveries resume, the failure streak is cleared.
    Enable {
        /// The webhook (`wh_…`).
        id: String,
    },
    /// Disable a webhook (reason `manual`): pending deliveries are held, new events skip it.
    Disable {
        /// The webhook (`wh_…`).
        id: String,
    },
    /// Delete a webhook; its pending deliveries are cancelled.
    Delete {
        /// The webhook (`wh_…`).
        id: String,
    },
    /// The event catalogue: every type a webhook can subscribe to.
    Events,
    /// Make one signed delivery now and show its outcome; exit status 1 if it failed.
    Test {
        /// The webhook (`wh_…`).
        id: String,
        /// The event type to send (default: the webhook's first).
        #[arg(long = "type", value_name = "TYPE")]
        event_type: Option<String>,
        /// The event's data instead of the catalogue's sample: a JSON object, `@file` or `-`.
        #[arg(long)]
        payload: Option<String>,
    },
    /// A webhook's attempts, newest first.
    Logs {
        /// The webhook (`wh_…`).
        id: String,
        /// At most this many attempts.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only successful or only failed attempts.
        #[arg(long, value_enum)]
        status: Option<LogStatus>,
        /// Only attempts of this event type.
        #[arg(long)]
        event_type: Option<String>,
        /// Only attempts at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only attempts before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
    /// The webhook's deliveries, newest first: one per event it received (docs/recovery.md).
    Deliveries {
        /// The webhook (`wh_…`).
        id: String,
        /// At most this many deliveries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only deliveries in this state.
        #[arg(long, value_enum)]
        status: Option<recovery::DeliveryStatus>,
        /// Only deliveries created at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only deliveries created before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
    /// Queue one failed delivery again, with a new chain of attempts.
    Retry {
        /// The webhook (`wh_…`).
        id: String,
        /// The failed delivery (`dlv_…`).
        delivery_id: String,
    },
    /// Queue again every delivery that failed in a window, oldest first, paced.
    Recover {
        /// The webhook (`wh_…`).
        id: String,
        /// Deliveries created at or after this time (RFC 3339), at most the retention age ago.
        #[arg(long)]
        since: String,
        /// Deliveries created before this time (RFC 3339); default now.
        #[arg(long)]
        until: Option<String>,
        /// Wait until the recovery has queued every one, and show it.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits at most (e.g. 30s, 5m).
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Show a recovery's progress, or cancel it.
    Recovery {
        /// The webhook (`wh_…`).
        id: String,
        /// The recovery (`rcv_…`).
        recovery_id: String,
        /// Stop it; what it already queued stays queued.
        #[arg(long)]
        cancel: bool,
    },
    /// One attempt in full: payload, headers sent, response.
    Log {
        /// The webhook (`wh_…`).
        id: String,
        /// The attempt (`att_…`).
        log_id: String,
    },
    /// Delivery counts, success rate and response times.
    Stats {
        /// The webhook (`wh_…`).
        id: String,
        /// Only deliveries ended at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
    },
    /// Replace the signing secret; the old one keeps signing beside it for a grace period.
    RotateSecret {
        /// The webhook (`wh_…`).
        id: String,
        /// How long the old secret keeps signing (e.g. 1h, 24h; at most 7 days; 0 ends it now).
        #[arg(long, value_name = "DURATION")]
        grace: Option<String>,
        /// The new secret (`whsec_…`) instead of a generated one.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Print the signing secret (and, during a rotation, the previous one).
    Secret {
        /// The webhook (`wh_…`).
        id: String,
    },
    /// Print the custom headers with their values (`get` and `list` show them masked).
    Headers {
        /// The webhook (`wh_…`).
        id: String,
    },
}

/// Settings shared by `create` and `update`; left out, the server's default (or, for
/// `update`, the current value) stands.
#[derive(Debug, Args)]
pub struct WebhookOptions {
    /// A description (up to 500 characters).
    #[arg(long)]
    description: Option<String>,
    /// The signing secret (`whsec_…`); generated when absent.
    #[arg(long)]
    secret: Option<String>,
    /// Retries after a failed first attempt (0–10), on the server's backoff. On `update`, it
    /// replaces any retry schedule.
    #[arg(long, conflicts_with = "retry_schedule")]
    retry_count: Option<i64>,
    /// The delay before each retry, comma-separated (`5s,5m,30m,2h`; up to 20, each within
    /// the server's longest retry delay), or `standard` for the Standard Webhooks schedule.
    #[arg(long, value_name = "DELAYS", value_delimiter = ',')]
    retry_schedule: Vec<String>,
    /// Seconds an attempt may take (1–60).
    #[arg(long)]
    timeout_seconds: Option<i64>,
    /// A header sent with every delivery, as `Name: value`; repeat for more. On `update`,
    /// the headers given replace all the old ones.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    header: Vec<String>,
    /// Deliveries per second at most (1–10000); those over it wait.
    #[arg(long)]
    rate_limit_per_second: Option<i64>,
    /// Deliver only events whose envelope passes this filter (JSON), e.g.
    /// `{"data.channel": "whatsapp", "data.amount": {"$gte": 100}}`; see docs/api.md.
    #[arg(long, value_name = "JSON")]
    filter: Option<String>,
    /// Stop new deliveries to it.
    #[arg(long)]
    inactive: bool,
}

pub async fn webhooks(args: WebhooksArgs) -> Result<(), Failure> {
    let client = Client::new(&args.connection)?.acting_for(args.tenant);
    let json = args.connection.json;
    match args.command {
        WebhooksCommand::Create {
            name,
            webhook_url,
            events,
            options,
        } => {
            let mut body = options.body()?;
            body.insert("name".into(), Value::String(name));
            body.insert("url".into(), Value::String(webhook_url));
            body.insert("events".into(), json!(events));
            let hook = client
                .call(Method::POST, &["webhooks"], &[], Some(&Value::Object(body)))
                .await?;
            if json {
                print_json(&hook);
            } else {
                let id = field(&hook, "id");
                println!(
                    "Created webhook {id} ({}) for {}.",
                    field(&hook, "name"),
                    list_field(&hook, "events")
                );
                println!(
                    "Its signing secret (`hookrelay webhooks secret {id}` shows it again):\n\n    {}\n",
                    field(&hook, "secret")
                );
            }
        }
        WebhooksCommand::List { active, inactive } => {
            let filter = if active {
                Some("true")
            } else {
                inactive.then_some("false")
            };
            let query: Vec<(&str, &str)> = filter.map(|f| ("is_active", f)).into_iter().collect();
            let hooks = list_all(&client, &["webhooks"], &query, "webhooks", None).await?;
            if json {
                print_json(&json!({ "data": hooks }));
            } else {
                print!("{}", webhooks_table(&hooks));
            }
        }
        WebhooksCommand::Get { id } => {
            let hook = client
                .call(Method::GET, &["webhooks", &id], &[], None)
                .await?;
            show(&hook, json);
        }
        WebhooksCommand::Update {
            id,
            name,
            webhook_url,
            events,
            options,
            active,
            no_headers,
            no_rate_limit,
            no_filter,
        } => {
            let mut body = options.body()?;
            if let Some(name) = name {
                body.insert("name".into(), Value::String(name));
            }
            if let Some(url) = webhook_url {
                body.insert("url".into(), Value::String(url));
            }
            if let Some(events) = events {
                body.insert("events".into(), json!(events));
            }
            if active {
                body.insert("is_active".into(), Value::Bool(true));
            }
            if no_headers {
                body.insert("headers".into(), Value::Null);
            }
            if no_rate_limit {
                body.insert("rate_limit_per_second".into(), Value::Null);
            }
            if no_filter {
                body.insert("filter".into(), Value::Null);
            }
            if body.is_empty() {
                return Err(Failure::Other(
                    "nothing to update: give at least one setting (see --help)".into(),
                ));
            }
            let hook = client
                .call(
                    Method::PATCH,
                    &["webhooks", &id],
                    &[],
                    Some(&Value::Object(body)),
                )
                .await?;
            show(&hook, json);
        }
        WebhooksCommand::Enable { id } => {
            let hook = client
                .call(Method::POST, &["webhooks", &id, "enable"], &[], None)
                .await?;
            show(&hook, json);
        }
        WebhooksCommand::Disable { id } => {
            let hook = client
                .call(Method::POST, &["webhooks", &id, "disable"], &[], None)
                .await?;
            show(&hook, json);
        }
        WebhooksCommand::Delete { id } => {
            client
                .call(Method::DELETE, &["webhooks", &id], &[], None)
                .await?;
            if json {
                print_json(&json!({ "deleted": id }));
            } else {
                println!("Deleted webhook {id}; its pending deliveries are cancelled.");
            }
        }
        WebhooksCommand::Events => {
            let catalogue = client
                .call(Method::GET, &["webhooks", "events"], &[], None)
                .await?;
            if json {
                print_json(&catalogue);
            } else {
                let mut rows = vec![vec!["EVENT TYPE".into(), "DESCRIPTION".into()]];
                if let Some(Value::Array(types)) = catalogue.get("data") {
                    rows.extend(
                        types
                            .iter()
                            .map(|t| vec![field(t, "name"), field(t, "description")]),
                    );
                }
                print!("{}", table(&rows));
            }
        }
        WebhooksCommand::Test {
            id,
            event_type,
            payload,
        } => activity::test(&client, &id, event_type, payload, json).await?,
        WebhooksCommand::Logs {
            id,
            limit,
            status,
            event_type,
            since,
            until,
        } => {
            let filters = activity::LogFilters {
                status,
                event_type,
                since,
                until,
            };
            activity::logs(&client, &id, limit, &filters, json).await?;
        }
        WebhooksCommand::Deliveries {
            id,
            limit,
            status,
            since,
            until,
        } => {
            let filters = recovery::DeliveryFilters {
                status,
                since,
                until,
            };
            recovery::deliveries(&client, &id, limit, &filters, json).await?;
        }
        WebhooksCommand::Retry { id, delivery_id } => {
            recovery::retry(&client, &id, &delivery_id, json).await?;
        }
        WebhooksCommand::Recover {
            id,
            since,
            until,
            wait,
            timeout,
        } => {
            let args = recovery::RecoverArgs {
                since,
                until,
                wait,
                timeout,
            };
            recovery::recover(&client, &id, args, json).await?;
        }
        WebhooksCommand::Recovery {
            id,
            recovery_id,
            cancel,
        } => recovery::recovery(&client, &id, &recovery_id, cancel, json).await?,
        WebhooksCommand::Log { id, log_id } => activity::log(&client, &id, &log_id, json).await?,
        WebhooksCommand::Stats { id, since } => {
            activity::stats(&client, &id, since.as_deref(), json).await?;
        }
        WebhooksCommand::RotateSecret { id, grace, secret } => {
            let mut body = Map::new();
            if let Some(grace) = grace {
                body.insert("grace_period".into(), Value::String(grace));
            }
            if let Some(secret) = secret {
                body.insert("secret".into(), Value::String(secret));
            }
            let answer = client
                .call(
                    Method::POST,
                    &["webhooks", &id, "rotate-secret"],
                    &[],
                    Some(&Value::Object(body)),
                )
                .await?;
            if json {
                print_json(&answer);
            } else {
                println!(
                    "Rotated the signing secret of {id}. The new one:\n\n    {}\n",
                    field(&answer, "secret")
                );
                match answer
                    .get("previous_secret_expires_at")
                    .and_then(Value::as_str)
                {
                    Some(until) => {
                        println!("The previous secret keeps signing beside it until {until}.");
                    }
                    None => println!("The previous secret no longer signs."),
                }
            }
        }
        WebhooksCommand::Secret { id } => {
            let answer = client
                .call(Method::GET, &["webhooks", &id, "secret"], &[], None)
                .await?;
            if json {
                print_json(&answer);
            } else {
                // The secret alone on the first line, so `$(hookrelay webhooks secret ID)`
                // outside a rotation is the secret.
                println!("{}", field(&answer, "secret"));
                if answer.get("previous_secret").is_some() {
                    println!(
                        "previous: {} (signs until {})",
                        field(&answer, "previous_secret"),
                        field(&answer, "previous_secret_expires_at")
                    );
                }
            }
        }
        WebhooksCommand::Headers { id } => {
            let answer = client
                .call(Method::GET, &["webhooks", &id, "headers"], &[], None)
                .await?;
            if json {
                print_json(&answer);
            } else if let Some(Value::Object(headers)) = answer.get("headers") {
                // One `Name: value` a line, as `--header` takes them.
                for (name, value) in headers {
                    println!("{name}: {}", value.as_str().unwrap_or_default());
                }
            }
        }
    }
    Ok(())
}

impl WebhookOptions {
    /// The options given, as fields of a request body.
    fn body(self) -> Result<Map<String, Value>, Failure> {
        let mut body = Map::new();
        if let Some(description) = self.description {
            body.insert("description".into(), Value::String(description));
        }
        if let Some(secret) = self.secret {
            body.insert("secret".into(), Value::String(secret));
        }
        if let Some(n) = self.retry_count {
            body.insert("retry_count".into(), json!(n));
        }
        match self.retry_schedule.as_slice() {
            [] => {}
            [preset] if preset.trim() == crate::domain::retry::STANDARD_PRESET => {
                body.insert("retry_schedule".into(), json!(preset.trim()));
            }
            delays => {
                let delays: Vec<&str> = delays.iter().map(|d| d.trim()).collect();
                body.insert("retry_schedule".into(), json!(delays));
            }
        }
        if let Some(n) = self.timeout_seconds {
            body.insert("timeout_seconds".into(), json!(n));
        }
        if !self.header.is_empty() {
            body.insert("headers".into(), Value::Object(headers(&self.header)?));
        }
        if let Some(n) = self.rate_limit_per_second {
            body.insert("rate_limit_per_second".into(), json!(n));
        }
        if let Some(filter) = self.filter {
            // Only read as JSON here: the server checks the operators and paths.
            let filter: Value = serde_json::from_str(&filter)
                .map_err(|e| Failure::Other(format!("--filter is not JSON: {e}")))?;
            body.insert("filter".into(), filter);
        }
        if self.inactive {
            body.insert("is_active".into(), Value::Bool(false));
        }
        Ok(body)
    }
}

/// `Name: value` arguments as a headers object; the server checks names and values.
fn headers(args: &[String]) -> Result<Map<String, Value>, Failure> {
    let mut headers = Map::new();
    for arg in args {
        let Some((name, value)) = arg.split_once(':') else {
            return Err(Failure::Other(format!(
                "--header {arg:?}: expected NAME:VALUE, e.g. \"X-Api-Key: abc\""
            )));
        };
        headers.insert(
            name.trim().to_owned(),
            Value::String(value.trim().to_owned()),
        );
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_split_at_the_first_colon() {
        let parsed = headers(&["X-Api-Key: a:b".into(), "x-env:prod".into()]).unwrap();
        assert_eq!(
            Value::Object(parsed),
            json!({"X-Api-Key": "a:b", "x-env": "prod"})
        );
        let err = headers(&["no-colon".into()]).unwrap_err().to_string();
        assert!(
            err.starts_with("error: --header \"no-colon\": expected NAME:VALUE"),
            "{err}"
        );
    }
}
