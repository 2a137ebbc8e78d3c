//! `hookrelay event-types list|get|create|update`: the operator's side of the event-type
//! registry, with the admin key.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{Client, Connection, Failure, field, pairs, print_json, table};

#[derive(Debug, Args)]
pub struct EventTypesArgs {
    #[command(subcommand)]
    pub command: EventTypesCommand,

    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum EventTypesCommand {
    /// List the registry: built-in types first, then those added.
    List,
    /// Show one type, with its schema and sample.
    Get {
        /// The type's name, e.g. `invoice.paid`.
        name: String,
    },
    /// Add a type; every node accepts it at once.
    Create {
        /// A lowercase `group.action`, e.g. `invoice.paid`.
        name: String,
        /// What the event means, for tenants choosing what to subscribe to.
        #[arg(long)]
        description: String,
        /// A JSON Schema (JSON) that every event's `data` must satisfy.
        #[arg(long)]
        schema: Option<String>,
        /// An example `data` (JSON object); it must satisfy the schema.
        #[arg(long)]
        sample: Option<String>,
    },
    /// Change a type's description, schema or sample, or deprecate it.
    Update {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, conflicts_with = "no_schema")]
        schema: Option<String>,
        /// Remove the schema: any object is accepted again.
        #[arg(long)]
        no_schema: bool,
        #[arg(long)]
        sample: Option<String>,
        /// Flag the type as on its way out (still accepted and delivered).
        #[arg(long, conflicts_with = "undeprecate")]
        deprecate: bool,
        /// Take the flag off again.
        #[arg(long)]
        undeprecate: bool,
    },
}

fn json_arg(flag: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Other(format!("--{flag} is not JSON: {e}")))
}

pub async fn event_types(args: EventTypesArgs) -> Result<(), Failure> {
    let client = Client::new(&args.connection)?;
    let json = args.connection.json;
    let answer = match args.command {
        EventTypesCommand::List => {
            let list = client
                .call(Method::GET, &["event-types"], &[], None)
                .await?;
            if json {
                print_json(&list);
            } else {
                let mut rows = vec![vec![
                    "NAME".into(),
                    "SCHEMA".into(),
                    "STATUS".into(),
                    "DESCRIPTION".into(),
                ]];
                for t in list["data"].as_array().into_iter().flatten() {
                    rows.push(vec![
                        field(t, "name"),
                        if t["schema"].is_null() { "-" } else { "yes" }.into(),
                        match (t["deprecated"].as_bool(), t["builtin"].as_bool()) {
                            (Some(true), _) => "deprecated",
                            (_, Some(true)) => "built-in",
                            _ => "added",
                        }
                        .into(),
                        field(t, "description"),
                    ]);
                }
                print!("{}", table(&rows));
            }
            return Ok(());
        }
        EventTypesCommand::Get { name } => {
            client
                .call(Method::GET, &["event-types", &name], &[], None)
                .await?
        }
        EventTypesCommand::Create {
            name,
            description,
            schema,
            sample,
        } => {
            let mut body = json!({"name": name, "description": description});
            if let Some(schema) = schema {
                body["schema"] = json_arg("schema", &schema)?;
            }
            if let Some(sample) = sample {
                body["sample"] = json_arg("sample", &sample)?;
            }
            client
                .call(Method::POST, &["event-types"], &[], Some(&body))
                .await?
        }
        EventTypesCommand::Update {
            name,
            description,
            schema,
            no_schema,
            sample,
            deprecate,
            undeprecate,
        } => {
            let mut body = Map::new();
            if let Some(description) = description {
                body.insert("description".into(), Value::String(description));
            }
            if let Some(schema) = schema {
                body.insert("schema".into(), json_arg("schema", &schema)?);
            } else if no_schema {
                body.insert("schema".into(), Value::Null);
            }
            if let Some(sample) = sample {
                body.insert("sample".into(), json_arg("sample", &sample)?);
            }
            if deprecate || undeprecate {
                body.insert("deprecated".into(), Value::Bool(deprecate));
            }
            client
                .call(
                    Method::PATCH,
                    &["event-types", &name],
                    &[],
                    Some(&Value::Object(body)),
                )
                .await?
        }
    };
    if json {
        print_json(&answer);
    } else {
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
        print!(
            "{}",
            pairs(&[
                ("name", field(&answer, "name")),
                ("description", field(&answer, "description")),
                ("built-in", field(&answer, "builtin")),
                ("deprecated", field(&answer, "deprecated")),
                ("updated", field(&answer, "updated_at")),
            ])
        );
        if !answer["schema"].is_null() {
            println!("schema:\n{}", pretty(&answer["schema"]));
        }
        println!("sample:\n{}", pretty(&answer["sample"]));
    }
    Ok(())
}
