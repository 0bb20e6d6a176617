//! Reparsing only what an edit of a TOML file touched.
//!
//! A generator that rewrites a 10,000-router file to add one router changes a few hundred
//! bytes of 1.7 MB; parsing the whole text again is most of what the reload costs. The text
//! before and after have a common head and tail: what lies between, widened to whole
//! sections, is parsed alone, before and after, and the items those sections define (routers,
//! services, middlewares) are replaced in the kept tree. The result is what a parse of the
//! whole new text gives (up to the order of a section's items, which no decode depends on),
//! or nothing at all when that cannot be known from the changed sections alone; the caller
//! then parses the whole text.
//!
//! It is certain only when every changed section belongs to one item and all of that item's
//! sections changed with it, which [`Outline`] records for the whole file: an item is defined
//! by its own sections only, or the file is `loose` and never reparsed in part.

use super::toml_fast::{self, NONE};
use super::yaml_fast;
use super::{Format, Node};
use rustc_hash::{FxHashMap, FxHashSet};

/// A file's tree, as kept between reloads, with the outline of a TOML file (YAML files,
/// and TOML the fast parser leaves to `toml`, have none and are always parsed whole).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub tree: Node,
    outline: Option<Outline>,
    format: Format,
}

/// Where a document's sections start and which named item each belongs to, as the fast
/// parsers record it (TOML: each header's table; YAML: each item's key line with every line
/// under it, and each line outside items).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Outline {
    /// Each section's start (its line's), in order.
    pub starts: Vec<u32>,
    /// Each section's item, an id unique to it in this document, or [`NONE`] for a section
    /// of no item (`[http.routers]`, `  services:`).
    pub items: Vec<u32>,
    /// Ids below this are taken.
    pub ids: u32,
    /// Whether something outside the items' sections sets something under `http`
    /// (`[http.routers]` then `web.rule = …`, an `http = {…}` inline table, YAML items that
    /// are a sequence): then an item's content is not all in its own sections.
    pub loose: bool,
    /// TOML: whether a key/value comes before the first header.
    pub root_keys: bool,
    /// YAML: each section's `http` section (0 routers, 1 services, 2 middlewares) for an
    /// item's, `u8::MAX` for others; and the indentation of the first line.
    pub sections: Vec<u8>,
    pub indent: usize,
}

/// The `http` sections whose items a partial reparse replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemSection {
    Routers,
    Services,
    Middlewares,
}

impl ItemSection {
    const ALL: [ItemSection; 3] = [
        ItemSection::Routers,
        ItemSection::Services,
        ItemSection::Middlewares,
    ];

    /// The section's key, as the files spell it.
    pub fn key(self) -> &'static str {
        match self {
            ItemSection::Routers => "routers",
            ItemSection::Services => "services",
            ItemSection::Middlewares => "middlewares",
        }
    }
}

/// An item a reparse changed: its new tree, or `None` when it is gone.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemChange {
    pub section: ItemSection,
    pub name: String,
    pub node: Option<Node>,
}

/// A changed region larger than this share of the text is parsed whole: it costs less than
/// two partial parses and the replacements.
const MAX_REGION_SHARE: usize = 2;

impl Document {
    /// Parses a whole text (see [`Format::parse_tree`]).
    pub fn parse(text: &str, format: Format) -> Result<Document, String> {
        let (tree, outline) = format.parse_tree_with(text, true)?;
        Ok(Document {
            tree,
            outline,
            format,
        })
    }

    /// Brings the document of `old` (which it must be) to that of `new`, parsing only the
    /// sections between their common head and tail, and returns the items that changed.
    /// `None`, leaving the document as it was, when the change is not confined to whole items
    /// of `http.routers`, `http.services` and `http.middlewares` (or is most of the file).
    pub fn reparse(&mut self, old: &str, new: &str) -> Option<Vec<ItemChange>> {
        let outline = self.outline.as_ref()?;
        if outline.loose {
            return None;
        }
        let (old_b, new_b) = (old.as_bytes(), new.as_bytes());
        let head = common_prefix(old_b, new_b);
        let limit = old_b.len().min(new_b.len()) - head;
        let tail = common_suffix(old_b, new_b, limit);
        // The changed region, widened to whole sections: from the header of the section
        // holding the byte before the first change (a change right at a header may extend
        // the section before it), to the first header after the last change.
        let first = outline
            .starts
            .partition_point(|&s| (s as usize) < head)
            .checked_sub(1)?;
        let end = outline
            .starts
            .partition_point(|&s| (s as usize) < old_b.len() - tail);
        let old_end = outline.starts.get(end).map_or(old_b.len(), |&s| s as usize);
        let new_end = (old_end + new_b.len()).checked_sub(old_b.len())?;
        let whole = |first: usize| {
            let start = outline.starts[first] as usize;
            [Region {
                sections: first..end,
                new: start..new_end,
            }]
        };
        let (one, widened) = (whole(first), first.checked_sub(1).map(whole));
        let format = self.format;
        // Where the texts repeat themselves (sections inserted before a like one), the head
        // may have grown into a section the change belongs to: then one section more. Where
        // they change in several places far apart, the region between is split at the
        // sections that did not change.
        self.reparse_regions(&one, old, new)
            .or_else(|| self.reparse_regions(widened.as_ref()?, old, new))
            .or_else(|| {
                let outline = self.outline.as_ref()?;
                let regions = split(outline, first..end, old, new, new_end, format)?;
                self.reparse_regions(&regions, old, new)
            })
    }

    /// [`Document::reparse`] of the changed `regions` (in order, apart).
    fn reparse_regions(
        &mut self,
        regions: &[Region],
        old: &str,
        new: &str,
    ) -> Option<Vec<ItemChange>> {
        let outline = self.outline.as_ref()?;
        let (old_b, new_b) = (old.as_bytes(), new.as_bytes());
        let at = |k: usize| outline.starts.get(k).map_or(old_b.len(), |&s| s as usize);
        // Each region's bytes in the old text.
        let old_ranges: Vec<std::ops::Range<usize>> = regions
            .iter()
            .map(|r| at(r.sections.start)..at(r.sections.end))
            .collect();
        let mut size = 0;
        for (r, old_range) in regions.iter().zip(&old_ranges) {
            // A region must end a line, as the old one did, so the text after it reads as
            // before.
            if r.new.end > 0 && r.new.end < new_b.len() && new_b[r.new.end - 1] != b'\n' {
                return None;
            }
            size += old_range.len().max(r.new.len());
        }
        if size > old_b.len() / MAX_REGION_SHARE {
            return None;
        }
        // Every section of a region is an item's, and all of that item's sections are in the
        // regions.
        let mut in_regions: FxHashMap<u32, u32> = FxHashMap::default();
        for r in regions {
            for &item in &outline.items[r.sections.clone()] {
                if item == NONE {
                    return None;
                }
                *in_regions.entry(item).or_default() += 1;
            }
        }
        let mut everywhere: FxHashMap<u32, u32> = FxHashMap::default();
        for item in &outline.items {
            if in_regions.contains_key(item) {
                *everywhere.entry(*item).or_default() += 1;
            }
        }
        if in_regions != everywhere {
            return None;
        }
        // Each region parsed alone, before and after, as the items it holds.
        let mut befores = Vec::with_capacity(regions.len());
        let mut afters = Vec::with_capacity(regions.len());
        let mut sections = Vec::with_capacity(regions.len());
        for (r, old_range) in regions.iter().zip(&old_ranges) {
            let (old_text, new_text) = (old.get(old_range.clone())?, new.get(r.new.clone())?);
            match self.format {
                Format::Toml => {
                    let (before, _) = toml_fast::parse_outlined(old_text)?;
                    let (after, after_outline) = toml_fast::parse_outlined(new_text)?;
                    if after_outline.loose
                        || after_outline.root_keys
                        || after_outline.items.contains(&NONE)
                    {
                        return None;
                    }
                    befores.push(before);
                    afters.push((after, after_outline));
                }
                Format::Yaml => {
                    // The items of one section of `http` (all the region's sections are
                    // items', so no line of another section's key is between them), at the
                    // indentation they had.
                    let section = *outline.sections.get(r.sections.start)?;
                    let at = yaml_fast::Ctx::Section(section);
                    let (before, before_outline) = yaml_fast::parse_outlined(old_text, at)?;
                    let (after, after_outline) = yaml_fast::parse_outlined(new_text, at)?;
                    if after_outline.loose
                        || before_outline.starts.is_empty()
                        || !after_outline.starts.is_empty()
                            && after_outline.indent != before_outline.indent
                    {
                        return None;
                    }
                    sections.push(*ItemSection::ALL.get(usize::from(section))?);
                    befores.push(before);
                    afters.push((after, after_outline));
                }
            }
        }
        let before = regions_items(self.format, &sections, befores.iter())?;
        let after = regions_items(self.format, &sections, afters.iter().map(|(tree, _)| tree))?;
        let changes = self.replace(before, after)?;
        // The outline of the new text: the regions' sections (with fresh ids), the others
        // moved by what the regions before them grew or shrank.
        let outline = self.outline.as_mut()?;
        let mut starts = Vec::with_capacity(outline.starts.len() + 16);
        let mut item_ids = Vec::with_capacity(starts.capacity());
        let mut parents = Vec::with_capacity(outline.sections.len() + 16);
        let (mut next_old, mut shift, mut ids) = (0, 0_i64, Some(outline.ids));
        for ((r, old_range), (_, after_outline)) in regions.iter().zip(&old_ranges).zip(&afters) {
            for k in next_old..r.sections.start {
                starts.push((i64::from(outline.starts[k]) + shift) as u32);
                item_ids.push(outline.items[k]);
                parents.extend(outline.sections.get(k));
            }
            parents.extend(&after_outline.sections);
            let base = ids.unwrap_or(0);
            starts.extend(after_outline.starts.iter().map(|s| s + r.new.start as u32));
            item_ids.extend(after_outline.items.iter().map(|id| id.wrapping_add(base)));
            ids = ids.and_then(|i| i.checked_add(after_outline.ids));
            shift += r.new.len() as i64 - old_range.len() as i64;
            next_old = r.sections.end;
        }
        for k in next_old..outline.starts.len() {
            starts.push((i64::from(outline.starts[k]) + shift) as u32);
            item_ids.push(outline.items[k]);
            parents.extend(outline.sections.get(k));
        }
        outline.sections = parents;
        outline.starts = starts;
        outline.items = item_ids;
        // Ids run out after ~4 billion tables' worth of reparses: then the file is parsed
        // whole once more (`loose` refuses the next partial reparse).
        match ids {
            Some(next) if next < NONE => outline.ids = next,
            _ => outline.loose = true,
        }
        Some(changes)
    }

    /// Replaces the items of `before` by those of `after` in the tree; `None`, having changed
    /// nothing, if an item of `after` that is not in `before` exists elsewhere (the whole
    /// parse would find it defined twice, or extended) or an item of `before` is missing.
    fn replace(&mut self, before: Items<'_>, after: Items<'_>) -> Option<Vec<ItemChange>> {
        let http = match &mut self.tree {
            Node::Map(entries) => entries.iter_mut().find(|(k, _)| k == "http"),
            _ => None,
        };
        let http = match http {
            Some((_, Node::Map(sections))) => sections,
            // No `http` yet: only a change that adds nothing can be placed.
            _ if after.is_empty() && before.is_empty() => return Some(Vec::new()),
            _ => return None,
        };
        // Check every section before changing any.
        let mut plans = Vec::new();
        for section in ItemSection::ALL {
            let old: Vec<&(String, Node)> = before.of(section).collect();
            let new: Vec<&(String, Node)> = after.of(section).collect();
            if old.is_empty() && new.is_empty() {
                continue;
            }
            let index = match http.iter().position(|(k, _)| k == section.key()) {
                Some(index) => index,
                // The first of its kind: the section is added, unless spelled otherwise.
                None if old.is_empty()
                    && !http
                        .iter()
                        .any(|(k, _)| k.eq_ignore_ascii_case(section.key())) =>
                {
                    http.len()
                        + plans
                            .iter()
                            .filter(|p: &&Plan| p.index >= http.len())
                            .count()
                }
                None => return None,
            };
            let entries = match http.get(index) {
                Some((_, Node::Map(entries))) => entries.as_slice(),
                Some(_) => return None,
                None => &[],
            };
            let old_names: FxHashSet<&str> = old.iter().map(|(n, _)| n.as_str()).collect();
            let new_names: FxHashSet<&str> = new.iter().map(|(n, _)| n.as_str()).collect();
            // An item in two regions has sections apart.
            if old_names.len() != old.len() || new_names.len() != new.len() {
                return None;
            }
            let mut found: FxHashMap<&str, usize> = FxHashMap::default();
            for (i, (name, _)) in entries.iter().enumerate() {
                if old_names.contains(name.as_str()) {
                    found.insert(name, i);
                } else if new_names.contains(name.as_str()) {
                    return None;
                }
            }
            if found.len() != old_names.len() {
                return None;
            }
            let found: FxHashMap<String, usize> =
                found.into_iter().map(|(k, i)| (k.to_string(), i)).collect();
            plans.push(Plan {
                section,
                index,
                old,
                new,
                found,
            });
        }
        let mut changes = Vec::new();
        for Plan {
            section,
            index,
            old,
            new,
            found,
        } in plans
        {
            if index == http.len() {
                http.push((section.key().to_string(), Node::empty()));
            }
            let Node::Map(entries) = &mut http[index].1 else {
                unreachable!("checked above");
            };
            let old_nodes: FxHashMap<&str, &Node> =
                old.iter().map(|(n, node)| (n.as_str(), node)).collect();
            let mut gone: Vec<usize> = Vec::new();
            for (name, _) in &old {
                if !new.iter().any(|(n, _)| n == name) {
                    gone.push(found[name.as_str()]);
                    changes.push(ItemChange {
                        section,
                        name: name.clone(),
                        node: None,
                    });
                }
            }
            for (name, node) in new {
                // Parsed again only for being in a region: unchanged.
                if old_nodes.get(name.as_str()) == Some(&node) {
                    continue;
                }
                match found.get(name.as_str()) {
                    Some(&i) => entries[i].1 = node.clone(),
                    None => entries.push((name.clone(), node.clone())),
                }
                changes.push(ItemChange {
                    section,
                    name: name.clone(),
                    node: Some(node.clone()),
                });
            }
            if !gone.is_empty() {
                gone.sort_unstable();
                let mut i = 0;
                entries.retain(|_| {
                    i += 1;
                    gone.binary_search(&(i - 1)).is_err()
                });
            }
        }
        Some(changes)
    }
}

/// Changed sections of the old text and the new text that replaces them.
#[derive(Debug)]
struct Region {
    /// Sections of the old text, by index.
    sections: std::ops::Range<usize>,
    /// Bytes of the new text.
    new: std::ops::Range<usize>,
}

/// Splits the changed `sections` of `old` (which the new text replaces up to `new_end`) into
/// the regions that changed, where the new text has sections of the old one unchanged in
/// between: the new text is cut where a line starts with `[` in TOML, where a line is no
/// deeper than the items' keys in YAML (a section start, or not: every region is parsed
/// alone, and refused if it does not read as whole sections), and each piece that is the
/// next old section, or a later one found once, closes a region.
fn split(
    outline: &Outline,
    sections: std::ops::Range<usize>,
    old: &str,
    new: &str,
    new_end: usize,
    format: Format,
) -> Option<Vec<Region>> {
    let (old_b, new_b) = (old.as_bytes(), new.as_bytes());
    let at = |k: usize| outline.starts.get(k).map_or(old_b.len(), |&s| s as usize);
    let text = |k: usize| &old_b[at(k)..at(k + 1)];
    let mut by_text: FxHashMap<&[u8], usize> = FxHashMap::default();
    for k in sections.clone() {
        // A text found twice is no anchor.
        by_text
            .entry(text(k))
            .and_modify(|j| *j = usize::MAX)
            .or_insert(k);
    }
    let start = at(sections.start);
    let indent_at = |text: &[u8], line: usize| text[line..].iter().position(|&b| b != b' ');
    // YAML: sections start at the lines no deeper than the deepest that starts one here.
    let deepest = match format {
        Format::Toml => 0,
        Format::Yaml => sections
            .clone()
            .filter_map(|k| indent_at(old_b, at(k)))
            .max()?,
    };
    let mut cuts = vec![start];
    let mut line = start;
    while let Some(n) = new_b[line..new_end].iter().position(|&b| b == b'\n') {
        line += n + 1;
        let cut = match (format, indent_at(&new_b[..new_end], line)) {
            (_, None) => false,
            (Format::Toml, Some(i)) => new_b[line + i] == b'[',
            (Format::Yaml, Some(i)) => i <= deepest && !matches!(new_b[line + i], b'#' | b'\n'),
        };
        if cut {
            cuts.push(line);
        }
    }
    cuts.push(new_end);
    let mut regions = Vec::new();
    let mut next = sections.start;
    // The region open since (old section, new byte).
    let mut open: Option<(usize, usize)> = None;
    for cut in cuts.windows(2) {
        let piece = &new_b[cut[0]..cut[1]];
        let found = if next < sections.end && text(next) == piece {
            Some(next)
        } else {
            by_text
                .get(piece)
                .copied()
                .filter(|&j| j != usize::MAX && j > next && j < sections.end)
        };
        match found {
            Some(j) => {
                if let Some((o, n)) = open.take() {
                    regions.push(Region {
                        sections: o..j,
                        new: n..cut[0],
                    });
                } else if j > next {
                    regions.push(Region {
                        sections: next..j,
                        new: cut[0]..cut[0],
                    });
                }
                next = j + 1;
            }
            None => {
                open.get_or_insert((next, cut[0]));
            }
        }
    }
    let (o, n) = open.unwrap_or((next, new_end));
    if o < sections.end || n < new_end {
        regions.push(Region {
            sections: o..sections.end,
            new: n..new_end,
        });
    }
    if format == Format::Yaml {
        // A YAML region's items are placed by the section they replace: text inserted between
        // two sections takes the one before it in.
        for i in 0..regions.len() {
            if regions[i].sections.is_empty() {
                let s = regions[i].sections.start.checked_sub(1)?;
                if i > 0 && regions[i - 1].sections.end > s {
                    return None;
                }
                regions[i].sections.start = s;
                regions[i].new.start -= at(s + 1) - at(s);
            }
        }
    }
    Some(regions)
}

/// What [`Document::replace`] does to one section: `index` in `http` (its length and on
/// when the section is added), the items before and after, and where the former are.
struct Plan<'a> {
    section: ItemSection,
    index: usize,
    old: Vec<&'a (String, Node)>,
    new: Vec<&'a (String, Node)>,
    found: FxHashMap<String, usize>,
}

/// The items of the regions' trees: for TOML, found in each tree (`None` if it holds anything
/// else); for YAML, each tree is the items of `sections[i]`.
fn regions_items<'a>(
    format: Format,
    sections: &[ItemSection],
    trees: impl Iterator<Item = &'a Node>,
) -> Option<Items<'a>> {
    let mut all = Items(Vec::new());
    for (i, tree) in trees.enumerate() {
        match format {
            Format::Toml => all.0.extend(items(tree)?.0),
            Format::Yaml => {
                let entries = tree.entries()?;
                if entries.iter().any(|(name, _)| name.is_empty()) {
                    return None;
                }
                all.0.push((sections[i], entries));
            }
        }
    }
    Some(all)
}

/// The items of a region's tree, by section; `None` if it holds anything else.
struct Items<'a>(Vec<(ItemSection, &'a [(String, Node)])>);

impl<'a> Items<'a> {
    fn of(&self, section: ItemSection) -> impl Iterator<Item = &'a (String, Node)> + '_ {
        self.0
            .iter()
            .filter(move |(s, _)| *s == section)
            .flat_map(|(_, entries)| entries.iter())
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, entries)| entries.is_empty())
    }
}

fn items(tree: &Node) -> Option<Items<'_>> {
    let Node::Map(root) = tree else {
        return None;
    };
    let mut out = Vec::new();
    for (key, http) in root {
        let Node::Map(sections) = http else {
            return None;
        };
        if key != "http" {
            return None;
        }
        for (key, items) in sections {
            let section = ItemSection::ALL.into_iter().find(|s| s.key() == key)?;
            let Node::Map(entries) = items else {
                return None;
            };
            if entries.iter().any(|(name, _)| name.is_empty()) {
                return None;
            }
            out.push((section, entries.as_slice()));
        }
    }
    Some(Items(out))
}

/// The length of the longest common prefix.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const CHUNK: usize = 128;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + CHUNK <= n && a[i..i + CHUNK] == b[i..i + CHUNK] {
        i += CHUNK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// The length of the longest common suffix, at most `limit`.
fn common_suffix(a: &[u8], b: &[u8], limit: usize) -> usize {
    const CHUNK: usize = 128;
    let (la, lb) = (a.len(), b.len());
    let mut i = 0;
    while i + CHUNK <= limit && a[la - i - CHUNK..la - i] == b[lb - i - CHUNK..lb - i] {
        i += CHUNK;
    }
    while i < limit && a[la - i - 1] == b[lb - i - 1] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests;
