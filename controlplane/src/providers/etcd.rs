//! The etcd provider (`providers.etcd`): Traefik's key layout under `rootKey` in etcd v3,
//! read with a range request and watched with a watch stream, both over etcd's JSON
//! gateway. The loop itself is shared with Redis: [`super::kv::run_kv_provider`].

pub const PROVIDER: &str = "etcd";
