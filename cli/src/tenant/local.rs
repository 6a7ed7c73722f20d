//! `pixelfront tenant` on the local stack: every verb edits `{data}/tenants.json` under its
//! lock (the running server may add a tenant at the same moment), written 0600 through a
//! unique temporary file ([`pixelfront_local::tenants::update`]).

use super::{list_line, read_tenants_file, Verb};
use crate::Failure;
use pixelfront_local::tenants;
use pixelfront_shared::tenants::check_policy;
use std::path::Path;

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::io(message)
    }
}

/// Runs `verb` against the tenants file in `data`.
pub fn run(data: &Path, verb: Verb) -> Result<(), Failure> {
    std::fs::create_dir_all(data).map_err(|e| Failure::io(format!("{}: {e}", data.display())))?;
    let path = data.join("tenants.json");
    let place = path.display().to_string();
    match &verb {
        Verb::List => {
            for (t, p) in &tenants::read_file(&path)? {
                println!("{}", list_line(t, p));
            }
            return Ok(());
        }
        Verb::Show { tenant } => {
            let map = tenants::read_file(&path)?;
            let p = map
                .get(tenant)
                .ok_or_else(|| Failure::rejected(format!("no tenant {tenant:?}")))?;
            let json = serde_json::to_string_pretty(p).map_err(|e| Failure::io(e.to_string()))?;
            println!("{json}");
            return Ok(());
        }
        Verb::ApiKeyAdd { tenant } => {
            let (key, kid) =
                pixelfront_local::api_keys::add(data, tenant).map_err(Failure::rejected)?;
            println!("{key}");
            eprintln!(
                "pixelfront tenant: {tenant}: API key {kid} added; it is shown only now ({})",
                data.join(pixelfront_local::api_keys::FILE).display()
            );
            return Ok(());
        }
        Verb::ApiKeyRemove { tenant, kid } => {
            pixelfront_local::api_keys::remove(data, tenant, kid).map_err(Failure::rejected)?;
            eprintln!("pixelfront tenant: {tenant}: API key removed");
            return Ok(());
        }
        Verb::ApiKeys { tenant } => {
            let keys = pixelfront_local::api_keys::read_file(
                &data.join(pixelfront_local::api_keys::FILE),
            )?;
            for r in keys.values().filter(|r| &r.tenant == tenant) {
                println!("{}\t{}", r.kid, r.created_at);
            }
            return Ok(());
        }
        Verb::Check => {
            return Err(Failure::rejected(
                "check compares the AWS stack's two stores: use it with --aws",
            ))
        }
        Verb::Load { file } => {
            let wanted = read_tenants_file(file)?;
            for (key, p) in &wanted {
                check_policy(key, p).map_err(|e| Failure::rejected(e.0))?;
            }
            tenants::update(&path, |map| {
                map.extend(wanted.clone());
                Ok::<_, Failure>(true)
            })?;
            eprintln!(
                "pixelfront tenant: loaded {} entries from {} ({place})",
                wanted.len(),
                file.display()
            );
            return Ok(());
        }
        _ => {}
    }
    let Some(change) = verb.edit()? else {
        return Ok(());
    };
    tenants::apply_edit(&path, &change.key, &change.edit).map_err(|e| match e {
        tenants::EditFailure::Rejected(m) => Failure::rejected(m),
        tenants::EditFailure::Io(m) => Failure::io(m),
    })?;
    change.report(&place);
    Ok(())
}
