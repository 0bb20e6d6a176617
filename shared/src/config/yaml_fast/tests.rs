use super::*;
use crate::config::testing::Rng;

/// The `serde_norway` path's tree, or its error.
fn slow(text: &str) -> Result<Node, String> {
    if text.trim().is_empty() {
        return Ok(Node::empty());
    }
    let mut value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    value.apply_merge().map_err(|e| e.to_string())?;
    Ok(match value {
        serde_norway::Value::Null => Node::empty(),
        v => Node::from_yaml(&v),
    })
}

/// The fast path either declines or gives exactly the slow path's tree (and never accepts
/// what the slow path refuses). Returns whether it took the document.
fn agrees(text: &str) -> bool {
    let Some(fast) = parse(text) else {
        return false;
    };
    match slow(text) {
        Ok(tree) => assert_eq!(fast, tree, "trees differ for:\n{text}"),
        Err(e) => panic!("the fast path took what serde_norway refuses ({e}):\n{text}"),
    }
    true
}

/// Documents as Traefik's documentation and users write them: the fast path must take them.
const TAKEN: &[&str] = &[
    "http:\n  routers:\n    web:\n      rule: \"Host(`a.test`)\"\n      service: s\n      entryPoints:\n        - web\n        - websecure\n      priority: 10\n      tls: {}\n",
    "---\nhttp:\n  services:\n    s:\n      loadBalancer:\n        servers:\n        - url: \"http://127.0.0.1:8080\"\n        - url: http://127.0.0.1:8081\n          weight: 2\n        passHostHeader: false\n",
    "# comment\nhttp:   # trailing\n  middlewares:\n    strip:\n      stripPrefix:\n        prefixes: [\"/api\", '/v1', /x]\n    auth:\n      basicAuth:\n        users:\n          - 'user:$apr1$x$y'\n",
    "tcp:\n  routers:\n    redis:\n      entryPoints: [redis]\n      rule: HostSNI(`*`)\n      service: redis\n  services:\n    redis:\n      loadBalancer:\n        servers:\n          - address: 127.0.0.1:6379\n",
    "tls:\n  certificates:\n    - certFile: /c/a.crt\n      keyFile: /c/a.key\n      stores:\n        - default\n  options:\n    modern:\n      minVersion: VersionTLS13\n      sniStrict: true\n",
    "a:\n    b:\n        c: \"\\u00e9\\x41\\n\"\n        d: 'it''s'\n        e: null\n        f: ~\n        g:\n        h: []\n",
    "list:\n- a\n-   b\n- \n  - nested\n-\n  key: v\n",
    "\"quoted key\": 1\n'single': 2\n80: http\ntrue: yes\n",
    "a: b # c\nd: \"e\" # f\ng: h#i\nj: k:l\n",
];

#[test]
fn usual_documents_take_the_fast_path_and_agree() {
    for doc in TAKEN {
        assert!(agrees(doc), "declined:\n{doc}");
    }
}

/// What the fast path leaves to `serde_norway` (which may accept or refuse it).
const DECLINED: &[&str] = &[
    "a: &x 1\nb: *x\n",
    "a: !!str 1\n",
    "a: |\n  text\n",
    "a: >\n  text\n",
    "a: plain\n  continued\n",
    "a: \"quoted\n  continued\"\n",
    "a: {b: 1}\n",
    "base: &b\n  x: 1\nc:\n  <<: *b\n",
    "a: 1\n---\nb: 2\n",
    "a:\n\tb: 1\n",
    "a: 1.0\n",
    "a: 010\n",
    "a: 0x10\n",
    "a: -1\n",
    "a: True\n",
    "a: .inf\n",
    "a: 1\na: 2\n",
    "? complex\n: key\n",
    "a: [b, [c]]\n",
    "- - a\n",
    "a: b: c\n",
    "a:\n  b: 1\n c: 2\n",
    "%YAML 1.2\n---\na: 1\n",
];

/// Odd but valid spellings: taken or declined, never read otherwise than `serde_norway`.
const ODD: &[&str] = &[
    "a : 1\n",
    "a:    1\n",
    "a: 1   \n",
    "a:\n  - 1\n  -   2\n",
    "a:\n    -\n      b: 1\n",
    "a: [ ]\n",
    "a: {  }\n",
    "a: ''\n",
    "a: \"\"\n",
    "yes: on\nno: off\n",
    "a: 'x' #c\n",
    "a: \"x\"#c\n",
    "a: x #c\n",
    "- a\n- b\n",
    "  a: 1\n  b: 2\n",
    "a:\n  b:\n    c:\n  d: 1\n",
    "\"a\\u0041\": 1\n",
    "a: \"\\U0001F600\"\n",
    "a: [1, 2, 010]\n",
    "a: [x, y z]\n",
    "a: b\n---\n",
    "a: 12:30\n",
    "a: 1.2.3.4:80\n",
    "a: 9.5\n",
    "a: 1e5\n",
    "a: inf\n",
];

#[test]
fn odd_documents_agree() {
    for doc in ODD {
        agrees(doc);
    }
}

#[test]
fn the_rest_is_declined() {
    for doc in DECLINED {
        assert_eq!(parse(doc), None, "taken:\n{doc}");
    }
}

/// Scalars, among them every kind that may not read as a string.
const SCALARS: &[&str] = &[
    "web",
    "Host(`a.test`)",
    "http://127.0.0.1:80",
    "/api",
    "a b",
    "a # b",
    "a#b",
    "a: b",
    "a:b",
    "80",
    "0",
    "010",
    "1.0",
    "1e3",
    "0x1F",
    "0o17",
    "+1",
    "-1",
    "-",
    "1_000",
    "123456789012345678901",
    "true",
    "false",
    "True",
    "FALSE",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "null",
    "Null",
    "~",
    "",
    "inf",
    "nan",
    "NaN",
    ".inf",
    "-.inf",
    ".nan",
    "infinity",
    "é",
    "it's",
    "say \"hi\"",
    "back\\slash",
    "[x]",
    "{x}",
    "`x`",
    "*x",
    "&x",
    "!x",
    "%x",
    "@x",
    "?x",
    "|",
    ">",
    "x,y",
    "trailing ",
    " leading",
    "12:30",
    "2001-12-14",
    "~x",
    "<<",
];

const KEYS: &[&str] = &[
    "http",
    "routers",
    "rule",
    "service",
    "entryPoints",
    "a b",
    "80",
    "true",
    "null",
    "~",
    "x:y",
    "-k",
    "é",
    "<<",
    "key",
    "yes",
    "on",
    "1.5",
    "010",
    "a : b",
];

/// A scalar written in one of the styles YAML has for it (not always a faithful one).
fn scalar(rng: &mut Rng, from: &[&str]) -> String {
    let s = rng.pick(from);
    match rng.below(4) {
        0 => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        1 => format!("'{}'", s.replace('\'', "''")),
        _ => s.to_string(),
    }
}

/// A random document: nested mappings and sequences in the block styles, flow sequences,
/// comments, indentation of 2 or 4, sequences at or beyond their key's indentation.
fn document(rng: &mut Rng, out: &mut String, indent: usize, depth: usize) {
    let step = if rng.below(2) == 0 { 2 } else { 4 };
    for _ in 0..1 + rng.below(4) {
        let key = scalar(rng, KEYS);
        out.push_str(&" ".repeat(indent));
        out.push_str(&key);
        out.push(':');
        match if depth > 3 { 0 } else { rng.below(5) } {
            0 | 1 => {
                let v = scalar(rng, SCALARS);
                out.push(' ');
                out.push_str(&v);
                if rng.below(6) == 0 {
                    out.push_str(" # note");
                }
                out.push('\n');
            }
            2 => {
                out.push('\n');
                document(rng, out, indent + step, depth + 1);
            }
            3 => {
                out.push('\n');
                let at = if rng.below(2) == 0 {
                    indent
                } else {
                    indent + step
                };
                for _ in 0..1 + rng.below(3) {
                    out.push_str(&" ".repeat(at));
                    out.push_str("- ");
                    if rng.below(2) == 0 {
                        let v = scalar(rng, SCALARS);
                        out.push_str(&v);
                        out.push('\n');
                    } else {
                        let mut item = String::new();
                        document(rng, &mut item, at + 2, depth + 1);
                        out.push_str(item.trim_start_matches(' '));
                    }
                }
            }
            _ => {
                let items: Vec<String> = (0..rng.below(4)).map(|_| scalar(rng, SCALARS)).collect();
                out.push_str(&format!(" [{}]\n", items.join(", ")));
            }
        }
        if rng.below(8) == 0 {
            out.push_str(&" ".repeat(indent));
            out.push_str("# a comment\n");
        }
    }
}

#[test]
fn random_documents_agree_with_serde_norway() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut taken, mut total) = (0, 0);
    for _ in 0..20_000 {
        let mut doc = String::new();
        document(&mut rng, &mut doc, 0, 0);
        if rng.below(3) == 0 {
            // A byte changed, inserted or removed.
            let bytes = doc.as_bytes();
            let at = rng.below(bytes.len());
            let mut mutated = bytes[..at].to_vec();
            match rng.below(3) {
                0 => mutated.push(b" :-#'\"[]\n"[rng.below(9)]),
                1 => mutated.push(b" :-#'\"[]\n"[rng.below(9)]),
                _ => {}
            }
            mutated.extend_from_slice(&bytes[(at + rng.below(2)).min(bytes.len())..]);
            match String::from_utf8(mutated) {
                Ok(m) => doc = m,
                Err(_) => continue,
            }
        }
        total += 1;
        taken += usize::from(agrees(&doc));
    }
    eprintln!("{taken} of {total} random documents took the fast path");
    assert!(taken * 6 > total, "only {taken} of {total} taken");
}
