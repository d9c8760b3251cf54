//! `cph admin`: identities, keys, grants and host capacity, on the server's store.

use crate::config::CommonArgs;
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Domains (accounts).
    Domain {
        #[command(subcommand)]
        cmd: DomainCmd,
    },
    /// Projects of a domain.
    Project {
        #[command(subcommand)]
        cmd: ProjectCmd,
    },
    /// Users of a domain.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Access keys (AK/SK) of a user.
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Grant an action pattern (e.g. cph:servers:list, cph:*:*, *) to a user.
    Grant {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        user: String,
        /// Project name; all of the domain's projects when omitted.
        #[arg(long)]
        project: Option<String>,
        action: String,
    },
    /// List a user's grants.
    Grants {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        user: String,
    },
    /// Host-pool capacity per server model.
    Capacity {
        #[command(subcommand)]
        cmd: CapacityCmd,
    },
    /// Shared bandwidths, which purchases reference by id.
    Bandwidth {
        #[command(subcommand)]
        cmd: BandwidthCmd,
    },
    /// The access audit trail: SSH logins, tunnels and refusals at servers' gateways, newest
    /// first.
    Audit {
        /// Only events of this project.
        #[arg(long)]
        project_id: Option<String>,
        /// Only events of this server.
        #[arg(long)]
        server_id: Option<String>,
        /// Only refused events.
        #[arg(long)]
        refused: bool,
        /// Only events of the last this many minutes.
        #[arg(long)]
        since_minutes: Option<i64>,
        /// Most events shown (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum BandwidthCmd {
    /// Create a shared bandwidth in a project.
    Create {
        /// Project id.
        #[arg(long)]
        project_id: String,
        /// Size in Mbit/s.
        #[arg(long)]
        size: i64,
        /// 0 charged by bandwidth, 1 by traffic.
        #[arg(long, default_value_t = 0)]
        charge_mode: i64,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    Create { name: String },
    List,
}

#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    Create {
        #[arg(long)]
        domain: String,
        name: String,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    Create {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        password: Option<String>,
        name: String,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Issue a new AK/SK; the secret is printed once.
    Create {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        user: String,
    },
    /// List a user's keys (secrets are not shown).
    List {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        user: String,
    },
    Revoke {
        access_key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CapacityCmd {
    Set {
        server_model_name: String,
        capacity: i64,
    },
    List,
}

pub async fn run(a: AdminArgs) -> anyhow::Result<()> {
    let serve = crate::config::ServeArgs {
        common: a.common.clone(),
        ..Default::default()
    };
    let r = crate::config::resolve(&serve)?;
    let svc = crate::serve::build_service(&r).await?;
    let out = match a.command {
        AdminCommand::Domain {
            cmd: DomainCmd::Create { name },
        } => {
            let d = svc.admin_create_domain(&name).await?;
            json!({"domain_id": d.domain_id, "name": d.name})
        }
        AdminCommand::Domain {
            cmd: DomainCmd::List,
        } => {
            let ds = svc.admin_domains().await?;
            json!(
                ds.iter()
                    .map(|d| json!({"domain_id": d.domain_id, "name": d.name}))
                    .collect::<Vec<_>>()
            )
        }
        AdminCommand::Project {
            cmd: ProjectCmd::Create { domain, name },
        } => {
            let p = svc.admin_create_project(&domain, &name).await?;
            json!({"project_id": p.project_id, "name": p.name, "domain_id": p.domain_id})
        }
        AdminCommand::Project {
            cmd: ProjectCmd::List { domain },
        } => {
            let ps = svc.admin_projects(domain.as_deref()).await?;
            json!(ps.iter().map(|p| json!({"project_id": p.project_id, "name": p.name, "domain_id": p.domain_id})).collect::<Vec<_>>())
        }
        AdminCommand::User {
            cmd:
                UserCmd::Create {
                    domain,
                    password,
                    name,
                },
        } => {
            let u = svc
                .admin_create_user(&domain, &name, password.as_deref())
                .await?;
            json!({"user_id": u.user_id, "name": u.name, "domain_id": u.domain_id})
        }
        AdminCommand::User {
            cmd: UserCmd::List { domain },
        } => {
            let us = svc.admin_users(domain.as_deref()).await?;
            json!(
                us.iter()
                    .map(
                        |u| json!({"user_id": u.user_id, "name": u.name, "domain_id": u.domain_id})
                    )
                    .collect::<Vec<_>>()
            )
        }
        AdminCommand::Key {
            cmd: KeyCmd::Create { domain, user },
        } => {
            let k = svc.admin_create_access_key(&domain, &user).await?;
            json!({"access_key": k.access_key, "secret_key": k.secret_key.expose()})
        }
        AdminCommand::Key {
            cmd: KeyCmd::List { domain, user },
        } => {
            let ks = svc.admin_list_access_keys(&domain, &user).await?;
            json!(ks.iter().map(|k| json!({"access_key": k.access_key, "active": k.active, "created_at": k.created_at})).collect::<Vec<_>>())
        }
        AdminCommand::Key {
            cmd: KeyCmd::Revoke { access_key },
        } => {
            svc.admin_revoke_access_key(&access_key).await?;
            json!({"revoked": access_key})
        }
        AdminCommand::Grant {
            domain,
            user,
            project,
            action,
        } => {
            svc.admin_grant(&domain, &user, project.as_deref(), &action)
                .await?;
            json!({"granted": action, "user": user, "project": project.unwrap_or_else(|| "*".into())})
        }
        AdminCommand::Grants { domain, user } => {
            let gs = svc.admin_grants(&domain, &user).await?;
            json!(
                gs.iter()
                    .map(|g| json!({"project_id": g.project_id, "action": g.action}))
                    .collect::<Vec<_>>()
            )
        }
        AdminCommand::Capacity {
            cmd:
                CapacityCmd::Set {
                    server_model_name,
                    capacity,
                },
        } => {
            svc.admin_set_capacity(&server_model_name, capacity).await?;
            json!({"server_model_name": server_model_name, "capacity": capacity})
        }
        AdminCommand::Capacity {
            cmd: CapacityCmd::List,
        } => {
            let cs = svc.admin_capacities().await?;
            json!(
                cs.iter()
                    .map(|(m, c, u)| json!({"server_model_name": m, "capacity": c, "in_use": u}))
                    .collect::<Vec<_>>()
            )
        }
        AdminCommand::Bandwidth {
            cmd:
                BandwidthCmd::Create {
                    project_id,
                    size,
                    charge_mode,
                    name,
                },
        } => {
            let b = svc
                .admin_create_shared_bandwidth(&project_id, &name, size, charge_mode)
                .await?;
            json!({"band_width_id": b.band_width_id, "band_width_name": b.name, "band_width_size": b.size, "band_width_share_type": b.share_type, "project_id": b.project_id})
        }
        AdminCommand::Audit {
            project_id,
            server_id,
            refused,
            since_minutes,
            limit,
        } => {
            let since_ms = since_minutes
                .map(|m| chrono::Utc::now().timestamp_millis() - m.max(0).saturating_mul(60_000));
            let filter = cph_store::audit::AuditFilter {
                project_id: project_id.as_deref(),
                server_id: server_id.as_deref(),
                since_ms,
                accepted: refused.then_some(false),
            };
            let mut c = svc.store().read().await?;
            let rows = cph_store::audit::list(&mut c, &filter, limit).await?;
            drop(c);
            let events: Vec<_> = rows
                .into_iter()
                .map(|r| {
                    json!({
                        "time": chrono::DateTime::from_timestamp_millis(r.at_ms).map(|t| t.to_rfc3339()),
                        "kind": r.kind,
                        "accepted": r.accepted,
                        "project_id": r.project_id,
                        "server_id": r.server_id,
                        "phone_id": r.phone_id,
                        "peer": r.peer,
                        "user": r.user_name,
                        "key_fingerprint": r.key_fingerprint,
                        "detail": r.detail,
                    })
                })
                .collect();
            json!({ "events": events })
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    svc.store().close().await;
    Ok(())
}
