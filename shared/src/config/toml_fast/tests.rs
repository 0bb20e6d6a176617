use super::*;
use crate::config::testing::Rng;

/// `toml`'s tree for a document, as `Format::parse_tree`'s slow path builds it.
fn slow(doc: &str) -> Result<Node, String> {
    toml::from_str::<toml::Table>(doc)
        .map(|t| Node::from_toml(&toml::Value::Table(t)))
        .map_err(|e| e.to_string())
}

/// The contract: whatever the fast path returns, `toml` accepts with the same tree.
fn fast_checked(doc: &str) -> Option<Node> {
    let fast = parse(doc)?;
    match slow(doc) {
        Ok(slow) => assert_eq!(fast, slow, "different trees for {doc:?}"),
        Err(e) => panic!("the fast path took {doc:?}, which toml refuses: {e}"),
    }
    Some(fast)
}

/// Valid documents the fast path must take, with `toml`'s tree.
pub(in crate::config) const VALID: &[&str] = &[
    "",
    "\n\n# only a comment\n",
    "a = 1\nb = 0x1F\nc = 0o17\nd = 0b101\ne = 1_000\nf = +3",
    "x = 1.0\ny = 1e3\nz = -0.5\nw = inf\nv = -inf\nn = 6.02e-23",
    "t = true\nf = false",
    "s = \"esc \\\" \\u00e9 \\n\"\nl = 'lit\\n'\nm = \"\"\"\nmulti\nline\"\"\"",
    "[http.routers.r]\nrule = \"Host(`a`)\"\nentryPoints = [\"web\", \"websecure\"]\n\
     [http.routers.r.tls]\n[[http.services.s.loadBalancer.servers]]\nurl = \"http://a\"\n\
     [[http.services.s.loadBalancer.servers]]\nurl = \"http://b\"\n",
    "a.b.c = 1\na.d = { e = [1, [2, 3], { f = 'g' }] }\n\"quoted key\" = 2\n",
    "[z]\nk = 1\n[a]\nk = 2\n[m.x]\n[m.a]\n",
    // Keys.
    "1 = 1\n-_- = 2\nA-z_0 = 3\n\"\" = 4\ntrue = 6\ninf = 7",
    "'' = 1\n[x]\n'' = 2\n[y.'']\nz = 3",
    "1.2 = 'dotted, not a float'\n3.14159 = 'pi'",
    "a . b\t.c = 1\n\"a.b\" = 2\n'a.c' = 3\n\"\\u0061\".x = 4",
    "\"tab\\there\" = 1\n'C:\\path' = 2\n\"é\" = 3\n\"😀\" = 4",
    // Headers.
    "[ a . \"b c\" . 'd' ]\nx = 1\n[[ e ]]\n[\te . f\t]\n",
    "[a]\n[a.b]\n[a.c.d]\n[x.y.z]\n[x.y]\n[x]",
    "[[fruit]]\nname = 'apple'\n[fruit.physical]\ncolor = 'red'\n[[fruit.variety]]\n\
     name = 'red delicious'\n[[fruit.variety]]\nname = 'granny smith'\n[[fruit]]\n\
     name = 'banana'\n[[fruit.variety]]\nname = 'plantain'",
    "[[a.b]]\nx = 1\n[a.b.c]\ny = 2\n[[a.b]]\n[a.b.c]\ny = 3",
    // A table a header's prefix made, then defined: it moves to its parent's end.
    "[a.b]\nx = 1\n[c]\ny = 2\n[a]\nz = 3",
    "top = 1\n[p.q.r]\n[p.s]\n[p.q]\n[p]\nlast = true",
    // Dotted keys through tables headers made, as far as toml allows.
    "[a.b.c]\n[a]\nb.d.x = 1",
    "[[a.b]]\n[a]\nb.c.y = 2",
    "a.b.c = 1\n[a.b.d]\ne = 2",
    "[a]\nb.c = 1\nb.d = 2\n[a.b.e]\n[a.x]",
    "[t]\na.b = 1\n\"a\".c = 2\na . d . e = 3",
    // Strings.
    "s = \"\\b\\t\\n\\f\\r\\\"\\\\\\e\\x41\\xe9\\u00e9\\U0001F600\"",
    "s = 'no \\escapes \"here\"'\nt = ''\nu = \"\"",
    "s = \"\"\"\nfirst newline dropped\"\"\"\nt = \"\"\"\n\nonly the first\"\"\"",
    "s = \"\"\"\\\n   joined \\\n\n   words\"\"\"\nt = \"\"\"a \\  \t\n  b\"\"\"",
    "s = \"\"\"one \"quote\" and \"\"two\"\"\"\"\"\nt = \"\"\"\"quoted\"\"\"\"",
    "s = '''\nlit \\n ''quotes'' '''\nt = ''''x''''\nu = '''a'''''",
    "s = \"\"\"\"\"\"\nt = ''''''\nu = \"\"\"a\\\"\"\"\"",
    "s = \"\"\"crlf\r\nkept\"\"\"\r\nt = '''crlf\r\nkept'''\r\n",
    "s = \"\"\"\\\r\n  crlf continuation\"\"\"",
    "s = \"tab\there and ünïcödé 😀\"\nt = 'tab\there'",
    "s = \"long enough for words: 0123456789abcdef\tthen a tab, ünïcödé 😀 and \\\"q\\\"\"",
    // Integers.
    "a = 0\nb = +0\nc = -0\nd = 9223372036854775807\ne = -9223372036854775808\nf = 1_2_3",
    "h = 0xDEAD_beef\ni = 0x7FFFFFFFFFFFFFFF\no = 0o0_7\nb = 0b1_0\nz = 0x0",
    // Floats.
    "a = 1.0\nb = -0.0\nc = +0.0\nd = 0e0\ne = 1E5\nf = 1e+05\ng = 3.0e-05\nh = 1_0.0_1e1_0",
    "a = nan\nb = +nan\nc = -nan\nd = +inf\ne = 1e-400\nf = 5e-324\ng = 0.1\nh = 1e308",
    "a = 123456789012345678901234567890.5\nb = 9007199254740993.0\nc = 1.7976931348623157e308",
    // Arrays.
    "a = []\nb = [ ]\nc = [1]\nd = [1,]\ne = [[], [[]]]\nf = [1, 'two', 3.0, [4], {five = 5}]",
    "a = [\n  1, # one\n  2,\n\n  # nothing\n  3,\n]\nb = [ # open\n]\n",
    "a = [\r\n  'x',\r\n  'y'\r\n]\r\nb = [1\n,2]",
    "servers = [{ url = \"http://a\" }, { url = \"http://b\", weight = 2 }]",
    // Inline tables, with what toml takes of TOML 1.1.
    "a = {}\nb = { }\nc = { x = 1 }\nd = { x = { y = { z = [] } } }",
    "a = { x.y = 1, x.z = 2, 'q'.r = 3 }\nb = { x = 1, y.z = { w = 2 } }",
    "a = {\n  x = 1, # one\n  y = 2,\n}\nb = { x = 1, }\nc = {\n}",
    // Whitespace and line ends.
    "\u{feff}a = 1",
    "\u{feff}",
    "   \t  ",
    "a = \"\"\"\r\n\"\"\"\nb = -0e0\n\"a\\u0000b\" = 1",
    "  a = 1\t# indented\n\t[b]  # header\n  c=2\r\nd\t=\t3 \n",
    "a = 1 # comment with ünicode and \t tab\n# and DEL-free ~ text",
];

/// Documents `toml` takes but the fast path leaves to it.
const DECLINED: &[&str] = &[
    "d = 1979-05-27T07:32:00Z",
    "d = 1979-05-27 07:32:00.999",
    "d = 1979-05-27",
    "t = 07:32:00",
    "a = [1979-05-27]",
    "t = true\nf = false\nd = 1979-05-27T07:32:00Z\nl = 1979-05-27\ntm = 07:32:00",
    // toml reads a table whose first key is this as a datetime.
    "[x]\n\"$__toml_private_datetime\" = \"1979-05-27\"",
    "\"$__toml_private_datetime\" = 1",
    // toml is laxer than TOML 1.1 here.
    "t = { a\n= 1 }",
    "t = { a =\n1 }",
];

/// Documents `toml` refuses.
const INVALID: &[&str] = &[
    // Numbers.
    "c = -0o17",
    "a = 0777",
    "a = 00",
    "a = 0_0",
    "a = 1.",
    "a = .5",
    "a = 1.e5",
    "a = 1e",
    "a = 1e_5",
    "a = 1_e5",
    "a = 1__0",
    "a = 1_",
    "a = _1",
    "a = 0x",
    "a = 0b1_",
    "a = 0o_1",
    "a = +0x1",
    "a = 0o8",
    "a = 0b2",
    "a = 0X1",
    "a = 0xg",
    "a = 99999999999999999999",
    "a = 9223372036854775808",
    "a = -9223372036854775809",
    "a = 0x8000000000000000",
    "a = 1e400",
    "a = -1e400",
    "a = infinity",
    "a = Inf",
    "a = NaN",
    "a = True",
    "a = truex",
    "a = 1x",
    "a = 1.5.6",
    "a = --1",
    "a = +",
    "a = 1979-05-27Tx",
    // Keys and structure.
    "a = 1\na = 2",
    "a = 1\n\"a\" = 2",
    "a = 1\n\"\\u0061\" = 2",
    "a b = 1",
    "a+b = 1",
    "é = 1",
    "a = 1 b = 2",
    "a = 1\tb = 2",
    "a = 1 2",
    "a = \"x\"y",
    "= 1",
    "a =",
    "a",
    "a.= 1",
    ".a = 1",
    "a..b = 1",
    "\"\"\"a\"\"\" = 1",
    "'''a''' = 1",
    "[t]\n[t]",
    "[a] b = 1",
    "[a]]",
    "[[a]",
    "[ [a]]",
    "[[a] ]",
    "[]",
    "[[]]",
    "[a.]",
    // Redefinitions.
    "a.b = 1\n[a]",
    "a.b.c = 1\n[a.b]",
    "[a]\nb.c = 1\n[a.b]",
    "[a.b.c]\n[a]\nb.y = 1",
    "[a.b.c]\n[a]\nb.c.t = 1",
    "[[a.b]]\n[a]\nb.y = 2",
    "[a]\nb = 1\n[a.b]",
    "[a]\nb = 1\n[a.b.c]",
    "a = {}\n[a]",
    "a = {}\na.b = 1",
    "a = { b = 1 }\n[a.c]",
    "a = { b = 1 }\n[[a]]",
    "a = [1]\n[[a]]",
    "a = []\n[a.b]",
    "a = [{}]\na.b = 1",
    "[a]\n[[a]]",
    "[[a]]\n[a]",
    "[a.b]\n[[a]]",
    "[a]\n[a.b]\n[a]",
    "[a.b]\n[a]\n[a.b]",
    "[a]\nx = 1\n[b]\n[a]",
    "t = { a = { b = 1 }, a.c = 2 }",
    "t = { a = 1, a = 2 }",
    "t = { a.b = 1, a = 2 }",
    "t = { a = 1, a.b = 2 }",
    "t = { a = [], a.b = 2 }",
    // Strings.
    "k = \"\\q\"",
    "k = \"\\ \"",
    "a = \"x\ny\"",
    "a = 'x\ny'",
    "a = \"\\ud800\"",
    "a = \"\\U00110000\"",
    "a = \"\\u12\"",
    "a = \"\\x4\"",
    "a = \"\\u00e\"",
    "a = \"ctrl \u{1}\"",
    "a = \"long enough for words: 0123456789 \u{1f} late\"",
    "a = \"long enough for words: 0123456789 \u{7f} late\"",
    "a = \"long enough for words: 0123456789 \n late\"",
    "a = \"\"\"long enough for words: 0123456789 \u{0} late\"\"\"",
    "a = \"del \u{7f}\"",
    "a = 'nul \u{0}'",
    "a = '''del \u{7f}'''",
    "a = \"\"\"ctrl \u{1b}\"\"\"",
    "a = \"\"\"a\"\"\"\"\"\"",
    "a = '''a''''''",
    "a = \"\"\"\\ x\"\"\"",
    "a = \"\"\"a\rb\"\"\"",
    "a = '''a\rb'''",
    "a = \"unterminated",
    "a = 'unterminated",
    "a = \"\"\"unterminated\"\"",
    "a = '''unterminated",
    "a = \"\\",
    // Comments and line ends.
    "a = 1 # nul \u{0}",
    "# del \u{7f}",
    "# ctrl \u{1b}",
    "a = 1\r",
    "a = 1\rb = 2",
    "a = 1\n\u{feff}b = 2",
    "\r",
    // Arrays and inline tables.
    "a = [1 2]",
    "a = [,]",
    "a = [1,,]",
    "a = [1",
    "a = [1,",
    "a = ]",
    "a = {a = 1 b = 2}",
    "a = {,}",
    "a = { a = 1,, }",
    "a = { a = 1",
    "a = { a }",
    "a = { a = }",
    "a = { [b] }",
];

#[test]
fn takes_valid_documents_with_tomls_tree() {
    for doc in VALID {
        assert!(slow(doc).is_ok(), "the corpus has an invalid doc: {doc:?}");
        assert!(
            fast_checked(doc).is_some(),
            "the fast path declined {doc:?}"
        );
    }
    for doc in DECLINED {
        assert!(slow(doc).is_ok(), "the corpus has an invalid doc: {doc:?}");
        assert_eq!(parse(doc), None, "{doc:?}");
    }
}

#[test]
fn refuses_what_toml_refuses() {
    for doc in INVALID {
        assert!(slow(doc).is_err(), "toml takes {doc:?}");
        assert_eq!(parse(doc), None, "{doc:?}");
    }
    // Nesting toml refuses (beyond 80), and less, which it takes and we decline.
    for (depth, toml_takes) in [(20, true), (100, false)] {
        let arrays = format!("a = {}{}", "[".repeat(depth), "]".repeat(depth));
        let tables = format!("a = {}1{}", "{ b = ".repeat(depth), "}".repeat(depth));
        for doc in [arrays, tables] {
            assert_eq!(slow(&doc).is_ok(), toml_takes);
            assert_eq!(parse(&doc), None);
        }
    }
    let long_key = vec!["k"; 100].join(".");
    assert_eq!(parse(&format!("{long_key} = 1")), None);
    assert_eq!(parse(&format!("[{long_key}]")), None);
}

/// Where toml 0.9 does something a reader of the TOML spec would not guess, the fast path
/// does it too (the differential tests check the rest).
#[test]
fn follows_toml_where_it_surprises() {
    let keys = |node: &Node| -> Vec<String> {
        node.entries()
            .map(|e| e.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    };
    // `[a]` after `[a.b]` moves `a` after `c`.
    let node = fast_checked("[a.b]\n[c]\n[a]").expect("valid");
    assert_eq!(keys(&node), ["c", "a"]);
    // A CRLF inside a multi-line string stays CRLF; every NaN prints the same.
    let node = fast_checked("s = \"\"\"a\r\nb\"\"\"\nn = -nan").expect("valid");
    assert_eq!(node.get("s"), Some(&Node::Leaf("a\r\nb".into())));
    assert_eq!(node.get("n"), Some(&Node::Leaf("NaN".into())));
}

/// Tables past the scanned size, where keys go through the index: duplicates, moves and
/// inline tables whose ids are reused.
#[test]
fn large_tables_use_the_index() {
    let mut doc = String::from("[t.k0.x]\n");
    for i in 1..30 {
        doc.push_str(&format!("[t.k{i}]\nv = {i}\n"));
    }
    doc.push_str("[t.k0]\nv = 0\n");
    for i in 0..50 {
        let entries: Vec<String> = (0..12).map(|j| format!("e{j} = {j}")).collect();
        doc.push_str(&format!("[u.i{i}]\nt = {{ {} }}\n", entries.join(", ")));
    }
    let node = fast_checked(&doc).expect("valid");
    let t = node.get("t").and_then(Node::entries).expect("t");
    assert_eq!(t.last().map(|(k, _)| k.as_str()), Some("k0"));
    assert_eq!(parse(&format!("{doc}[t.k7]\n")), None);
    assert_eq!(parse(&format!("{doc}[t]\nk29.w = 1\n")), None);
    let big_inline: Vec<String> = (0..20).map(|j| format!("e{j} = {j}")).collect();
    let dup = format!("t = {{ {}, e13 = 0 }}", big_inline.join(", "));
    assert!(slow(&dup).is_err());
    assert_eq!(parse(&dup), None);
}

/// The bench's 10,000-router file.
#[test]
fn takes_ten_thousand_routers() {
    let mut doc = String::new();
    for i in 0..10_000 {
        doc.push_str(&format!(
            "[http.routers.r{i}]\nrule = \"Host(`svc{i}.example.com`) && PathPrefix(`/api`)\"\n\
             service = \"s{i}\"\n\n[http.services.s{i}.loadBalancer]\n\
             servers = [{{ url = \"http://127.0.0.1:9000\" }}]\n\n"
        ));
    }
    let fast = parse(&doc).expect("the fast path takes it");
    assert_eq!(Ok(fast), slow(&doc));
}

/// Documents from TOML's grammar, small pools of keys so that collisions (duplicates,
/// redefinitions) are frequent; only constructs the fast path claims to handle.
fn document(rng: &mut Rng) -> String {
    let mut doc = String::new();
    for _ in 0..1 + rng.below(10) {
        doc.push_str(rng.pick(&["", "", " ", "\t"]));
        match rng.below(10) {
            0..=4 => {
                doc.push_str(&key(rng));
                doc.push_str(rng.pick(&[" = ", "=", "\t=  "]));
                doc.push_str(&value(rng, 0));
            }
            5 | 6 => doc.push_str(&format!("[{}]", key(rng))),
            7 => doc.push_str(&format!("[[{}]]", key(rng))),
            8 => doc.push_str("# comment"),
            _ => {}
        }
        if rng.chance(15) {
            doc.push_str(rng.pick(&[" # trailing", "\t#", " "]));
        }
        doc.push_str(rng.pick(&["\n", "\n", "\r\n", "\n\n"]));
    }
    doc
}

fn key(rng: &mut Rng) -> String {
    const PARTS: &[&str] = &[
        "a",
        "a",
        "b",
        "b",
        "c",
        "x-y",
        "_1",
        "2",
        "\"a\"",
        "'b'",
        "\"q k\"",
        "\"\\u0061\"",
        "\"\"",
        "\"é\"",
        "'c.d'",
    ];
    let mut k = rng.pick(PARTS).to_string();
    for _ in 0..rng.below(3) {
        k.push_str(rng.pick(&[".", " . ", "\t."]));
        k.push_str(rng.pick(PARTS));
    }
    k
}

fn value(rng: &mut Rng, depth: usize) -> String {
    const SCALARS: &[&str] = &[
        "0",
        "-0",
        "+7",
        "1_000",
        "9223372036854775807",
        "-9223372036854775808",
        "0xff",
        "0xDE_AD",
        "0o17",
        "0b1010",
        "1.5",
        "-0.0",
        "1e10",
        "6.02E-23",
        "1_0.0_1e-1_0",
        "inf",
        "-inf",
        "nan",
        "true",
        "false",
        "\"s\"",
        "\"\"",
        "\"esc \\\"\\t\\u00e9\\e\"",
        "'lit \\ '",
        "''",
        "\"\"\"\nml \"\" basic\\\n   x\"\"\"",
        "'''\nml 'lit'\n'''",
        "\"ünï 😀\"",
    ];
    if depth >= 3 {
        return rng.pick(SCALARS).to_string();
    }
    match rng.below(10) {
        0..=5 => rng.pick(SCALARS).to_string(),
        6 | 7 => {
            let items: Vec<String> = (0..rng.below(4)).map(|_| value(rng, depth + 1)).collect();
            let sep = rng.pick(&[", ", ",", ",\n  ", ", # c\n"]);
            let trailing = if !items.is_empty() && rng.chance(30) {
                ","
            } else {
                ""
            };
            format!("[{}{trailing}]", items.join(sep))
        }
        _ => {
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| format!("{} = {}", key(rng), value(rng, depth + 1)))
                .collect();
            let sep = rng.pick(&[", ", ",", ",\n  "]);
            let trailing = if !items.is_empty() && rng.chance(20) {
                ","
            } else {
                ""
            };
            format!("{{ {}{trailing} }}", items.join(sep))
        }
    }
}

/// Small edits at character boundaries, so the text stays a `&str`.
fn mutate(rng: &mut Rng, doc: &str) -> String {
    const INSERTS: &[&str] = &[
        "[", "]", "[[", "=", "\"", "'", "\\", "\n", "\r", "\r\n", "#", ".", ",", "{", "}", "_",
        "0", "x", "e", "+", "-", " ", "\t", "\u{0}", "\u{7f}", "é", "😀", "\"\"\"", "'''", "\\u",
        "a", "1.", "inf",
    ];
    let mut chars: Vec<char> = doc.chars().collect();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(chars.len() + 1);
        match rng.below(6) {
            0 if at < chars.len() => {
                let len = 1 + rng.below(3);
                chars.drain(at..(at + len).min(chars.len()));
            }
            1 if at < chars.len() => chars[at] = rng.pick(INSERTS).chars().next().unwrap_or('x'),
            2 | 3 => {
                let insert: Vec<char> = rng.pick(INSERTS).chars().collect();
                chars.splice(at..at, insert);
            }
            _ => {
                let text: String = chars.iter().collect();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                if rng.chance(50) {
                    lines.swap(i, j);
                } else {
                    let line = lines[i];
                    lines.insert(j, line);
                }
                chars = lines.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

/// Generated and mutated documents, and every prefix of the corpus: the fast path
/// never panics, and never takes a document toml refuses or reads differently.
#[test]
fn randomized_documents_keep_the_contract() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut generated, mut taken) = (0, 0);
    for _ in 0..4_000 {
        let doc = document(&mut rng);
        generated += 1;
        let fast = fast_checked(&doc);
        // Everything the generator writes is supported: if toml takes it, so must we.
        if fast.is_none() {
            assert!(slow(&doc).is_err(), "the fast path declined {doc:?}");
        } else {
            taken += 1;
        }
        fast_checked(&mutate(&mut rng, &doc));
    }
    // Were most documents refused, this would test little.
    assert!(taken * 3 > generated, "only {taken} of {generated} taken");
    for doc in VALID.iter().chain(DECLINED).chain(INVALID) {
        for _ in 0..10 {
            fast_checked(&mutate(&mut rng, doc));
        }
        for (at, _) in doc.char_indices() {
            fast_checked(&doc[..at]);
        }
    }
}
