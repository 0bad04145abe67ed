//! `tessera user`: add, list, remove users and rotate their secrets. On a
//! stopped server's data folder the CLI opens the store itself; when a
//! running server holds the database (redb locks it), it asks that server's
//! admin API (`s3/admin.rs`), found through `DATA/server-info`, so the
//! server honours the change at its next request. With `--meta`, it
//! changes the database of gateways directly (they read users from it at
//! each request).

use anyhow::{anyhow, bail};
use clap::Subcommand;
use http::Method;
use serde_json::json;

use crate::admin::{ask_server, DataFolder};
use crate::bench::xml::texts;
use crate::s3::admin::USERS_PATH;
use crate::store::users::{valid_name, UserRecord};

#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Add a user; prints its access key id and secret (the only time the
    /// secret is shown) and its canonical id.
    Add {
        name: String,
        #[command(flatten)]
        at: DataFolder,
        /// An email address, for ACL grants by email.
        #[arg(long)]
        email: Option<String>,
        /// Print one JSON object: access_key_id, secret_access_key, canonical_id.
        #[arg(long)]
        json: bool,
    },
    /// List users (never their secrets).
    List {
        #[command(flatten)]
        at: DataFolder,
        /// Print one JSON array of {name, access_key_id, canonical_id, email}.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user: their key is refused at once; their buckets stay.
    Remove {
        name: String,
        #[command(flatten)]
        at: DataFolder,
    },
    /// Give a user a new secret; the old one is refused at once.
    Rotate {
        name: String,
        #[command(flatten)]
        at: DataFolder,
        /// Print one JSON object: access_key_id, secret_access_key, canonical_id.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, at, email, json } => {
            check_name(&name)?;
            let user = match at.server()? {
                Some(info) => {
                    let mut query = vec![("name", name.clone())];
                    query.extend(email.map(|e| ("email", e)));
                    one(&ask_server(&at.data, &info, Method::POST, USERS_PATH, &query)?)?
                }
                None => at.offline(|s| Ok(s.add_user(crate::config::new_user(&name, email)?)?))?,
            };
            print_keys(&user, json, "added")
        }
        UserCommand::Rotate { name, at, json } => {
            check_name(&name)?;
            let user = match at.server()? {
                Some(info) => {
                    let query = [("name", name.clone()), ("rotate", String::new())];
                    one(&ask_server(&at.data, &info, Method::POST, USERS_PATH, &query)?)?
                }
                None => at.offline(|s| Ok(s.set_user_secret(&name, crate::config::new_secret()?)?))?,
            };
            print_keys(&user, json, "given a new secret")
        }
        UserCommand::Remove { name, at } => {
            check_name(&name)?;
            match at.server()? {
                Some(info) => drop(ask_server(&at.data, &info, Method::DELETE, USERS_PATH, &[("name", name.clone())])?),
                None => drop(at.offline(|s| Ok(s.remove_user(&name)?))?),
            }
            println!("User {name} removed.");
            Ok(())
        }
        UserCommand::List { at, json } => {
            let users = match at.server()? {
                Some(info) => parse_users(&ask_server(&at.data, &info, Method::GET, USERS_PATH, &[])?)?,
                None => at.offline(|s| Ok(s.users()?))?,
            };
            print_list(&users, json);
            Ok(())
        }
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    match valid_name(name) {
        true => Ok(()),
        false => bail!("a user name is 1-64 of letters, digits and +=,.@_-, not {name:?}"),
    }
}

fn parse_users(doc: &str) -> anyhow::Result<Vec<UserRecord>> {
    let mut users = Vec::new();
    for entry in doc.split("<User>").skip(1) {
        let field = |name: &str| texts(entry, name).next();
        let required = |name: &str| field(name).ok_or_else(|| anyhow!("the server's reply lacks <{name}>: {doc}"));
        users.push(UserRecord {
            name: required("Name")?,
            access_key: required("AccessKeyId")?,
            secret_key: field("SecretAccessKey").unwrap_or_default(),
            canonical_id: required("CanonicalId")?,
            email: field("Email"),
            created_ms: 0,
        });
    }
    Ok(users)
}

fn one(doc: &str) -> anyhow::Result<UserRecord> {
    parse_users(doc)?.into_iter().next().ok_or_else(|| anyhow!("the server's reply names no user: {doc}"))
}

fn print_keys(user: &UserRecord, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        let keys = json!({
            "access_key_id": user.access_key,
            "secret_access_key": user.secret_key,
            "canonical_id": user.canonical_id,
        });
        println!("{keys}");
    } else {
        println!("User {} {what}. Keep the secret: it is not shown again.", user.name);
        println!("  access key id:     {}", user.access_key);
        println!("  secret access key: {}", user.secret_key);
        println!("  canonical id:      {}", user.canonical_id);
    }
    Ok(())
}

fn print_list(users: &[UserRecord], json: bool) {
    if json {
        let list: Vec<serde_json::Value> = users
            .iter()
            .map(|u| json!({"name": u.name, "access_key_id": u.access_key, "canonical_id": u.canonical_id, "email": u.email}))
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return;
    }
    for u in users {
        println!("{}\t{}\t{}\t{}", u.name, u.access_key, u.canonical_id, u.email.as_deref().unwrap_or("-"));
    }
}
