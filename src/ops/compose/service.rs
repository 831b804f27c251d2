//! One service's containers: start a newly added service alone, and list the containers of one
//! service (`add-service` / `remove-service` on a running tenant).

use std::ffi::OsString;

use anyhow::Result;

use super::containers::{self, FORMAT};
use super::{exec, Cmd, Container, Project, Tools};
use crate::ops::teardown::docker::PROJECT_LABEL;
use crate::policy::{SERVICE_LABEL, TENANT_LABEL};

/// `docker compose ... up -d --no-deps NAME`: starts the new service alone; its dependencies and
/// every other service keep running untouched.
pub fn start_one(tools: &Tools, project: &Project, service: &str) -> Cmd {
    let mut v = super::argv::project(tools, project);
    v.extend(["up", "-d", "--no-deps", service].map(OsString::from));
    Cmd::new(v, "docker compose up --no-deps")
}

/// `docker ps --all` of one service's containers: the tenant's stackgen label, its compose
/// project and the service's label, all three (Docker ANDs label filters).
pub fn list_service(tools: &Tools, tenant: &str, service: &str) -> Cmd {
    let mut v = tools.docker_argv();
    v.extend(["ps", "--all", "--no-trunc"].map(OsString::from));
    for label in [
        format!("{TENANT_LABEL}={tenant}"),
        format!("{PROJECT_LABEL}={tenant}"),
        format!("{SERVICE_LABEL}={service}"),
    ] {
        v.push("--filter".into());
        v.push(format!("label={label}").into());
    }
    v.extend(["--format", FORMAT].map(OsString::from));
    Cmd::new(v, "docker ps")
}

/// The service's containers, re-checked after the filter.
pub fn containers_of_service(tools: &Tools, tenant: &str, service: &str) -> Result<Vec<Container>> {
    let out = exec::capture_ok(&list_service(tools, tenant, service))?;
    let mut list = containers::parse(&out)?;
    list.retain(|c| c.tenant == tenant && c.project == tenant && c.service == service);
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_vectors() {
        let t = Tools::fixed("docker");
        let p = Project {
            name: "acme".into(),
            env_file: ".env".into(),
            stack: "stacks/acme-stack.yml".into(),
        };
        assert_eq!(
            start_one(&t, &p, "my-app").shell_line(),
            "docker compose -p acme --env-file .env -f stacks/acme-stack.yml up -d --no-deps my-app"
        );
        let ps = list_service(&t, "acme", "my-app").shell_line();
        assert!(
            ps.starts_with("docker ps --all --no-trunc --filter label=com.stackgen.tenant=acme --filter label=com.docker.compose.project=acme --filter label=com.stackgen.service=my-app --format "),
            "{ps}"
        );
    }
}
