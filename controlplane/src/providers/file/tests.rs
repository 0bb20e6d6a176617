use super::*;
use std::fs;
use std::sync::Arc;
use std::time::Duration;

const ROUTER: &str = "[http.routers.r]\nrule = \"Path(`/`)\"\nservice = \"s\"\n";
const SERVICE: &str =
    "[http.services.s.loadBalancer]\nservers = [{ url = \"http://127.0.0.1:9\" }]\n";

fn file_cfg(path: &Path, watch: bool) -> FileProvider {
    FileProvider {
        filename: Some(path.to_path_buf()),
        directory: None,
        watch,
    }
}

fn dir_cfg(path: &Path) -> FileProvider {
    FileProvider {
        filename: None,
        directory: Some(path.to_path_buf()),
        watch: true,
    }
}

/// The next event, within a generous deadline (the provider reacts in milliseconds).
async fn next(rx: &mut mpsc::Receiver<ProviderEvent>) -> ProviderEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event before the deadline")
        .expect("provider still running")
}

fn config(ev: ProviderEvent) -> DynamicConfig {
    match ev {
        ProviderEvent::Config(pc) => {
            assert_eq!(pc.provider, "file");
            pc.config
        }
        ProviderEvent::Error { error, .. } => panic!("unexpected error: {error}"),
    }
}

fn error(ev: ProviderEvent) -> ConfigErrors {
    match ev {
        ProviderEvent::Error { error, .. } => error,
        ProviderEvent::Config(_) => panic!("expected an error"),
    }
}

/// Replaces a file the way editors and config managers do: write aside, then rename.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    fs::write(&tmp, text).expect("write");
    fs::rename(&tmp, path).expect("rename");
}

#[test]
fn directory_is_read_recursively_skipping_hidden_and_other_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.toml"), ROUTER).expect("write");
    fs::create_dir(dir.path().join("sub")).expect("mkdir");
    fs::write(
        dir.path().join("sub/b.yaml"),
        "http:\n  services:\n    s:\n      loadBalancer:\n        servers: []\n",
    )
    .expect("write");
    fs::write(dir.path().join(".#c.toml"), "not = [valid").expect("write");
    fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
    let cfg = load_file_provider(&dir_cfg(dir.path())).expect("valid");
    assert!(cfg.http.routers.contains_key("r"));
    assert!(cfg.http.services.contains_key("s"));
    let origin = cfg.origin("http.services.s").expect("origin");
    assert!(origin.ends_with("sub/b.yaml"), "{origin}");
}

#[test]
fn conflicts_and_syntax_errors_name_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.toml"), ROUTER).expect("write");
    fs::write(
        dir.path().join("b.toml"),
        "[http.routers.r]\nrule = \"Path(`/b`)\"\nservice = \"s\"\n",
    )
    .expect("write");
    fs::write(dir.path().join("c.toml"), "[http\n").expect("write");
    let errs = load_file_provider(&dir_cfg(dir.path())).expect_err("conflict");
    let text = errs.to_string();
    assert_eq!(errs.len(), 2, "{text}");
    assert!(
        text.contains("a.toml and ") && text.contains("b.toml"),
        "{text}"
    );
    assert!(
        text.contains("c.toml: TOML syntax error at line 1"),
        "{text}"
    );
    let missing = load_file_provider(&file_cfg(&dir.path().join("none.toml"), false));
    assert!(missing
        .expect_err("missing")
        .to_string()
        .contains("cannot read"));
}

#[test]
fn only_real_changes_trigger_a_reload() {
    use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind};
    let ev = |kind| notify::Event::new(kind);
    assert!(!is_change(&ev(EventKind::Access(AccessKind::Open(
        AccessMode::Any
    )))));
    assert!(!is_change(&ev(EventKind::Access(AccessKind::Close(
        AccessMode::Read
    )))));
    assert!(is_change(&ev(EventKind::Access(AccessKind::Close(
        AccessMode::Write
    )))));
    assert!(is_change(&ev(EventKind::Modify(ModifyKind::Any))));
    assert!(is_change(&ev(EventKind::Create(CreateKind::File))));
}

#[tokio::test]
async fn watched_file_reloads_on_edit_and_rename_and_reports_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dynamic.toml");
    fs::write(&path, ROUTER).expect("write");
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(run_file_provider(file_cfg(&path, true), tx));

    let first = config(next(&mut rx).await);
    assert!(first.http.services.is_empty());

    // In-place edit.
    fs::write(&path, format!("{ROUTER}{SERVICE}")).expect("write");
    let second = config(next(&mut rx).await);
    assert!(second.http.services.contains_key("s"));

    // A bad edit is an error, never a partial config.
    replace(&path, "[http.routers.r]\nrule = 1 = 2\n");
    let errs = error(next(&mut rx).await);
    assert!(errs.to_string().contains("dynamic.toml"), "{errs}");

    // Atomic replacement with a good file.
    replace(&path, SERVICE);
    let third = config(next(&mut rx).await);
    assert!(third.http.routers.is_empty());
    assert!(third.http.services.contains_key("s"));

    // Touching the file without changing it sends nothing; the next real change does.
    fs::write(&path, SERVICE).expect("write");
    fs::write(&path, ROUTER).expect("write");
    let fourth = config(next(&mut rx).await);
    assert!(fourth.http.routers.contains_key("r"));

    drop(rx);
    // The provider notices the receiver is gone and stops.
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("provider stops")
        .expect("no panic");
}

#[tokio::test]
async fn watched_directory_sees_new_files_in_new_subdirectories() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.toml"), ROUTER).expect("write");
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(run_file_provider(dir_cfg(dir.path()), tx));
    assert!(config(next(&mut rx).await).http.services.is_empty());

    fs::create_dir(dir.path().join("sub")).expect("mkdir");
    // If the write races the new directory's watch, the directory's own create event still
    // triggers a reload that sees the file.
    fs::write(dir.path().join("sub/s.toml"), SERVICE).expect("write");
    loop {
        let cfg = config(next(&mut rx).await);
        if cfg.http.services.contains_key("s") {
            break;
        }
    }
    fs::remove_file(dir.path().join("sub/s.toml")).expect("rm");
    assert!(config(next(&mut rx).await).http.services.is_empty());
    task.abort();
}

#[tokio::test]
async fn unwatched_provider_sends_once_and_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.yml");
    fs::write(&path, "http:\n  routers: {}\n").expect("write");
    let (tx, mut rx) = mpsc::channel(8);
    run_file_provider(file_cfg(&path, false), tx).await;
    assert!(config(next(&mut rx).await).is_empty());
    assert!(rx.recv().await.is_none());
}

#[test]
fn reloads_reparse_only_changed_files_and_skip_no_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.toml"), ROUTER).expect("write");
    fs::write(dir.path().join("b.toml"), SERVICE).expect("write");
    let cfg = dir_cfg(dir.path());
    let mut cache = ParseCache::default();
    let first = cache
        .load_if_changed(&cfg)
        .expect("first load")
        .expect("valid");
    assert!(first.http.routers.contains_key("r"));
    // Our own reads, a touch, a temp file being written: nothing to send.
    assert!(cache.load_if_changed(&cfg).is_none());
    fs::write(dir.path().join(".b.toml.tmp"), "half = [").expect("write");
    assert!(cache.load_if_changed(&cfg).is_none());
    // A new file: the merged view has both the cached and the new parse.
    fs::write(
        dir.path().join("c.toml"),
        "[http.routers.q]\nrule = \"Path(`/q`)\"\nservice = \"s\"\n",
    )
    .expect("write");
    let next = cache
        .load_if_changed(&cfg)
        .expect("changed")
        .expect("valid");
    assert!(next.http.routers.contains_key("r") && next.http.routers.contains_key("q"));
    // A file broken, then restored: the error, then the good view again.
    fs::write(dir.path().join("c.toml"), "not = [valid").expect("write");
    assert!(cache.load_if_changed(&cfg).expect("changed").is_err());
    assert!(cache.load_if_changed(&cfg).is_none());
    fs::remove_file(dir.path().join("c.toml")).expect("remove");
    let back = cache
        .load_if_changed(&cfg)
        .expect("changed")
        .expect("valid");
    assert_eq!(back, first);
}

/// A file rewritten with one more router: the routers and services that did not change are
/// the ones already decoded (the same `Arc`); a broken rewrite, then a good one, still gives
/// the plain decode.
#[test]
fn a_rewritten_file_keeps_what_did_not_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dynamic.toml");
    fs::write(&path, format!("{ROUTER}{SERVICE}")).expect("write");
    let cfg = file_cfg(&path, false);
    let mut cache = ParseCache::default();
    let first = cache.load(&cfg).expect("valid");
    let more =
        format!("{ROUTER}{SERVICE}[http.routers.q]\nrule = \"Path(`/q`)\"\nservice = \"s\"\n");
    replace(&path, &more);
    let next = cache.load(&cfg).expect("valid");
    assert!(Arc::ptr_eq(
        &first.http.routers["r"],
        &next.http.routers["r"]
    ));
    assert!(Arc::ptr_eq(
        &first.http.services["s"],
        &next.http.services["s"]
    ));
    assert_eq!(next, load_file_provider(&cfg).expect("valid"));
    replace(&path, "[http.routers.r]\nnope = 1\n");
    assert!(cache.load(&cfg).is_err());
    replace(&path, &more.replace("`/q`", "`/p`"));
    let last = cache.load(&cfg).expect("valid");
    assert_eq!(last, load_file_provider(&cfg).expect("valid"));
    assert_eq!(last.http.routers["q"].rule, "Path(`/p`)");
}

/// A large file rewritten with a router changed, one added with its service, one removed:
/// only those sections are parsed again; the result is a fresh load's, and what did not change
/// is what was decoded before. A rewrite that is no longer all items' (a section of no item
/// added) is parsed whole, and gives a fresh load's too.
#[test]
fn a_rewrite_within_items_is_reparsed_in_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dynamic.toml");
    let item = |i: usize| {
        format!(
            "[http.routers.r{i}]\nrule = \"Host(`h{i}`)\"\nservice = \"s{i}\"\n\n\
             [http.services.s{i}.loadBalancer]\nservers = [{{ url = \"http://127.0.0.1:{}\" }}]\n\n",
            1000 + i
        )
    };
    let text: String = (0..50).map(item).collect();
    fs::write(&path, &text).expect("write");
    let cfg = file_cfg(&path, false);
    let mut cache = ParseCache::default();
    let first = cache.load(&cfg).expect("valid");
    let edited = text
        .replace("Host(`h7`)", "Host(`h7.example`)")
        .replace(&item(20), "")
        + &item(50);
    for (new, in_part) in [
        (edited.clone(), 1),
        (edited.replace(&item(3), &(item(3) + "[http.routers]\n")), 0),
    ] {
        let before = cache.reparsed_in_part;
        replace(&path, &new);
        let next = cache.load(&cfg).expect("valid");
        assert_eq!(cache.reparsed_in_part - before, in_part, "{new}");
        assert_eq!(next, load_file_provider(&cfg).expect("valid"));
        assert!(Arc::ptr_eq(
            &first.http.routers["r8"],
            &next.http.routers["r8"]
        ));
        assert!(!next.http.routers.contains_key("r20"));
        assert_eq!(next.http.routers["r7"].rule, "Host(`h7.example`)");
        assert_eq!(
            next.origin("http.routers.r50"),
            Some(path.to_str().expect("utf-8"))
        );
        assert_eq!(next.origin("http.services.s20"), None);
    }
    // An error in a changed item is the whole load's error; the next good rewrite recovers.
    replace(
        &path,
        &edited.replace("Host(`h9`)\"", "Host(`h9`)\"\nnope = 1"),
    );
    let err = cache.load(&cfg).expect_err("an unknown key");
    assert!(err.to_string().contains("http.routers.r9"), "{err}");
    replace(&path, &edited);
    assert_eq!(
        cache.load(&cfg).expect("valid"),
        load_file_provider(&cfg).expect("valid")
    );
}

/// The same for YAML: a router and its service added apart (routers first, then services),
/// one changed; reparsed in part, the result a fresh load's.
#[test]
fn a_yaml_rewrite_within_items_is_reparsed_in_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dynamic.yaml");
    let yaml = |n: usize, rule_of_7: &str| {
        let mut s = String::from("http:\n  routers:\n");
        for i in 0..n {
            let rule = if i == 7 {
                rule_of_7.to_string()
            } else {
                format!("Host(`h{i}`)")
            };
            s.push_str(&format!(
                "    r{i}:\n      rule: \"{rule}\"\n      service: s{i}\n"
            ));
        }
        s.push_str("  services:\n");
        for i in 0..n {
            s.push_str(&format!(
                "    s{i}:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:{}\n",
                1000 + i
            ));
        }
        s
    };
    fs::write(&path, yaml(50, "Host(`h7`)")).expect("write");
    let cfg = file_cfg(&path, false);
    let mut cache = ParseCache::default();
    let first = cache.load(&cfg).expect("valid");
    replace(&path, &yaml(51, "Host(`h7.example`)"));
    let next = cache.load(&cfg).expect("valid");
    assert_eq!(cache.reparsed_in_part, 1);
    assert_eq!(next, load_file_provider(&cfg).expect("valid"));
    assert_eq!(next.http.routers["r7"].rule, "Host(`h7.example`)");
    assert!(next.http.services.contains_key("s50"));
    assert!(Arc::ptr_eq(
        &first.http.routers["r8"],
        &next.http.routers["r8"]
    ));
}

#[test]
fn a_settled_file_is_not_read_again_but_any_rewrite_is_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.toml");
    let v1 = format!("{ROUTER}{SERVICE}");
    let v2 = v1.replace("Path(`/`)", "Path(`+`)");
    assert_eq!(v1.len(), v2.len());
    fs::write(&path, &v1).expect("write");
    // Old enough for its stamp to be trusted.
    std::thread::sleep(Duration::from_millis(1100));
    let cfg = file_cfg(&path, true);
    let mut cache = ParseCache::default();
    let first = cache.load(&cfg).expect("loads");
    assert_eq!(first.http.routers["r"].rule, "Path(`/`)");
    assert!(cache.stamps.contains_key(&path), "stamp recorded");
    assert!(cache.load_if_changed(&cfg).is_none(), "nothing changed");
    // Rewritten in place, same length, same inode: the new ctime gives it away.
    fs::write(&path, &v2).expect("rewrite");
    let second = cache
        .load_if_changed(&cfg)
        .expect("a change")
        .expect("loads");
    assert_eq!(second.http.routers["r"].rule, "Path(`+`)");
    // A fresh file's stamp is not trusted: it is read every time until it settles.
    assert!(!cache.stamps.contains_key(&path));
}

#[test]
fn a_rename_into_place_is_read_at_once_and_anything_else_settles() {
    use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("conf");
    fs::create_dir(&conf).expect("mkdir");
    let dynamic = conf.join("dynamic.toml");
    fs::write(&dynamic, ROUTER).expect("write");
    let mut cache = ParseCache::default();
    cache.load(&dir_cfg(dir.path())).expect("loads");

    let ev = |kind, paths: &[&Path]| {
        paths
            .iter()
            .fold(notify::Event::new(kind), |e, p| e.add_path(p.to_path_buf()))
    };
    let rename = |mode| EventKind::Modify(ModifyKind::Name(mode));
    let tmp = conf.join(".dynamic.toml.tmp");
    // An atomic writer: its temp file renamed over the configuration.
    let atomic = [
        ev(rename(RenameMode::From), &[&tmp]),
        ev(rename(RenameMode::To), &[&dynamic]),
        ev(rename(RenameMode::Both), &[&tmp, &dynamic]),
    ];
    assert!(whole(&atomic, &cache));
    assert!(whole(&atomic[..1], &cache), "the temp file's half alone");
    assert!(whole(
        &[ev(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &[&dynamic]
        )],
        &cache
    ));
    // A configuration file or its folder renamed away may be half of a replacement; a write,
    // a creation and a removal are under way.
    let backup = conf.join("dynamic.toml~");
    for partial in [
        ev(rename(RenameMode::Both), &[&dynamic, &backup]),
        ev(rename(RenameMode::From), &[&dynamic]),
        ev(rename(RenameMode::From), &[&conf]),
        ev(EventKind::Modify(ModifyKind::Any), &[&dynamic]),
        ev(EventKind::Create(CreateKind::File), &[&dynamic]),
        ev(
            EventKind::Remove(notify::event::RemoveKind::File),
            &[&dynamic],
        ),
    ] {
        assert!(
            !whole(
                &atomic
                    .iter()
                    .cloned()
                    .chain([partial.clone()])
                    .collect::<Vec<_>>(),
                &cache
            ),
            "{partial:?}"
        );
    }

    // A configured file name without a folder is watched as `./name`.
    let cwd_relative = ParseCache {
        files: HashMap::from([(
            PathBuf::from("dynamic.toml"),
            Parsed {
                text: String::new(),
                result: Ok(DynamicConfig::default()),
                doc: None,
                in_part: false,
            },
        )]),
        ..ParseCache::default()
    };
    let dot = Path::new("./dynamic.toml");
    assert!(!whole(
        &[ev(rename(RenameMode::From), &[dot])],
        &cwd_relative
    ));
    assert!(whole(
        &[ev(
            rename(RenameMode::From),
            &[Path::new("./.dynamic.toml.tmp")]
        )],
        &cwd_relative
    ));
}
