//! `chat3-api tenant ...` and `chat3-api key ...`: administration straight against the database,
//! printing JSON (one object per line) so scripts can read it.

use chat3_core::store::Store;
use chat3_core::telemetry::progress_bar;
use chat3_core::{tenant_deletion, tenants};
use chat3_sdk::{CreateApiKey, Scope, TenantId};

use crate::config::{KeyCommand, TenantCommand};

fn print<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

fn tenant_id(s: &str) -> anyhow::Result<TenantId> {
    Ok(s.parse()?)
}

/// Runs a tenant command.
pub async fn tenant(cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::Create {
            tenant_id: id,
            name,
            mongo,
        } => {
            let store = Store::connect(&mongo).await?;
            store
                .ensure_indexes(std::time::Duration::from_secs(7 * 86400))
                .await?;
            print(&tenants::create_tenant(&store, &tenant_id(&id)?, name.as_deref()).await?)
        }
        TenantCommand::List { mongo } => {
            let store = Store::connect(&mongo).await?;
            let mut page = 1;
            loop {
                let p = tenants::list_tenants(&store, &Default::default(), page, 100).await?;
                for t in &p.data {
                    print(t)?;
                }
                if page >= p.pagination.pages {
                    return Ok(());
                }
                page += 1;
            }
        }
        TenantCommand::Delete {
            tenant_id: id,
            yes,
            key_cache_seconds,
            request_timeout_secs,
            mongo,
        } => {
            let store = Store::connect(&mongo).await?;
            let tenant = tenant_id(&id)?;
            let found = tenants::get_tenant(&store, &tenant).await?;
            if !yes && found.deletion.is_none() {
                let counts = tenant_deletion::census(&store, &tenant).await?;
                print(&serde_json::json!({"tenantId": tenant, "documents": counts}))?;
                anyhow::bail!(
                    "nothing deleted: pass --yes to delete tenant '{tenant}' and all its data"
                );
            }
            let marked = tenant_deletion::begin(&store, &tenant).await?;
            let total = marked.deletion.as_ref().map_or(0, |d| d.total);
            let bar = progress_bar(total, false);
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let grace = tenant_deletion::grace(key_cache_seconds, request_timeout_secs);
            let done = tenant_deletion::run(&store, &tenant, grace, |p| {
                bar.set_length(p.total.max(p.deleted));
                bar.set_position(p.deleted);
            })
            .await?;
            bar.finish_and_clear();
            print(&serde_json::json!({"tenantId": tenant, "deleted": done}))
        }
    }
}

/// Runs a key command.
pub async fn key(cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Create {
            tenant_id: id,
            name,
            scopes,
            mongo,
        } => {
            let store = Store::connect(&mongo).await?;
            let scopes = if scopes.is_empty() {
                None
            } else {
                Some(
                    scopes
                        .iter()
                        .map(|s| s.parse::<Scope>())
                        .collect::<Result<Vec<_>, _>>()?,
                )
            };
            let req = CreateApiKey { name, scopes };
            print(&tenants::create_key(&store, &tenant_id(&id)?, &req).await?)
        }
        KeyCommand::List {
            tenant_id: id,
            mongo,
        } => {
            let store = Store::connect(&mongo).await?;
            let tenant = tenant_id(&id)?;
            for page in 1.. {
                let p = tenants::list_keys(&store, &tenant, page, 100).await?;
                for k in &p.data {
                    print(k)?;
                }
                if page >= p.pagination.pages {
                    break;
                }
            }
            Ok(())
        }
        KeyCommand::Revoke {
            tenant_id: id,
            key_id,
            mongo,
        } => {
            let store = Store::connect(&mongo).await?;
            print(&tenants::revoke_key(&store, &tenant_id(&id)?, &key_id).await?)
        }
    }
}
