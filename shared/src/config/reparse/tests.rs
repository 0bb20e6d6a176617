use super::*;
use crate::config::testing::Rng;
use crate::config::{DynamicConfig, Format};

/// What a parse and decode of the whole text gives: the configuration, or the errors (as a
/// sorted list: a partial decode reports the same errors, not necessarily in the same order).
fn whole(text: &str) -> Result<DynamicConfig, Vec<String>> {
    whole_in(text, Format::Toml)
}

fn whole_in(text: &str, format: Format) -> Result<DynamicConfig, Vec<String>> {
    let tree = format
        .parse_tree(text)
        .map_err(|e| vec![format!("syntax: {e}")])?;
    DynamicConfig::from_node("f.toml", &tree).map_err(|e| {
        let mut v: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
        v.sort();
        v
    })
}

/// Reparses `new` after `old`; when the partial reparse applies, checks that it gives what
/// the whole parse gives (configuration, kept tree, outline). Returns whether it applied.
fn check(old: &str, new: &str) -> bool {
    check_in(old, new, Format::Toml)
}

fn check_in(old: &str, new: &str, format: Format) -> bool {
    let Ok(mut doc) = Document::parse(old, format) else {
        return false;
    };
    let Ok(before) = DynamicConfig::from_node("f.toml", &doc.tree) else {
        return false;
    };
    let Some(changes) = doc.reparse(old, new) else {
        return false;
    };
    let expected = whole_in(new, format);
    let got = before.patched("f.toml", &changes).map_err(|e| {
        let mut v: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
        v.sort();
        v
    });
    assert_eq!(
        got, expected,
        "partial reparse differs\n--- old\n{old}\n--- new\n{new}\n--- changes\n{changes:#?}"
    );
    if expected.is_ok() {
        // The kept tree decodes to the same, and the outline is the whole parse's (item ids
        // may differ; which sections share an item may not).
        assert_eq!(
            DynamicConfig::from_node("f.toml", &doc.tree).ok(),
            expected.ok(),
            "kept tree differs\n--- old\n{old}\n--- new\n{new}"
        );
        let fresh = Document::parse(new, format).expect("the whole parse succeeded");
        assert_eq!(outline(&doc).starts, outline(&fresh).starts, "{new}");
        assert_eq!(outline(&doc).sections, outline(&fresh).sections, "{new}");
        assert_eq!(
            groups(&outline(&doc).items),
            groups(&outline(&fresh).items),
            "{new}"
        );
        assert_eq!(outline(&doc).loose, outline(&fresh).loose);
    }
    true
}

fn outline(doc: &Document) -> &Outline {
    doc.outline
        .as_ref()
        .expect("a TOML document the fast parser took")
}

/// Item ids renumbered by first appearance.
fn groups(items: &[u32]) -> Vec<u32> {
    let mut seen: Vec<u32> = Vec::new();
    items
        .iter()
        .map(|&id| {
            if id == toml_fast::NONE {
                return u32::MAX;
            }
            match seen.iter().position(|&s| s == id) {
                Some(i) => i as u32,
                None => {
                    seen.push(id);
                    (seen.len() - 1) as u32
                }
            }
        })
        .collect()
}

fn router(i: usize) -> String {
    format!("[http.routers.r{i}]\nrule = \"Host(`h{i}`)\"\nservice = \"s{i}\"\n\n")
}

fn service(i: usize) -> String {
    format!(
        "[http.services.s{i}.loadBalancer]\nservers = [{{ url = \"http://127.0.0.1:{}\" }}]\n\n",
        1000 + i
    )
}

fn base(n: usize) -> String {
    (0..n).map(|i| router(i) + &service(i)).collect()
}

#[test]
fn one_router_appended_is_one_change() {
    let old = base(20);
    let new = format!("{old}{}", router(99));
    let mut doc = Document::parse(&old, Format::Toml).expect("parses");
    let changes = doc.reparse(&old, &new).expect("a partial reparse");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].section, ItemSection::Routers);
    assert_eq!(changes[0].name, "r99");
    assert!(check(&old, &new));
}

#[test]
fn edits_within_items_reparse_in_part() {
    let old = base(20);
    let cases = [
        // a router's rule changed
        old.replace("Host(`h7`)", "Host(`h7.example`)"),
        // a router removed
        old.replace(&router(5), ""),
        // a router and its service removed
        old.replace(&(router(5) + &service(5)), ""),
        // a router renamed
        old.replace("[http.routers.r9]", "[http.routers.r9b]"),
        // a router's TLS section added after it
        old.replace(
            &router(3),
            &(router(3) + "[http.routers.r3.tls]\ncertResolver = \"le\"\n\n"),
        ),
        // a middleware added in the middle
        old.replace(
            &router(4),
            &(router(4) + "[http.middlewares.m1.stripPrefix]\nprefixes = [\"/a\"]\n\n"),
        ),
        // a service's server moved to an array of tables
        old.replace(
            &service(8),
            "[http.services.s8.loadBalancer]\n[[http.services.s8.loadBalancer.servers]]\nurl = \"http://127.0.0.1:9\"\n\n",
        ),
        // a key appended at the very end of a section, right before the next header
        old.replace(&router(2), &router(2).replace("\n\n", "\npriority = 5\n")),
        // the last item changed
        old.replace("127.0.0.1:1019", "127.0.0.1:2019"),
        // changes far apart: a rule, a router removed, an item added at the end
        old.replace("Host(`h2`)", "Host(`h2.example`)")
            .replace(&router(10), "")
            + &router(30),
    ];
    // Routers first, then services (as Traefik's documentation lays them out): a new
    // router and its service are two changes far apart.
    let grouped = |n: usize| -> String { (0..n).map(router).chain((0..n).map(service)).collect() };
    let old_grouped = grouped(20);
    let new_grouped = old_grouped.replace(&router(19), &(router(19) + &router(20))) + &service(20);
    assert!(check(&old_grouped, &new_grouped));
    for (i, new) in cases.iter().enumerate() {
        assert_ne!(*new, old);
        assert!(check(&old, new), "case {i} not reparsed in part:\n{new}");
    }
}

#[test]
fn edits_beyond_items_are_left_to_the_whole_parse() {
    let old = base(20);
    let cases = [
        // a router defined twice
        format!("{old}{}", router(3)),
        // an item extended from outside its sections
        format!("{old}[http.routers.r3.tls]\n"),
        // a section that is no item's
        format!("{old}[http.routers]\n"),
        // a TCP router
        format!("{old}[tcp.routers.t]\nrule = \"HostSNI(`*`)\"\nservice = \"x\"\n"),
        // a multi-line string swallowing the headers after it
        old.replace("service = \"s4\"", "service = \"\"\"s4"),
        // keys before the first header
        format!("a = 1\n{old}"),
        // two headers on one line, the region not ending a line
        old.replace("\"s6\"\n\n[", "\"s6\" ["),
        // half the file
        base(8),
    ];
    for new in &cases {
        let mut doc = Document::parse(&old, Format::Toml).expect("parses");
        let kept = doc.clone();
        assert!(doc.reparse(&old, new).is_none(), "reparsed in part:\n{new}");
        assert_eq!(doc, kept, "a refused reparse changed the document");
    }
    // A key put before an indented header belongs to the section before (here an error in
    // it: the reparse takes that section in too).
    let indented = old.replace("[http.", "  [http.");
    let new = indented.replace("  [http.routers.r5]", "  priority = 1\n  [http.routers.r5]");
    assert!(check(&indented, &new));
    assert!(whole(&new).is_err());
    // An item whose sections are apart, one of them changed.
    let apart = format!("{old}[http.routers.r3.tls]\n");
    let mut doc = Document::parse(&apart, Format::Toml).expect("parses");
    assert!(doc
        .reparse(&apart, &format!("{apart}certResolver = \"le\"\n"))
        .is_none());
    // A file whose items are partly set from outside their sections is never reparsed in part.
    let loose = format!("[http.routers]\nr1.priority = 3\n\n{old}")
        .replace(&router(1), "[http.routers.r1.tls]\n\n");
    let mut doc = Document::parse(&loose, Format::Toml).expect("parses");
    assert!(outline(&doc).loose);
    assert!(doc
        .reparse(&loose, &loose.replace("Host(`h9`)", "Host(`x`)"))
        .is_none());
}

/// Lines that edits are made of: item sections of every shape, keys, and what may break the
/// section structure (multi-line strings and arrays, sections of no item, bad syntax).
const LINES: &[&str] = &[
    "[http.routers.r1]",
    "[http.routers.r2]",
    "[http.routers.new]",
    "[http.routers.r1.tls]",
    "[http.routers.new.tls]",
    "[http.services.s1.loadBalancer]",
    "[http.services.snew.loadBalancer]",
    "[[http.services.snew.loadBalancer.servers]]",
    "[[http.services.s2.loadBalancer.servers]]",
    "[http.middlewares.m1.stripPrefix]",
    "[http.middlewares.m2.addPrefix]",
    "[http.routers]",
    "[http]",
    "[tcp.routers.t1]",
    "[[http.routers.r3]]",
    "[HTTP.routers.r1]",
    "[http.routers.\"r1\"]",
    "rule = \"Host(`x`)\"",
    "service = \"s1\"",
    "service = \"nope\"",
    "priority = 3",
    "priority = \"high\"",
    "url = \"http://127.0.0.1:7\"",
    "servers = [{ url = \"http://127.0.0.1:8\" }]",
    "prefixes = [\"/a\"]",
    "prefix = \"/b\"",
    "r1.priority = 4",
    "tls = {}",
    "entryPoints = [",
    "  \"web\",",
    "]",
    "rule = \"\"\"",
    "\"\"\"",
    "# a comment",
    "",
    "",
    "x = ",
    "unknownKey = 1",
];

/// What random edits are made of in one format.
struct Edits {
    /// Lines inserted as they are.
    lines: &'static [&'static str],
    /// Characters inserted into a line.
    chars: &'static [char],
    /// Router `i` (or its service, when false) as a whole item.
    item: fn(usize, bool) -> String,
}

const TOML_EDITS: Edits = Edits {
    lines: LINES,
    chars: &['x', '.', '"', ']', '\n', '['],
    item: |i, router_of| if router_of { router(i) } else { service(i) },
};

/// A random edit of `text`: whole lines replaced, inserted or removed, whole items inserted,
/// or a character put into a line.
fn edit(rng: &mut Rng, text: &str, edits: &Edits) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = rng.below(lines.len() + 1);
    let removed = if rng.below(3) == 0 {
        0
    } else {
        rng.below(4).min(lines.len() - at.min(lines.len()))
    };
    let mut out: String = lines[..at].concat();
    match rng.below(5) {
        0 => {
            if let Some(line) = lines.get(at) {
                let pos = rng.below(line.len());
                let mut line = line.to_string();
                if line.is_char_boundary(pos) {
                    line.insert(pos, edits.chars[rng.below(edits.chars.len())]);
                }
                out.push_str(&line);
                out.push_str(&lines[(at + 1).min(lines.len())..].concat());
                return out;
            }
        }
        1 | 2 => {
            for _ in 0..rng.below(3) {
                let i = 20 + rng.below(10_000);
                out.push_str(&(edits.item)(i, rng.below(2) == 0));
            }
        }
        _ => {
            for _ in 0..rng.below(5) {
                out.push_str(edits.lines[rng.below(edits.lines.len())]);
                out.push('\n');
            }
        }
    }
    out.push_str(&lines[at + removed..].concat());
    out
}

/// `rounds` files, each from `base`, edited four times in a row (one edit, or a few in
/// different places), each checked by [`check_in`] and the next made on it while the file
/// stays valid. Returns (reparsed in part, valid edits, valid edits reparsed in part).
fn random_edits(
    seed: u64,
    rounds: usize,
    format: Format,
    base: impl Fn(&mut Rng) -> String,
    edits: &Edits,
) -> (usize, usize, usize) {
    let mut rng = Rng(seed);
    let (mut partial, mut valid, mut valid_partial) = (0, 0, 0);
    for _ in 0..rounds {
        let mut text = base(&mut rng);
        for _ in 0..4 {
            let new = (0..1 + rng.below(3)).fold(text.clone(), |t, _| edit(&mut rng, &t, edits));
            if new == text {
                continue;
            }
            let applied = check_in(&text, &new, format);
            partial += usize::from(applied);
            if whole_in(&new, format).is_err() {
                break;
            }
            valid += 1;
            valid_partial += usize::from(applied);
            text = new;
        }
    }
    eprintln!(
        "{format:?}: {partial} edits reparsed in part; of {valid} valid ones, {valid_partial}"
    );
    (partial, valid, valid_partial)
}

#[test]
fn random_edits_reparse_as_the_whole_parse() {
    let base = |rng: &mut Rng| {
        let mut text = base(12);
        if rng.below(2) == 0 {
            // headers indented, as Traefik's documentation writes them
            text = text.replace("[http.", "  [http.");
        }
        if rng.below(2) == 0 {
            // an item with a section apart from the others
            text.push_str("[http.routers.r2.tls]\noptions = \"foo\"\n\n");
        }
        text
    };
    let (partial, valid, valid_partial) =
        random_edits(0x9E37_79B9_7F4A_7C15, 6000, Format::Toml, base, &TOML_EDITS);
    // The edits must exercise the partial path, not only its refusals.
    assert!(partial > 2000 && valid_partial * 2 > valid && valid > 1000);
}

// --- YAML ---------------------------------------------------------------------------------

fn yaml_router(i: usize) -> String {
    format!("    r{i}:\n      rule: \"Host(`h{i}`)\"\n      service: s{i}\n      entryPoints:\n        - web\n")
}

fn yaml_service(i: usize) -> String {
    format!(
        "    s{i}:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:{}\"\n",
        1000 + i
    )
}

/// Routers first, then services, as Traefik's documentation lays YAML out.
fn yaml_base(n: usize) -> String {
    let mut s = String::from("http:\n  routers:\n");
    (0..n).for_each(|i| s.push_str(&yaml_router(i)));
    s.push_str("  services:\n");
    (0..n).for_each(|i| s.push_str(&yaml_service(i)));
    s
}

#[test]
fn yaml_edits_within_items_reparse_in_part() {
    let old = yaml_base(20);
    let cases = [
        old.replace("Host(`h7`)", "Host(`h7.example`)"),
        old.replace(&yaml_router(5), ""),
        old.replace(&yaml_router(19), &(yaml_router(19) + &yaml_router(20))) + &yaml_service(20),
        old.replace("    r9:", "    r9b:"),
        old.replace("127.0.0.1:1019", "127.0.0.1:2019"),
        old.replace(&yaml_router(3), &(yaml_router(3) + "      tls: {}\n")),
    ];
    for (i, new) in cases.iter().enumerate() {
        assert_ne!(*new, old);
        assert!(
            check_in(&old, new, Format::Yaml),
            "case {i} not reparsed in part:\n{new}"
        );
    }
    let mut doc = Document::parse(&old, Format::Yaml).expect("parses");
    for new in [
        // a section of http added
        format!("{old}  middlewares:\n    m:\n      addPrefix:\n        prefix: /a\n"),
        // an item moved out of its section's indentation
        old.replace("    r4:", "   r4:"),
        // a router defined twice
        old.replace(&yaml_router(3), &(yaml_router(3) + &yaml_router(8))),
        // an anchor (the fast parser leaves it)
        old.replace("      service: s2", "      service: &x s2"),
    ] {
        let kept = doc.clone();
        assert!(
            doc.reparse(&old, &new).is_none(),
            "reparsed in part:\n{new}"
        );
        assert_eq!(doc, kept);
    }
}

const YAML_LINES: &[&str] = &[
    "    r1:",
    "    r2:",
    "    rnew:",
    "    snew:",
    "    s1:",
    "      rule: \"Host(`x`)\"",
    "      service: s1",
    "      service: nope",
    "      priority: 3",
    "      priority: high",
    "      tls: {}",
    "      entryPoints:",
    "        - web",
    "      - web",
    "      loadBalancer:",
    "        servers:",
    "          - url: http://127.0.0.1:7",
    "        - url: http://127.0.0.1:8",
    "  services:",
    "  routers:",
    "  middlewares:",
    "http:",
    "tcp:",
    "    - x",
    "     odd: 1",
    "   odd: 2",
    "      rule: |",
    "      service: &a s1",
    "# a comment",
    "",
    "    \"r1\":",
    "    80:",
];

const YAML_EDITS: Edits = Edits {
    lines: YAML_LINES,
    chars: &[' ', ':', '"', '-', '\n', '#'],
    item: |i, router_of| {
        if router_of {
            yaml_router(i)
        } else {
            yaml_service(i)
        }
    },
};

#[test]
fn random_yaml_edits_reparse_as_the_whole_parse() {
    let (partial, valid, valid_partial) = random_edits(
        0xD1B5_4A32_D192_ED03,
        4000,
        Format::Yaml,
        |_| yaml_base(10),
        &YAML_EDITS,
    );
    assert!(partial > 500 && valid_partial * 2 > valid && valid > 300);
}
