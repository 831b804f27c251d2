//! The library's cost of a render, without process start-up or disk writes, for 1, 10, 100 and
//! 1,000 tenants with every service (the manifest `scripts/bench-manifest.py` writes):
//!
//! - `parse/N`: reading and validating the manifest text (`Manifest::from_text`);
//! - `render/N`: parse, then every tenant's files in memory, on all cores as `render` does;
//! - `check/N`: parse, render, and compare every file with a rendered copy on disk, as
//!   `render --check` does (the files are in the page cache after the first iteration).
//!
//! Run: `cargo bench --bench render` (add `-- --quick` for a fast pass); `scripts/bench.sh` runs
//! it next to the whole-command benchmark. Results: `target/criterion/<group>/<N>/new/`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use stackgen::manifest::Manifest;
use stackgen::output;
use stackgen::render::compose::{self as render};
use stackgen::render::{Display, RenderedFile};

const SIZES: [usize; 4] = [1, 10, 100, 1000];

// The allocator of the `stackgen` binary, so that the numbers match the command's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The same manifest as `scripts/bench-manifest.py N`: every service, the vector DBs in turn,
/// 40 ports per tenant from 10000, placeholder secrets.
fn manifest_text(n: usize) -> String {
    const SECRETS: &[(&str, &[&str])] = &[
        ("postgres", &["POSTGRES_PASSWORD"]),
        ("redis", &["REDIS_PASSWORD"]),
        ("qdrant", &["QDRANT_API_KEY"]),
        ("weaviate", &["WEAVIATE_API_KEY"]),
        ("n8n", &["N8N_ENCRYPTION_KEY"]),
        (
            "flowise",
            &[
                "FLOWISE_SECRETKEY",
                "FLOWISE_JWT_AUTH_SECRET",
                "FLOWISE_JWT_REFRESH_SECRET",
                "FLOWISE_SESSION_SECRET",
                "FLOWISE_TOKEN_HASH_SECRET",
            ],
        ),
        (
            "anythingllm",
            &[
                "ANYTHINGLLM_JWT_SECRET",
                "ANYTHINGLLM_SIG_KEY",
                "ANYTHINGLLM_SIG_SALT",
            ],
        ),
        ("litellm", &["LITELLM_MASTER_KEY", "LITELLM_SALT_KEY"]),
        (
            "dify",
            &[
                "DIFY_SECRET_KEY",
                "DIFY_SANDBOX_API_KEY",
                "DIFY_PLUGIN_DAEMON_KEY",
                "DIFY_PLUGIN_INNER_API_KEY",
            ],
        ),
        ("openclaw", &["OPENCLAW_GATEWAY_TOKEN"]),
        ("tailscale", &["TAILSCALE_AUTH_KEY"]),
        ("openwebui", &["OPENWEBUI_SECRET_KEY"]),
        ("grafana", &["GRAFANA_ADMIN_PASSWORD", "GRAFANA_SECRET_KEY"]),
        ("minio", &["MINIO_ROOT_PASSWORD"]),
    ];
    const COMMON: &[&str] = &[
        "postgres",
        "redis",
        "ollama",
        "n8n",
        "flowise",
        "anythingllm",
        "litellm",
        "dify",
        "openclaw",
        "tailscale",
        "openwebui",
        "grafana",
        "prometheus",
        "minio",
        "signal-cli-rest-api",
        "caddy",
    ];
    const VDBS: [&str; 4] = ["qdrant", "pgvector", "weaviate", "chroma"];
    let mut m = String::from(
        "STACKGEN_MANIFEST_VERSION=1\nDOMAIN=bench.example\nBASE_DIR=/srv/bench\nTLS_MODE=internal\n",
    );
    for i in 0..n {
        let p = format!("T{i}");
        let vdb = VDBS[i % 4];
        let mut services: Vec<&str> = COMMON.to_vec();
        if vdb != "pgvector" {
            services.push(vdb);
        }
        let start = 10000 + 40 * i;
        m.push_str(&format!(
            "TENANT=t{i}\n{p}__VECTOR_DB={vdb}\n{p}__SERVICES={}\n{p}__UID={}\n{p}__GID={}\n\
             {p}__OPENCLAW_UID={}\n{p}__OPENCLAW_GID={}\n{p}__PORT_RANGE={start}-{}\n",
            services.join(","),
            30000 + i,
            30000 + i,
            40000 + i,
            40000 + i,
            start + 39
        ));
        for comp in &services {
            for (_, names) in SECRETS.iter().filter(|(c, _)| c == comp) {
                for s in *names {
                    let lower = s.to_ascii_lowercase().replace('_', "");
                    m.push_str(&format!("{p}__{s}=bench{lower}{i:06}xxxxxxxxxxxxxxxx\n"));
                }
            }
        }
    }
    m
}

fn display() -> Display {
    Display {
        manifest: ".env".into(),
        stacks_dir: "stacks".into(),
    }
}

fn parse(text: &str) -> Manifest {
    Manifest::from_text(Path::new(".env"), text).expect("the bench manifest is valid")
}

/// Every tenant's files, rendered on all cores as `stackgen render` does.
fn render_all(m: &Manifest) -> Vec<Vec<RenderedFile>> {
    let tenants: Vec<_> = m.tenants.iter().collect();
    let d = display();
    render::render_many(&tenants, |t| render::render_tenant(m, t, &d)).expect("renders")
}

/// Renders `text` and writes its files under `stacks`, as `stackgen render` does.
fn write_rendered(text: &str, stacks: &Path) {
    let m = parse(text);
    let files = render_all(&m);
    let cmps: Vec<output::Comparison> = m
        .tenants
        .iter()
        .zip(&files)
        .map(|(t, f)| output::compare(stacks, Path::new(&t.name), f).expect("compare"))
        .collect();
    let items: Vec<_> = cmps
        .iter()
        .zip(&files)
        .map(|(c, f)| (c, f.as_slice()))
        .collect();
    output::apply_all(&items, stacks).expect("write the files to compare with");
}

fn bench(c: &mut Criterion) {
    let texts: Vec<(usize, String)> = SIZES.iter().map(|n| (*n, manifest_text(*n))).collect();

    let mut g = c.benchmark_group("parse");
    for (n, text) in &texts {
        g.throughput(Throughput::Elements(*n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), text, |b, text| {
            b.iter(|| black_box(parse(text)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("render");
    for (n, text) in &texts {
        g.throughput(Throughput::Elements(*n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), text, |b, text| {
            b.iter(|| black_box(render_all(&parse(text))))
        });
    }
    g.finish();

    // `render --check`: the files on disk are what the manifest renders.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("check");
    for (n, text) in &texts {
        let stacks = dir.path().join(format!("s{n}"));
        g.throughput(Throughput::Elements(*n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), text, |b, text| {
            // The files to compare with, written once (only when this size is selected).
            if !stacks.exists() {
                write_rendered(text, &stacks);
            }
            b.iter(|| {
                let m = parse(text);
                let tenants: Vec<_> = m.tenants.iter().collect();
                let d = display();
                let clean = render::render_many(&tenants, |t| {
                    let files = render::render_tenant(&m, t, &d)?;
                    output::compare(&stacks, Path::new(&t.name), &files)
                })
                .expect("check");
                assert!(clean.iter().all(output::Comparison::is_clean));
                black_box(clean)
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    // A thousand tenants take a good fraction of a second per iteration: ten samples each.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
