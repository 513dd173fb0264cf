//! `fastgate rules list|show|apply|delete|toggle`: credential health rules
//! managed at runtime, on a running gateway (`--admin-url`) or in the database of
//! `--config`. The file's rules are listed and shown, and read-only.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use fastgate_config::RuleConfig;
use fastgate_live::{Change, Source, rule_view};
use fastgate_store::RuleEventFilter;
use reqwest::Method;
use serde_json::Value;

use super::admin_client::{AdminArgs, AdminClient};
use super::live::{LiveDb, typed};
use super::output::{done, print_done, print_list, print_object, text};

/// How many of a rule's latest firings `show` prints (as the admin API does).
const RECENT_EVENTS: u32 = 20;

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(subcommand)]
    pub cmd: RulesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List rules (the file's, then the API's).
    List,
    /// Show one rule with its latest firings.
    Show { name: String },
    /// Create or replace rules from a file: one rule, a list of rules, or a
    /// `rules:` section as in the config file (YAML or JSON; `-` for stdin).
    Apply {
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    /// Delete an API-managed rule.
    Delete { name: String },
    /// Switch an API-managed rule on or off (flips it without --enabled).
    Toggle {
        name: String,
        #[arg(long)]
        enabled: Option<bool>,
    },
}

pub async fn run(path: Option<&Path>, json: bool, args: RulesArgs) -> anyhow::Result<()> {
    match AdminClient::from_args(&args.admin)? {
        Some(client) => over_http(&client, json, args.cmd).await,
        None => {
            let mut db = LiveDb::open(path, json).await?;
            let result = in_db(&mut db, json, args.cmd).await;
            db.close().await;
            result
        }
    }
}

/// The rules of a file: `{rules: [...]}`, `[...]` or one rule.
fn read_rules(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let v: Value = yaml_serde::from_str(&text)
        .with_context(|| format!("{} is neither YAML nor JSON", path.display()))?;
    let list = match v {
        Value::Object(mut obj) if obj.contains_key("rules") && !obj.contains_key("name") => {
            obj.remove("rules").unwrap_or_default()
        }
        one @ Value::Object(_) => Value::Array(vec![one]),
        list => list,
    };
    match list {
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => Ok(items),
        _ => anyhow::bail!(
            "{}: expected a rule, a list of rules or a `rules:` section",
            path.display()
        ),
    }
}

fn print_rules(items: &[Value], json: bool) {
    print_list(
        items,
        json,
        |r| {
            format!(
                "{:<24} {:<7} {:<8} when {} -> {}",
                text(r, "name"),
                text(r, "source"),
                if r["enabled"] == false { "off" } else { "on" },
                r["when"],
                r["actions"]
            )
        },
        &format!(
            "{:<24} {:<7} {:<8} condition -> actions",
            "name", "source", "enabled"
        ),
    );
}

async fn over_http(client: &AdminClient, json: bool, cmd: RulesCommand) -> anyhow::Result<()> {
    match cmd {
        RulesCommand::List => print_rules(&client.list(&["rules"]).await?, json),
        RulesCommand::Show { name } => {
            print_object(
                &client.call(Method::GET, &["rules", &name], None).await?,
                json,
            );
        }
        RulesCommand::Apply { file } => {
            for rule in read_rules(&file)? {
                let name = text(&rule, "name");
                let after = client
                    .call(Method::PUT, &["rules", &name], Some(&rule))
                    .await?;
                print_done(json, Some(&after), "rule", &name, "stored");
            }
        }
        RulesCommand::Delete { name } => {
            let after = client.call(Method::DELETE, &["rules", &name], None).await?;
            print_done(json, Some(&after), "rule", &name, "deleted");
        }
        RulesCommand::Toggle { name, enabled } => {
            let body = enabled.map(|e| serde_json::json!({ "enabled": e }));
            let path = ["rules", name.as_str(), "toggle"];
            let after = client.call(Method::POST, &path, body.as_ref()).await?;
            print_done(json, Some(&after), "rule", &name, "toggled");
        }
    }
    Ok(())
}

/// Every rule (the file's, then the API's) as the admin API lists it.
fn rules(db: &LiveDb) -> Vec<Value> {
    let file = db.cfg.rules.iter().map(|r| rule_view(r, Source::Config));
    let api = db.live.rules.iter().map(|r| rule_view(r, Source::Api));
    file.chain(api).collect()
}

/// One rule plus `recent_events`, as `GET /admin/api/rules/{name}` shows it.
async fn show(db: &LiveDb, name: &str) -> anyhow::Result<Value> {
    let mut view = rules(db)
        .into_iter()
        .find(|r| r["name"] == name)
        .ok_or_else(|| anyhow::anyhow!("rule '{name}' not found"))?;
    let filter = RuleEventFilter {
        rule: Some(name.to_owned()),
        limit: Some(RECENT_EVENTS),
        ..Default::default()
    };
    let events = db.store.list_rule_events(&filter).await?;
    if let Some(obj) = view.as_object_mut() {
        let events = events
            .into_iter()
            .map(fastgate_admin::rule_event_view)
            .collect();
        obj.insert("recent_events".into(), Value::Array(events));
    }
    Ok(view)
}

async fn in_db(db: &mut LiveDb, json: bool, cmd: RulesCommand) -> anyhow::Result<()> {
    let changes = match cmd {
        RulesCommand::List => {
            print_rules(&rules(db), json);
            return Ok(());
        }
        RulesCommand::Show { name } => {
            print_object(&show(db, &name).await?, json);
            return Ok(());
        }
        RulesCommand::Apply { file } => read_rules(&file)?
            .into_iter()
            .map(|mut body| {
                if let Some(obj) = body.as_object_mut() {
                    obj.remove("source");
                    obj.remove("recent_events");
                }
                let rule: RuleConfig = typed(body)?;
                Ok(Change::PutRule {
                    rule,
                    must_be_new: false,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        RulesCommand::Delete { name } => vec![Change::DeleteRule(name)],
        RulesCommand::Toggle { name, enabled } => vec![Change::ToggleRule { name, enabled }],
    };
    for change in changes {
        let planned = db.apply(change).await?;
        // The next rule of the file is planned on top of this one.
        db.live = planned.next.clone();
        let after = planned.after.filter(|_| planned.action != "delete");
        print_done(
            json,
            after.as_ref(),
            "rule",
            &planned.name,
            done(planned.action),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_one_rule_a_list_or_a_section() {
        let one = "name: a\nwhen: { status: 401 }\nactions: [ { disable: 1h } ]\n";
        let (_d, p) = file(one);
        assert_eq!(read_rules(&p).unwrap()[0]["name"], "a");
        let (_d, p) = file(
            "rules:\n  - { name: a, when: { status: 401 }, actions: [ { log: true } ] }\n  - { name: b, when: { status: 402 }, actions: [ { log: true } ] }\n",
        );
        let names: Vec<Value> = read_rules(&p)
            .unwrap()
            .into_iter()
            .map(|r| r["name"].clone())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let (_d, p) = file("[ { name: a }, { name: b } ]");
        assert_eq!(read_rules(&p).unwrap().len(), 2);
        for bad in ["[]", "5", "[ 1 ]", "rules: 3"] {
            let (_d, p) = file(bad);
            assert!(read_rules(&p).is_err(), "{bad}");
        }
    }
}
