//! Operating rendered stacks, apart from generation: everything that talks to a Docker engine
//! or touches a tenant's data on the host.
//!
//! `compose` (every docker/compose command, built pure and run in one place), `preflight`
//! (checks before `up` and for `doctor`), `status`, `prepare` (data folders and owners),
//! `apparmor` (profiles in the host kernel), `rotate` (secret rotation), `deployment` (which
//! manifest owns running containers), `engines` (tenants on several Docker engines), `backup`
//! and `teardown`.

pub mod apparmor;
pub mod backup;
pub mod compose;
pub mod deployment;
pub mod edge;
pub mod engines;
pub mod preflight;
pub mod prepare;
pub mod rotate;
pub mod status;
pub mod teardown;
