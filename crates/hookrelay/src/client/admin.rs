//! `hookrelay tenants create|list` and `hookrelay keys create|list|revoke`: the operator's
//! side, with the admin key.

use std::io::IsTerminal as _;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{Client, Connection, Failure, field, print_json, table};

/// Page size when following a list to its end.
/// The API's largest page.
const PAGE: usize = 200;

#[derive(Debug, Args)]
pub struct TenantsArgs {
    #[command(subcommand)]
    pub command: TenantsCommand,

    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant; prints its id.
    Create {
        /// The tenant's name (1–100 characters).
        name: String,
    },
    /// List every tenant, newest first.
    List,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,

    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key for a tenant; the key is printed this once.
    Create {
        /// The tenant (`ten_…`).
        tenant_id: String,
        /// A name to tell keys apart (e.g. the service using it).
        #[arg(long)]
        name: Option<String>,
        /// When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List a tenant's keys (never the keys themselves: their prefixes).
    List {
        /// The tenant (`ten_…`).
        tenant_id: String,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        /// The tenant (`ten_…`).
        tenant_id: String,
        /// The key's id (`key_…`).
        key_id: String,
    },
}

pub async fn tenants(args: TenantsArgs) -> Result<(), Failure> {
    let client = Client::new(&args.connection)?;
    let json = args.connection.json;
    match args.command {
        TenantsCommand::Create { name } => {
            let tenant = client
                .call(
                    Method::POST,
                    &["tenants"],
                    &[],
                    Some(&json!({ "name": name })),
                )
                .await?;
            if json {
                print_json(&tenant);
            } else {
                println!(
                    "Created tenant {} ({})",
                    field(&tenant, "id"),
                    field(&tenant, "name")
                );
            }
        }
        TenantsCommand::List => {
            let tenants = list_all(&client, &["tenants"], &[], "tenants", None).await?;
            if json {
                print_json(&json!({ "data": tenants }));
            } else {
                let mut rows = vec![vec!["ID".into(), "NAME".into(), "CREATED".into()]];
                rows.extend(
                    tenants
                        .iter()
                        .map(|t| vec![field(t, "id"), field(t, "name"), field(t, "created_at")]),
                );
                print!("{}", table(&rows));
            }
        }
    }
    Ok(())
}

pub async fn keys(args: KeysArgs) -> Result<(), Failure> {
    let client = Client::new(&args.connection)?;
    let json = args.connection.json;
    match args.command {
        KeysCommand::Create {
            tenant_id,
            name,
            expires_at,
        } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), Value::String(name));
            }
            if let Some(expires_at) = expires_at {
                body.insert("expires_at".into(), Value::String(expires_at));
            }
            let key = client
                .call(
                    Method::POST,
                    &["tenants", &tenant_id, "keys"],
                    &[],
                    Some(&Value::Object(body)),
                )
                .await?;
            if json {
                print_json(&key);
            } else {
                println!(
                    "Created key {} for tenant {} (name: {}, expires: {}).",
                    field(&key, "id"),
                    field(&key, "tenant_id"),
                    field(&key, "name"),
                    key.get("expires_at")
                        .and_then(Value::as_str)
                        .unwrap_or("never"),
                );
                println!(
                    "Shown this once; keep it safe:\n\n    {}\n",
                    field(&key, "key")
                );
            }
        }
        KeysCommand::List { tenant_id } => {
            let keys =
                list_all(&client, &["tenants", &tenant_id, "keys"], &[], "keys", None).await?;
            if json {
                print_json(&json!({ "data": keys }));
            } else {
                let mut rows = vec![vec![
                    "ID".into(),
                    "PREFIX".into(),
                    "NAME".into(),
                    "CREATED".into(),
                    "LAST USED".into(),
                    "REVOKED".into(),
                ]];
                rows.extend(keys.iter().map(|k| {
                    [
                        "id",
                        "prefix",
                        "name",
                        "created_at",
                        "last_used_at",
                        "revoked_at",
                    ]
                    .iter()
                    .map(|f| field(k, f))
                    .collect()
                }));
                print!("{}", table(&rows));
            }
        }
        KeysCommand::Revoke { tenant_id, key_id } => {
            client
                .call(
                    Method::DELETE,
                    &["tenants", &tenant_id, "keys", &key_id],
                    &[],
                    None,
                )
                .await?;
            if json {
                print_json(&json!({ "revoked": key_id, "tenant_id": tenant_id }));
            } else {
                println!("Revoked key {key_id} of tenant {tenant_id}; it no longer works.");
            }
        }
    }
    Ok(())
}

/// Follows `next_cursor` to the end of a list (with `filters` in the query), or until `max`
/// rows. Shows a count on a terminal while more than one page is fetched.
pub(super) async fn list_all(
    client: &Client,
    segments: &[&str],
    filters: &[(&str, &str)],
    what: &str,
    max: Option<usize>,
) -> Result<Vec<Value>, Failure> {
    let max = max.unwrap_or(usize::MAX);
    let show = std::io::stderr().is_terminal();
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let mut shown = false;
    while all.len() < max {
        let page = (max - all.len()).min(PAGE).to_string();
        let mut query = filters.to_vec();
        query.push(("limit", &page));
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let page = client.call(Method::GET, segments, &query, None).await?;
        if let Some(Value::Array(data)) = page.get("data") {
            all.extend(data.iter().cloned());
        }
        cursor = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
        if show {
            eprint!("\rfetched {} {what}…", all.len());
            shown = true;
        }
    }
    if shown {
        eprint!("\r\x1b[K");
    }
    all.truncate(max);
    Ok(all)
}
