use super::*;
use crate::config::TraefikDuration;
use proptest::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Root {
    entry_points: BTreeMap<String, Ep>,
    providers: Option<Providers>,
    api: Option<Api>,
    servers: Vec<Server>,
    tags: Vec<String>,
    level: Option<Level>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Ep {
    address: String,
    as_default: bool,
    port: Option<u16>,
    ratio: Option<f64>,
    read_timeout: Option<TraefikDuration>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Providers {
    file: Option<File>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct File {
    directory: Option<String>,
    watch: Option<bool>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Api {
    insecure: bool,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Server {
    url: String,
    weight: Option<u32>,
}

#[derive(Debug, PartialEq, Deserialize)]
enum Level {
    Debug,
    Info,
}

fn flat(pairs: &[(&str, &str)]) -> Node {
    Node::from_flat(pairs.iter().map(|(k, v)| (*k, *v))).expect("valid paths")
}

fn decode(pairs: &[(&str, &str)]) -> Result<Root, NodeError> {
    from_node(&flat(pairs))
}

#[test]
fn flags_decode_case_insensitively_with_string_coercion() {
    let root = decode(&[
        ("entrypoints.web.address", ":80"),
        ("entryPoints.web.ASDEFAULT", "true"),
        ("entrypoints.web.port", "8080"),
        ("entrypoints.web.ratio", "0.5"),
        ("entrypoints.web.readtimeout", "1m30s"),
    ])
    .expect("valid");
    let ep = &root.entry_points["web"];
    assert_eq!(ep.address, ":80");
    assert!(ep.as_default);
    assert_eq!(ep.port, Some(8080));
    assert_eq!(ep.ratio, Some(0.5));
    assert_eq!(
        ep.read_timeout,
        Some(TraefikDuration(Duration::from_secs(90)))
    );
}

#[test]
fn map_keys_keep_their_case() {
    let root = decode(&[("entrypoints.WebSecure.address", ":443")]).expect("valid");
    assert!(root.entry_points.contains_key("WebSecure"));
}

#[test]
fn presence_flag_enables_a_section_with_defaults() {
    let root = decode(&[("providers.file", "true"), ("api", "")]).expect("valid");
    assert_eq!(
        root.providers,
        Some(Providers {
            file: Some(File::default())
        })
    );
    assert_eq!(root.api, Some(Api { insecure: false }));
    let root = decode(&[("api.insecure", "true")]).expect("valid");
    assert_eq!(root.api, Some(Api { insecure: true }));
}

#[test]
fn presence_marker_and_children_combine_in_any_order() {
    for pairs in [
        [
            ("providers.file", "true"),
            ("providers.file.directory", "/d"),
        ],
        [
            ("providers.file.directory", "/d"),
            ("providers.file", "true"),
        ],
    ] {
        let root = decode(&pairs).expect("valid");
        let file = root.providers.and_then(|p| p.file).expect("file provider");
        assert_eq!(file.directory.as_deref(), Some("/d"));
    }
}

#[test]
fn value_and_section_on_the_same_key_conflict() {
    let err = Node::from_flat([("a.b", "x"), ("a.b.c", "y")]).expect_err("conflict");
    assert!(matches!(err.kind, NodeErrorKind::Conflict { .. }), "{err}");
    let err = Node::from_flat([("a.b.c", "y"), ("a.b", "x")]).expect_err("conflict");
    assert!(matches!(err.kind, NodeErrorKind::Conflict { .. }), "{err}");
}

#[test]
fn later_flag_wins() {
    let root = decode(&[
        ("entrypoints.web.address", ":80"),
        ("entrypoints.web.address", ":81"),
    ])
    .expect("valid");
    assert_eq!(root.entry_points["web"].address, ":81");
}

#[test]
fn unknown_keys_name_their_full_path() {
    let err = decode(&[("entrypoints.web.adress", ":80")]).expect_err("unknown");
    assert_eq!(err.path, "entrypoints.web.adress");
    assert!(matches!(err.kind, NodeErrorKind::UnknownKey { ref key, .. } if key == "adress"));
    assert!(
        err.to_string().contains("valid keys: address, asDefault"),
        "{err}"
    );
}

#[test]
fn invalid_values_name_their_path() {
    let err = decode(&[("entrypoints.web.readTimeout", "abc")]).expect_err("bad");
    assert_eq!(
        err.to_string(),
        "entrypoints.web.readTimeout: invalid duration \"abc\""
    );
    let err = decode(&[("entrypoints.web.port", "http")]).expect_err("bad");
    assert_eq!(
        err.to_string(),
        "entrypoints.web.port: invalid unsigned integer \"http\""
    );
    let err = decode(&[("api.insecure", "yes")]).expect_err("bad");
    assert_eq!(err.to_string(), "api.insecure: invalid boolean \"yes\"");
    let err = decode(&[("entrypoints.web", "x")]).expect_err("bad");
    assert_eq!(
        err.to_string(),
        "entrypoints.web: expected a section, found a value"
    );
}

#[test]
fn lists_from_indexes_commas_and_brackets() {
    let root = decode(&[
        ("servers[1].url", "http://b"),
        ("servers[0].url", "http://a"),
        ("servers[0].weight", "3"),
        ("tags", "a, b,c"),
    ])
    .expect("valid");
    assert_eq!(
        root.servers,
        [
            Server {
                url: "http://a".into(),
                weight: Some(3)
            },
            Server {
                url: "http://b".into(),
                weight: None
            }
        ]
    );
    assert_eq!(root.tags, ["a", "b", "c"]);
    let root = decode(&[("servers.0.url", "http://a")]).expect("valid");
    assert_eq!(root.servers.len(), 1);
    let root = decode(&[("tags", "")]).expect("valid");
    assert!(root.tags.is_empty());
}

#[test]
fn list_errors_carry_the_index() {
    let err = decode(&[("servers[0].weight", "-1")]).expect_err("bad");
    assert_eq!(err.path, "servers.0.weight");
    let toml: toml::Value = toml::from_str("[[servers]]\nurl = 'x'\nwight = 1\n").expect("toml");
    let err = from_node::<Root>(&Node::from_toml(&toml)).expect_err("bad");
    assert_eq!(err.path, "servers[0].wight");
}

/// Error paths are written out only on error (see `de::Path`): every way down the tree —
/// struct fields, map keys, list indexes, numeric keys, enum variants with a value, and
/// errors raised by a visitor below — still names the full path.
#[test]
fn error_paths_name_every_step_down() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Shape {
        Circle { radius: u32 },
        Dots(Vec<u32>),
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Shapes {
        shapes: BTreeMap<String, Shape>,
        timeouts: Vec<TraefikDuration>,
    }
    let decode = |text: &str| {
        let toml: toml::Value = toml::from_str(text).expect("toml");
        from_node::<Shapes>(&Node::from_toml(&toml)).expect_err("bad")
    };
    let err = decode("timeouts = []\n[shapes.a.circle]\nradius = 'x'\n");
    assert_eq!(err.path, "shapes.a.circle.radius");
    let err = decode("timeouts = []\n[shapes.b]\ndots = [1, 'y']\n");
    assert_eq!(err.path, "shapes.b.dots[1]");
    let err = decode("timeouts = ['1s', 'soon']\n[shapes]\n");
    assert_eq!(err.path, "timeouts[1]");
    let err = decode("timeouts = []\n[shapes.c.circle]\nradios = 1\n");
    assert_eq!(err.path, "shapes.c.circle.radios");
    let err = from_node_at::<Shapes>(
        &flat(&[("shapes.d.circle.radius", "-1"), ("timeouts.0", "1s")]),
        "top",
    )
    .expect_err("bad");
    assert_eq!(err.path, "top.shapes.d.circle.radius");
}

#[test]
fn enums_match_case_insensitively() {
    let root = decode(&[("level", "DEBUG")]).expect("valid");
    assert_eq!(root.level, Some(Level::Debug));
    let err = decode(&[("level", "loud")]).expect_err("bad");
    assert!(err.to_string().contains("valid: Debug, Info"), "{err}");
}

#[test]
fn toml_and_yaml_typed_values_decode() {
    let toml: toml::Value = toml::from_str(
        r#"
        tags = ["x", "y"]
        [entryPoints.web]
        address = ":80"
        asDefault = true
        port = 8080
        ratio = 1.5
        readTimeout = 10
        [providers.file]
        [[servers]]
        url = "http://a"
        weight = 2
        "#,
    )
    .expect("toml");
    let from_toml: Root = from_node(&Node::from_toml(&toml)).expect("valid");
    let yaml: serde_norway::Value = serde_norway::from_str(
        "tags: [x, y]\nentryPoints:\n  web:\n    address: ':80'\n    asDefault: true\n    port: 8080\n    ratio: 1.5\n    readTimeout: 10\nproviders:\n  file:\nservers:\n  - url: http://a\n    weight: 2\n",
    )
    .expect("yaml");
    let from_yaml: Root = from_node(&Node::from_yaml(&yaml)).expect("valid");
    assert_eq!(from_toml, from_yaml);
    assert_eq!(
        from_toml.entry_points["web"].read_timeout,
        Some(TraefikDuration(Duration::from_secs(10)))
    );
    assert!(from_toml.providers.and_then(|p| p.file).is_some());
}

#[test]
fn duplicate_case_variants_are_refused() {
    let toml: toml::Value =
        toml::from_str("[api]\ninsecure = true\nInsecure = false\n").expect("toml");
    let err = from_node::<Root>(&Node::from_toml(&toml)).expect_err("dup");
    assert!(
        matches!(err.kind, NodeErrorKind::DuplicateKey { .. }),
        "{err}"
    );
}

#[test]
fn raw_nodes_round_trip_through_serde() {
    let node = flat(&[("a.b", "1"), ("a.c", "x")]);
    let back: Node = from_node(&node).expect("any");
    assert_eq!(back, node);
}

#[test]
fn merge_overlays_and_keeps_sections_under_markers() {
    let mut base = flat(&[("providers.file.directory", "/d"), ("log.level", "INFO")]);
    base.merge(flat(&[("Providers.file", "true"), ("log.level", "DEBUG")]));
    assert_eq!(
        base.get("providers")
            .and_then(|p| p.get("file"))
            .and_then(|f| f.get("directory")),
        Some(&Node::Leaf("/d".into()))
    );
    assert_eq!(
        base.get("log").and_then(|l| l.get("level")),
        Some(&Node::Leaf("DEBUG".into()))
    );
}

#[test]
fn split_leaves_gives_one_tree_per_leaf() {
    let node = flat(&[("a.b", "1"), ("a.c.d", "2"), ("e", "3")]);
    let leaves = node.split_leaves();
    let paths: Vec<&str> = leaves.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["a.b", "a.c.d", "e"]);
    assert_eq!(leaves[1].1, flat(&[("a.c.d", "2")]));
}

#[test]
fn bad_paths_are_refused() {
    for path in ["", "a..b", "a[x]", "a[", "a[0", ".a", "a]"] {
        assert!(Node::from_flat([(path, "v")]).is_err(), "{path:?}");
    }
}

fn key() -> impl Strategy<Value = String> {
    "[a-z][a-zA-Z0-9]{0,6}"
}

proptest! {
    /// Flat pairs → node → struct: every generated entry point comes back, whatever the case
    /// of the field names in the flags.
    #[test]
    fn flat_pairs_decode_to_the_struct(
        // Names are keys of a case-insensitive map: two that differ only in case are one.
        eps in proptest::collection::btree_map(key(), (1u16.., any::<bool>(), 0u64..100_000), 0..5)
            .prop_filter("names distinct ignoring case", |m| {
                m.keys().map(|k| k.to_ascii_lowercase()).collect::<std::collections::BTreeSet<_>>().len() == m.len()
            }),
        upper in any::<bool>(),
    ) {
        let mut pairs = Vec::new();
        for (name, (port, default, secs)) in &eps {
            let field = |f: &str| if upper { f.to_ascii_uppercase() } else { f.to_string() };
            pairs.push((format!("entrypoints.{name}.{}", field("address")), format!(":{port}")));
            pairs.push((format!("entrypoints.{name}.{}", field("asdefault")), default.to_string()));
            pairs.push((format!("entrypoints.{name}.{}", field("readtimeout")), secs.to_string()));
        }
        let node = Node::from_flat(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .expect("valid paths");
        let root: Root = from_node(&node).expect("valid");
        prop_assert_eq!(root.entry_points.len(), eps.len());
        for (name, (port, default, secs)) in &eps {
            let ep = &root.entry_points[name];
            prop_assert_eq!(&ep.address, &format!(":{port}"));
            prop_assert_eq!(ep.as_default, *default);
            prop_assert_eq!(ep.read_timeout, Some(TraefikDuration(Duration::from_secs(*secs))));
        }
    }

    /// Decoding arbitrary trees never panics.
    #[test]
    fn decoding_never_panics(pairs in proptest::collection::vec(("[a-zA-Z.\\[\\]0-9]{1,20}", "\\PC{0,10}"), 0..8)) {
        if let Ok(node) = Node::from_flat(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            let _ = from_node::<Root>(&node);
        }
    }
}
