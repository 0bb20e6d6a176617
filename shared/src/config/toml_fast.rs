//! A fast path for TOML files: a single-pass parser that builds the [`Node`] tree directly.
//!
//! `toml` lexes into tokens, turns them into events, builds a borrowed tree and then a
//! `toml::Value`; on a 10,000-router file that is most of a reload. This parser reads the bytes
//! once and allocates only what the tree keeps. It is a fast path, not a second TOML
//! implementation: whatever it is not certain `toml` 0.9 accepts with exactly this tree
//! (datetimes, integers beyond 64 bits, anything malformed) it declines with `None`, and the
//! caller takes the `toml` path, which also words the errors. Where TOML 1.1 and `toml` differ
//! from TOML 1.0, it follows what `toml` 0.9 does: `\e` and `\xHH` escapes, inline tables over
//! several lines with a trailing comma, and the order of keys described at [`Kind`].

mod scalar;

use crate::config::reparse::Outline;
use crate::config::Node;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use scalar::scalar;
use std::borrow::Cow;
use std::hash::Hasher;
use std::mem;

/// Nesting of arrays and inline tables, and parts of one dotted key, beyond which we decline:
/// far below `toml`'s own limit of 80, and it keeps our recursion (here and in dropping the
/// tree) shallow whatever the input.
const MAX_DEPTH: usize = 16;
const MAX_KEY_PARTS: usize = 32;

/// Tables with more entries than this find keys through [`Parser::index`]; smaller ones (nearly
/// all) are scanned, which is faster than hashing.
const SCAN_UP_TO: usize = 8;

/// `toml::Value` reads a table whose first key is this as a datetime, so a document that uses
/// it does not give the tree its text suggests.
const DATETIME_KEY: &str = "$__toml_private_datetime";

/// Less text than a table of a Traefik file takes: the table arena is reserved for a table
/// per this many bytes (up to a million), for growing it by copying would cost a
/// 10,000-router file ~10% of its parse (reserved, untouched memory costs next to nothing).
const BYTES_PER_TABLE: usize = 32;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The node of a table's entry until [`Parser::build`] fills it in.
const PLACEHOLDER: Node = Node::Leaf(String::new());
const ROOT: u32 = 0;

/// Parses `text` into the tree `Node::from_toml` gives for `toml::from_str::<toml::Table>`,
/// or `None` if the document is invalid or uses something this parser leaves to `toml`.
pub(crate) fn parse(text: &str) -> Option<Node> {
    let mut parser = Parser::new(text);
    parser.document()?;
    Some(parser.build(ROOT))
}

/// As [`parse`], with the document's [`Outline`]: a section is a header's table, its item
/// what the header's first three keys name (`http.routers.web` for `[http.routers.web]` and
/// `[http.routers.web.tls]`) when it has three keys or more (and is not an array of tables
/// of three keys); item ids are the items' tables in the parse.
pub(crate) fn parse_outlined(text: &str) -> Option<(Node, Outline)> {
    u32::try_from(text.len()).ok()?;
    let mut parser = Parser::new(text);
    parser.outline = Some(Outline::default());
    parser.document()?;
    let mut outline = parser.outline.take()?;
    outline.ids = parser.tables.len() as u32;
    Some((parser.build(ROOT), outline))
}

/// What an outlined parse knows of the section being parsed.
#[derive(Clone, Copy)]
struct SectionShape {
    /// Keys of its header (0 for the root).
    keys: usize,
    /// Its header's first key is `http` (any case).
    http: bool,
    item: bool,
}

/// How a table came to be, which decides what may extend it later. `toml` builds a section's
/// table apart and inserts it into its parent when the next header starts; for a table that
/// existed as a header's prefix (`a` after `[a.b]`), that means `[a]` takes it out and puts
/// it back as its parent's last entry. [`Parser::open_section`] moves it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The root, a `[table]` or an `[[array]]` element: defined once and for all.
    Explicit,
    /// Made by a header's prefix (`a` of `[a.b]`): a later `[a]` may still define it.
    HeaderPrefix,
    /// Made by a dotted key (`a` of `a.b = 1`): more dotted keys may extend it, headers may
    /// not define it.
    Dotted,
    /// An inline table while it is parsed; it is a finished [`Node`] once closed.
    Inline,
    /// Made by a dotted key inside an inline table.
    InlineDotted,
    /// An array of tables: kept with the tables, its elements as its children.
    Array,
}

impl Kind {
    fn implicit(self) -> bool {
        matches!(self, Kind::HeaderPrefix | Kind::Dotted | Kind::InlineDotted)
    }

    fn dotted(self) -> bool {
        matches!(self, Kind::Dotted | Kind::InlineDotted)
    }
}

/// No table: the end of a list of children, or an entry that holds a value.
pub(crate) const NONE: u32 = u32::MAX;

struct Table {
    entries: Vec<(String, Node)>,
    /// The tables under this one, newest first, linked through their `next`: the tables its
    /// entries hold (their nodes are placeholders until [`Parser::build`]), or an array's
    /// elements. Linked through the tables rather than listed per table, which would cost
    /// every table with a child table an allocation.
    children: u32,
    next: u32,
    /// The entry holding this table in its parent.
    entry: u32,
    kind: Kind,
    indexed: bool,
    has_moved: bool,
}

impl Table {
    fn new(kind: Kind) -> Table {
        Table {
            entries: Vec::new(),
            children: NONE,
            next: NONE,
            entry: NONE,
            kind,
            indexed: false,
            has_moved: false,
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Every table still open to extension, by id; the root is [`ROOT`]. Inline tables are
    /// pushed while they are parsed and popped when closed.
    tables: Vec<Table>,
    /// (table id, key hash) → (entry index, the table it holds or [`NONE`]), for tables past
    /// [`SCAN_UP_TO`] entries: a header under `[http.routers]` finds its place among 10,000
    /// routers in O(1).
    index: FxHashMap<(u32, u64), (u32, u32)>,
    /// (table id, entry index) of the entries that moved to the end of their table (see
    /// [`Kind`]); dropped at the end.
    moved: FxHashSet<(u32, u32)>,
    /// The table that key/values go to: the root, or the last header's.
    section: u32,
    /// The parts of the keys being parsed; a key/value inside an inline table stacks its own
    /// on top of the outer one's.
    keys: Vec<Cow<'a, str>>,
    depth: usize,
    /// Recorded by [`parse_outlined`] only.
    outline: Option<Outline>,
    shape: SectionShape,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        let mut parser = Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            tables: Vec::with_capacity((text.len() / BYTES_PER_TABLE).clamp(1, 1 << 20)),
            index: FxHashMap::default(),
            moved: FxHashSet::default(),
            section: ROOT,
            keys: Vec::new(),
            depth: 0,
            outline: None,
            shape: SectionShape {
                keys: 0,
                http: false,
                item: false,
            },
        };
        parser.tables.push(Table::new(Kind::Explicit));
        parser
    }

    /// ```abnf
    /// toml = expression *( newline expression )
    /// expression = ws [ comment ] / ws keyval ws [ comment ] / ws table ws [ comment ]
    /// ```
    fn document(&mut self) -> Option<()> {
        if self.bytes.starts_with(BOM) {
            self.pos = BOM.len();
        }
        loop {
            let line = self.pos;
            self.skip_ws();
            match self.peek() {
                None => return Some(()),
                Some(b'[') => self.header(line)?,
                Some(b'#' | b'\n' | b'\r') => {}
                Some(_) => {
                    self.key()?;
                    if self.outline.is_some() {
                        self.note_keyval();
                    }
                    if !self.eat(b'=') {
                        return None;
                    }
                    self.skip_ws();
                    let value = self.value()?;
                    let mut keys = mem::take(&mut self.keys);
                    let inserted = self.insert(self.section, &mut keys, value, Kind::Dotted);
                    keys.clear();
                    self.keys = keys;
                    inserted?;
                }
            }
            self.line_end()?;
        }
    }

    /// `[a.b]` or `[[a.b]]` on the line starting at `line`, up to the closing bracket.
    fn header(&mut self, line: usize) -> Option<()> {
        self.pos += 1;
        let array = self.eat(b'[');
        self.skip_ws();
        self.key()?;
        if !self.eat(b']') || array && !self.eat(b']') {
            return None;
        }
        let mut keys = mem::take(&mut self.keys);
        let shape = SectionShape {
            keys: keys.len(),
            http: keys[0].eq_ignore_ascii_case("http"),
            item: keys.len() > 3 || keys.len() == 3 && !array,
        };
        let opened = self.open_section(&mut keys, array);
        keys.clear();
        self.keys = keys;
        let item = opened?;
        if let Some(outline) = &mut self.outline {
            self.shape = shape;
            outline.starts.push(line as u32);
            outline.items.push(if shape.item { item } else { NONE });
            // An array of tables at an item's level or above: its elements are no items.
            outline.loose |= array && shape.http && !shape.item;
        }
        Some(())
    }

    /// Records what a key/value just read (its key in [`Parser::keys`]) sets, for the outline.
    fn note_keyval(&mut self) {
        let shape = self.shape;
        let Some(outline) = &mut self.outline else {
            return;
        };
        if shape.keys == 0 {
            outline.root_keys = true;
        }
        let http = if shape.keys == 0 {
            self.keys[0].eq_ignore_ascii_case("http")
        } else {
            shape.http
        };
        outline.loose |= http && !shape.item;
    }

    /// Makes the header's table the section, with `toml`'s rules for what a header may define.
    /// Returns the table of the header's first three keys ([`NONE`] with fewer).
    fn open_section(&mut self, keys: &mut [Cow<'a, str>], array: bool) -> Option<u32> {
        let (last, path) = keys.split_last_mut()?;
        let mut table = ROOT;
        let mut item = NONE;
        for (depth, key) in path.iter_mut().enumerate() {
            table = match self.lookup(table, key)? {
                None => self.add_table(table, mem::take(key), Kind::HeaderPrefix)?,
                // A header may pass through any table (inline ones are values by now).
                Some((_, child)) if child != NONE => self.last_element(child),
                Some(_) => return None,
            };
            if depth == 2 {
                item = table;
            }
        }
        let existing = self.lookup(table, last)?;
        self.section = match existing {
            None if array => {
                let list = self.add_table(table, mem::take(last), Kind::Array)?;
                self.add_element(list)
            }
            None => self.add_table(table, mem::take(last), Kind::Explicit)?,
            Some((_, child)) if child == NONE => return None,
            Some((_, list)) if array => match self.tables[list as usize].kind {
                Kind::Array => self.add_element(list),
                _ => return None,
            },
            Some((i, child)) => match self.tables[child as usize].kind {
                Kind::HeaderPrefix => {
                    self.tables[child as usize].kind = Kind::Explicit;
                    self.move_to_end(table, i, child)?;
                    child
                }
                _ => return None,
            },
        };
        Some(if path.len() == 2 { self.section } else { item })
    }

    /// Inserts a key/value into `table` (a section or an inline table), making the tables
    /// of a dotted key's prefix as `new_kind`, with `toml`'s rules for what a dotted key may
    /// extend.
    fn insert(
        &mut self,
        mut table: u32,
        keys: &mut [Cow<'a, str>],
        value: Node,
        new_kind: Kind,
    ) -> Option<()> {
        let (last, path) = keys.split_last_mut()?;
        for key in path.iter_mut() {
            table = match self.lookup(table, key)? {
                None => self.add_table(table, mem::take(key), new_kind)?,
                // Neither a `[table]` nor an inline table may be extended by dotted keys; an
                // array of tables' last element may, for `toml` does not check it.
                Some((_, child)) if child != NONE => match self.tables[child as usize].kind {
                    Kind::Array => self.last_element(child),
                    kind if kind.implicit() => child,
                    _ => return None,
                },
                Some(_) => return None,
            };
        }
        // A plain key may not go into a table made by dotted keys, a dotted one only there
        // (`[a.b.c]`, `[a]`, `b.x = 1` is refused: `b` was made by a header).
        if self.tables[table as usize].kind.dotted() == path.is_empty() {
            return None;
        }
        if self.lookup(table, last)?.is_some() {
            return None;
        }
        self.push(table, mem::take(last).into_owned(), value, NONE)
    }

    fn new_table(&mut self, kind: Kind) -> u32 {
        self.tables.push(Table::new(kind));
        (self.tables.len() - 1) as u32
    }

    fn add_table(&mut self, parent: u32, key: Cow<'a, str>, kind: Kind) -> Option<u32> {
        let child = self.new_table(kind);
        let entry = self.tables[parent as usize].entries.len();
        self.link(parent, child, entry);
        self.push(parent, key.into_owned(), PLACEHOLDER, child)?;
        Some(child)
    }

    fn add_element(&mut self, list: u32) -> u32 {
        let element = self.new_table(Kind::Explicit);
        self.link(list, element, 0);
        element
    }

    /// The table itself, or an array of tables' last element.
    fn last_element(&self, table: u32) -> u32 {
        let t = &self.tables[table as usize];
        if t.kind == Kind::Array {
            t.children
        } else {
            table
        }
    }

    fn link(&mut self, parent: u32, child: u32, entry: usize) {
        let next = mem::replace(&mut self.tables[parent as usize].children, child);
        let c = &mut self.tables[child as usize];
        c.next = next;
        c.entry = entry as u32;
    }

    /// The entry of `key` in `table` and the table it holds ([`NONE`] for a value),
    /// `Some(None)` if absent; `None` (decline) on a hash collision, which we do not resolve.
    fn lookup(&self, table: u32, key: &str) -> Option<Option<(usize, u32)>> {
        let t = &self.tables[table as usize];
        if t.indexed {
            return match self.index.get(&(table, hash(key))) {
                None => Some(None),
                Some(&(i, child)) if t.entries.get(i as usize).is_some_and(|(k, _)| k == key) => {
                    Some(Some((i as usize, child)))
                }
                Some(_) => None,
            };
        }
        Some(
            t.entries
                .iter()
                .enumerate()
                .position(|(i, (k, _))| k == key && !self.is_moved(table, i))
                .map(|i| (i, self.child_at(table, i))),
        )
    }

    /// The table entry `i` of `table` holds, or [`NONE`]: a walk of its children, which are
    /// few in a table small enough to be scanned.
    fn child_at(&self, table: u32, i: usize) -> u32 {
        let mut child = self.tables[table as usize].children;
        while child != NONE {
            let c = &self.tables[child as usize];
            if c.entry as usize == i {
                break;
            }
            child = c.next;
        }
        child
    }

    fn is_moved(&self, table: u32, i: usize) -> bool {
        self.tables[table as usize].has_moved && self.moved.contains(&(table, i as u32))
    }

    /// Appends an entry holding `node`, or the table `child` (already linked to the entry, its
    /// node a placeholder); `None` on a hash collision while indexing.
    fn push(&mut self, table: u32, key: String, node: Node, child: u32) -> Option<()> {
        let t = &mut self.tables[table as usize];
        if t.indexed {
            let i = t.entries.len() as u32;
            self.index.insert((table, hash(&key)), (i, child));
        }
        push_tight(&mut t.entries, (key, node));
        if t.indexed || t.entries.len() <= SCAN_UP_TO {
            return Some(());
        }
        t.indexed = true;
        for i in 0..t.entries.len() {
            if self.is_moved(table, i) {
                continue;
            }
            let key = hash(&self.tables[table as usize].entries[i].0);
            let child = self.child_at(table, i);
            if self.index.insert((table, key), (i as u32, child)).is_some() {
                return None;
            }
        }
        Some(())
    }

    fn move_to_end(&mut self, table: u32, i: usize, child: u32) -> Option<()> {
        let t = &mut self.tables[table as usize];
        let key = mem::take(&mut t.entries[i].0);
        let entry = t.entries.len();
        t.has_moved = true;
        self.moved.insert((table, i as u32));
        self.tables[child as usize].entry = entry as u32;
        // `push` re-points the index at the new entry.
        self.push(table, key, PLACEHOLDER, child)
    }

    /// Turns a table and everything under it into its finished node.
    fn build(&mut self, id: u32) -> Node {
        let table = &mut self.tables[id as usize];
        let mut entries = mem::take(&mut table.entries);
        let mut child = table.children;
        let has_moved = table.has_moved;
        // A closed inline table's id is reused by the next one; so must its index entries.
        if table.indexed && matches!(table.kind, Kind::Inline | Kind::InlineDotted) {
            for (k, _) in &entries {
                self.index.remove(&(id, hash(k)));
            }
        }
        while child != NONE {
            let (next, entry, kind) = {
                let c = &self.tables[child as usize];
                (c.next, c.entry, c.kind)
            };
            let node = if kind == Kind::Array {
                self.build_array(child)
            } else {
                self.build(child)
            };
            if let Some((_, slot)) = entries.get_mut(entry as usize) {
                *slot = node;
            }
            child = next;
        }
        if has_moved {
            let mut i = 0;
            entries.retain(|_| {
                i += 1;
                !self.moved.contains(&(id, i - 1))
            });
        }
        Node::Map(entries)
    }

    fn build_array(&mut self, id: u32) -> Node {
        // Linked newest first.
        let mut elements = Vec::new();
        let mut element = self.tables[id as usize].children;
        while element != NONE {
            elements.push(element);
            element = self.tables[element as usize].next;
        }
        Node::List(elements.into_iter().rev().map(|e| self.build(e)).collect())
    }

    /// ```abnf
    /// val = string / boolean / array / inline-table / date-time / float / integer
    /// ```
    fn value(&mut self) -> Option<Node> {
        match self.peek()? {
            b'"' if self.bytes[self.pos..].starts_with(b"\"\"\"") => {
                self.ml_basic_string().map(|s| Node::Leaf(s.into_owned()))
            }
            b'"' => self.basic_string().map(|s| Node::Leaf(s.into_owned())),
            b'\'' if self.bytes[self.pos..].starts_with(b"'''") => {
                self.ml_literal_string().map(|s| Node::Leaf(s.to_string()))
            }
            b'\'' => self.literal_string().map(|s| Node::Leaf(s.to_string())),
            b'[' => self.array(),
            b'{' => self.inline_table(),
            _ => {
                let start = self.pos;
                self.skip(&SCALAR);
                scalar(self.text.get(start..self.pos)?).map(Node::Leaf)
            }
        }
    }

    /// ```abnf
    /// array = array-open [ array-values ] ws-comment-newline array-close
    /// array-values = ws-comment-newline val ws-comment-newline [ array-sep [ array-values ] ]
    /// ```
    fn array(&mut self) -> Option<Node> {
        self.pos += 1;
        self.enter()?;
        let mut items = Vec::new();
        loop {
            self.ws_comment_newline()?;
            if self.eat(b']') {
                break;
            }
            push_tight(&mut items, self.value()?);
            self.ws_comment_newline()?;
            if self.eat(b']') {
                break;
            }
            if !self.eat(b',') {
                return None;
            }
        }
        self.depth -= 1;
        Some(Node::List(items))
    }

    /// An inline table, with what `toml` takes of TOML 1.1 (newlines and comments between
    /// entries, a trailing comma), but not its laxer extras (a newline around `=`).
    fn inline_table(&mut self) -> Option<Node> {
        self.pos += 1;
        self.enter()?;
        let id = self.new_table(Kind::Inline);
        let first_key = self.keys.len();
        loop {
            self.ws_comment_newline()?;
            if self.eat(b'}') {
                break;
            }
            self.key()?;
            if !self.eat(b'=') {
                return None;
            }
            self.skip_ws();
            let value = self.value()?;
            let mut keys = mem::take(&mut self.keys);
            let inserted = self.insert(id, &mut keys[first_key..], value, Kind::InlineDotted);
            keys.truncate(first_key);
            self.keys = keys;
            inserted?;
            self.ws_comment_newline()?;
            if self.eat(b'}') {
                break;
            }
            if !self.eat(b',') {
                return None;
            }
        }
        self.depth -= 1;
        // Nothing can extend it any more: finish it now and free its ids (the tables of its
        // dotted keys and nested inline tables come after it).
        let node = self.build(id);
        self.tables.truncate(id as usize);
        Some(node)
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// A key, simple or dotted, onto [`Parser::keys`]; eats the whitespace after it.
    fn key(&mut self) -> Option<()> {
        let first = self.keys.len();
        loop {
            let part = match self.peek()? {
                // `"""` and `'''` are not keys; `toml` refuses them too.
                b'"' if !self.bytes[self.pos..].starts_with(b"\"\"\"") => self.basic_string()?,
                b'\'' if !self.bytes[self.pos..].starts_with(b"'''") => {
                    Cow::Borrowed(self.literal_string()?)
                }
                _ => {
                    let start = self.pos;
                    self.skip(&BARE_KEY);
                    if self.pos == start {
                        return None;
                    }
                    Cow::Borrowed(self.text.get(start..self.pos)?)
                }
            };
            if part == DATETIME_KEY || self.keys.len() - first == MAX_KEY_PARTS {
                return None;
            }
            self.keys.push(part);
            self.skip_ws();
            if !self.eat(b'.') {
                return Some(());
            }
            self.skip_ws();
        }
    }

    /// `"…"`, borrowed from the text unless it has escapes.
    fn basic_string(&mut self) -> Option<Cow<'a, str>> {
        self.pos += 1;
        let start = self.pos;
        let mut owned: Option<String> = None;
        let mut segment = start;
        loop {
            self.skip(&BASIC);
            match *self.bytes.get(self.pos)? {
                b'"' => break,
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(self.text.get(segment..self.pos)?);
                    self.pos += 1;
                    s.push(self.escape()?);
                    segment = self.pos;
                }
                _ => return None,
            }
        }
        let end = self.pos;
        self.pos += 1;
        self.finish_string(owned, start, segment, end)
    }

    /// `"""…"""`: a newline right after the opening quotes is dropped, a backslash at the
    /// end of a line drops the line break and the whitespace after it, and a CRLF stays CRLF
    /// (as in `toml`).
    fn ml_basic_string(&mut self) -> Option<Cow<'a, str>> {
        self.pos += 3;
        self.eat_newline();
        let start = self.pos;
        let mut owned: Option<String> = None;
        let mut segment = start;
        let end = loop {
            self.skip(&BASIC);
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    if let Some(end) = self.quotes_close(b'"')? {
                        break end;
                    }
                }
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(self.text.get(segment..self.pos)?);
                    self.pos += 1;
                    if matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                        self.skip_ws();
                        if !self.eat_newline() {
                            return None;
                        }
                        loop {
                            self.skip_ws();
                            if !self.eat_newline() {
                                break;
                            }
                        }
                    } else {
                        s.push(self.escape()?);
                    }
                    segment = self.pos;
                }
                b'\n' => self.pos += 1,
                b'\r' if self.bytes.get(self.pos + 1) == Some(&b'\n') => self.pos += 2,
                _ => return None,
            }
        };
        self.finish_string(owned, start, segment, end)
    }

    fn finish_string(
        &self,
        owned: Option<String>,
        start: usize,
        segment: usize,
        end: usize,
    ) -> Option<Cow<'a, str>> {
        Some(match owned {
            None => Cow::Borrowed(self.text.get(start..end)?),
            Some(mut s) => {
                s.push_str(self.text.get(segment..end)?);
                Cow::Owned(s)
            }
        })
    }

    /// Past a run of `quote`s inside a multi-line string: `Some(Some(end of the content))` if
    /// it closes the string (the run's first quotes beyond three, at most two, are content),
    /// `Some(None)` if it is content, `None` if it is six quotes or more, which `toml` refuses.
    fn quotes_close(&mut self, quote: u8) -> Option<Option<usize>> {
        let run = self.bytes[self.pos..]
            .iter()
            .take_while(|&&b| b == quote)
            .count();
        let start = self.pos;
        self.pos += run;
        match run {
            0..=2 => Some(None),
            3..=5 => Some(Some(start + run - 3)),
            _ => None,
        }
    }

    /// ```abnf
    /// escape-seq-char = %x22 / %x5C / %x62 / %x65 / %x66 / %x6E / %x72 / %x74
    ///                 / %x78 2HEXDIG / %x75 4HEXDIG / %x55 8HEXDIG
    /// ```
    fn escape(&mut self) -> Option<char> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'b' => '\u{8}',
            b'e' => '\u{1b}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'x' => self.hex_escape(2)?,
            b'u' => self.hex_escape(4)?,
            b'U' => self.hex_escape(8)?,
            _ => return None,
        })
    }

    fn hex_escape(&mut self, digits: usize) -> Option<char> {
        let hex = self.bytes.get(self.pos..self.pos + digits)?;
        let mut code = 0u32;
        for &b in hex {
            code = code * 16 + char::from(b).to_digit(16)?;
        }
        self.pos += digits;
        // Surrogates and values past U+10FFFF are refused, as by `toml`.
        char::from_u32(code)
    }

    /// `'…'`, always borrowed.
    fn literal_string(&mut self) -> Option<&'a str> {
        self.pos += 1;
        let start = self.pos;
        self.skip(&LITERAL);
        if self.peek()? != b'\'' {
            return None;
        }
        let end = self.pos;
        self.pos += 1;
        self.text.get(start..end)
    }

    /// `'''…'''`, always borrowed (a CRLF inside stays CRLF, as in `toml`).
    fn ml_literal_string(&mut self) -> Option<&'a str> {
        self.pos += 3;
        self.eat_newline();
        let start = self.pos;
        let end = loop {
            self.skip(&LITERAL);
            match *self.bytes.get(self.pos)? {
                b'\'' => {
                    if let Some(end) = self.quotes_close(b'\'')? {
                        break end;
                    }
                }
                b'\n' => self.pos += 1,
                b'\r' if self.bytes.get(self.pos + 1) == Some(&b'\n') => self.pos += 2,
                _ => return None,
            }
        };
        self.text.get(start..end)
    }

    /// Advances over a run of bytes of a class.
    fn skip(&mut self, class: &[bool; 256]) {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        self.pos += rest
            .iter()
            .position(|&b| !class[b as usize])
            .unwrap_or(rest.len());
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.pos += usize::from(hit);
        hit
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// LF or CRLF; a CR alone is an error, left for the caller to trip on.
    fn eat_newline(&mut self) -> bool {
        match self.peek() {
            Some(b'\n') => {
                self.pos += 1;
                true
            }
            Some(b'\r') if self.bytes.get(self.pos + 1) == Some(&b'\n') => {
                self.pos += 2;
                true
            }
            _ => false,
        }
    }

    /// `#` and the rest of the line, which must be printable (tab, no other control).
    fn comment(&mut self) -> Option<()> {
        self.pos += 1;
        self.skip(&COMMENT);
        matches!(self.peek(), None | Some(b'\n' | b'\r')).then_some(())
    }

    /// The end of an expression: whitespace, a comment, then a newline or the end.
    fn line_end(&mut self) -> Option<()> {
        self.skip_ws();
        if self.peek() == Some(b'#') {
            self.comment()?;
        }
        (self.peek().is_none() || self.eat_newline()).then_some(())
    }

    /// Whitespace, comments and newlines, inside arrays and inline tables.
    fn ws_comment_newline(&mut self) -> Option<()> {
        loop {
            self.skip_ws();
            if self.peek() == Some(b'#') {
                self.comment()?;
            }
            if !self.eat_newline() {
                return (self.peek() != Some(b'\r')).then_some(());
            }
        }
    }
}

/// `Vec::push`, but growing to 1, 2, 4… entries where `Vec` starts at 4: most tables and
/// arrays of a configuration have one or two entries, and the tree keeps its vectors as built
/// (smaller vectors: a faster parse and a faster drop).
fn push_tight<T>(vec: &mut Vec<T>, item: T) {
    if vec.len() == vec.capacity() {
        vec.reserve_exact(vec.len().max(1));
    }
    vec.push(item);
}

/// A key's hash in [`Parser::index`].
fn hash(key: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(key.as_bytes());
    hasher.finish()
}

/// Byte classes, indexed by byte. Bytes of multi-byte characters (≥ 0x80) are allowed in
/// strings and comments: the text is a `&str`, so they form valid scalar values.
macro_rules! byte_class {
    ($($allowed:tt)+) => {{
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            table[b] = matches!(b as u8, $($allowed)+);
            b += 1;
        }
        table
    }};
}

/// ```abnf
/// unquoted-key = 1*( ALPHA / DIGIT / %x2D / %x5F )
/// ```
const BARE_KEY: [bool; 256] = byte_class!(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_');

/// What a boolean or number (or a declined datetime) is made of, up to the next delimiter.
const SCALAR: [bool; 256] =
    byte_class!(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'-' | b'_' | b'.');

/// ```abnf
/// basic-unescaped = wschar / %x21 / %x23-5B / %x5D-7E / non-ascii
/// ```
const BASIC: [bool; 256] =
    byte_class!(b' ' | b'\t' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF);

/// ```abnf
/// literal-char = %x09 / %x20-26 / %x28-7E / non-ascii
/// ```
const LITERAL: [bool; 256] = byte_class!(b'\t' | 0x20..=0x26 | 0x28..=0x7E | 0x80..=0xFF);

/// ```abnf
/// non-eol = %x09 / %x20-7E / non-ascii
/// ```
const COMMENT: [bool; 256] = byte_class!(b'\t' | 0x20..=0x7E | 0x80..=0xFF);

#[cfg(test)]
pub(super) mod tests;
