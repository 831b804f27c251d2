//! `stackgen catalog`: the built-in services, their pinned images and image contracts, as a
//! table for operators or JSON for scripts (the stand-in image builder reads it).

use anyhow::Result;
use serde::Serialize;

use crate::cli::CatalogArgs;
use crate::platform::catalog::{Catalog, UserPolicy};
use crate::platform::contract::Contract;

#[derive(Serialize)]
struct Entry<'a> {
    service: &'a str,
    component: &'a str,
    image: &'a str,
    image_key: String,
    /// Where the stack runs it: `tenant`, `openclaw`, `image` (its own user), `root`, `self`.
    runs_as: &'static str,
    read_only: bool,
    contract: &'a Contract,
}

pub fn cmd_catalog(args: &CatalogArgs) -> Result<()> {
    let catalog = Catalog::get();
    let entries: Vec<Entry> = catalog
        .services
        .iter()
        .filter_map(|(name, def)| {
            let contract = def.contract.as_ref()?;
            let (image, image_key) = catalog.default_image(name);
            let runs_as = match def.user {
                UserPolicy::Tenant | UserPolicy::Openclaw if !contract.arbitrary_uid => {
                    if contract.image_ids().0 == 0 {
                        "root"
                    } else {
                        "image"
                    }
                }
                UserPolicy::Tenant => "tenant",
                UserPolicy::Openclaw => "openclaw",
                UserPolicy::Root => "root",
                UserPolicy::SelfDrop => "self",
                UserPolicy::Image(..) => "image",
            };
            Some(Entry {
                service: name,
                component: &catalog.component_of(name).name,
                image,
                image_key,
                runs_as,
                read_only: def.read_only,
                contract,
            })
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!(
        "{:<20} {:<9} {:<10} {:<6} IMAGE (contract read at)",
        "SERVICE", "RUNS AS", "IMAGE USER", "EGRESS"
    );
    for e in &entries {
        println!(
            "{:<20} {:<9} {:<10} {:<6} {} ({})",
            e.service,
            e.runs_as,
            e.contract.image_user,
            if e.contract.egress { "yes" } else { "no" },
            e.image,
            e.contract.source
        );
    }
    Ok(())
}
