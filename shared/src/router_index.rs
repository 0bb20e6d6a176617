//! An index over a set of HTTP routers that finds the winning router for a request without
//! trying every rule: routers are bucketed by the literal hosts their rule requires.
//!
//! Routers are ordered by priority (descending), then name (ascending), then input order.
//! A rule's required hosts are the finite set the request host must belong to for the rule
//! to match (`Host(a)` → {a}; `A && B` → the smaller set of A's and B's; `A || B` → the
//! union if both have one; anything else → none). Routers with a host set sit in one bucket
//! per host; the others in a wildcard list. `find` merges the request host's bucket with the
//! wildcard list in order and returns the first router whose full rule matches.

use crate::rule::{
    normalize_host, normalize_rule_host, CompiledRule, Expr, Matcher, RequestView, RuleError,
};
use rustc_hash::FxHashMap;
use std::mem::size_of;
use std::sync::Arc;

/// Routers of one entry point, indexed for matching.
#[derive(Debug, Default)]
pub struct RouterIndex {
    /// In matching order.
    entries: Vec<IndexEntry>,
    /// Normalized host → indexes into `entries`, ascending. The keys are the rules' own
    /// host strings (shared, not copied: a reload of 10,000 routers allocates no keys).
    by_host: FxHashMap<Arc<str>, Vec<u32>>,
    /// Indexes into `entries` of routers without a host set, ascending.
    wildcard: Box<[u32]>,
}

/// A rule compiled for matching, with the hosts it requires. Immutable, so one compiled
/// rule serves every entry point a router is on and every later table with the same rule
/// text (see [`crate::table::RuleCache`]).
#[derive(Debug)]
pub struct IndexedRule {
    pub rule: CompiledRule,
    /// The hosts the rule requires (normalized, sorted, deduplicated), or `None` if it can
    /// match any host.
    pub hosts: Option<Box<[Arc<str>]>>,
}

impl IndexedRule {
    /// Fails if the rule does not compile as an HTTP rule (a TCP matcher in it).
    pub fn new(expr: &Expr) -> Result<IndexedRule, RuleError> {
        let rule = CompiledRule::new(expr)?;
        let hosts = required_hosts(expr).map(|mut hosts| {
            hosts.sort_unstable();
            hosts.dedup();
            hosts.into_iter().map(Arc::from).collect()
        });
        Ok(IndexedRule { rule, hosts })
    }

    fn heap_bytes(&self) -> usize {
        self.rule.heap_bytes()
            + self.hosts.as_ref().map_or(0, |hosts| {
                // An `Arc<str>`: the pointer, and two counts before the text.
                hosts
                    .iter()
                    .map(|h| size_of::<Arc<str>>() + 16 + h.len())
                    .sum()
            })
    }
}

/// One router of the index.
#[derive(Debug)]
pub struct IndexEntry {
    pub rule: Arc<IndexedRule>,
    pub priority: i64,
    pub name: Arc<str>,
    /// The caller's value for this router, returned by [`RouterIndex::find`].
    pub value: u32,
}

impl RouterIndex {
    /// Compiles and indexes routers given as `(rule, priority, name, value)`. Fails with the
    /// name of the first router whose rule does not compile as an HTTP rule.
    pub fn build(
        routers: Vec<(Expr, i64, String, u32)>,
    ) -> Result<RouterIndex, (String, RuleError)> {
        let mut compiled = Vec::with_capacity(routers.len());
        for (expr, priority, name, value) in routers {
            match IndexedRule::new(&expr) {
                Ok(rule) => compiled.push((Arc::new(rule), priority, Arc::from(name), value)),
                Err(e) => return Err((name, e)),
            }
        }
        Ok(RouterIndex::build_compiled(compiled))
    }

    /// Indexes routers whose rules are compiled already, given as `(rule, priority, name,
    /// value)`.
    pub fn build_compiled(routers: Vec<(Arc<IndexedRule>, i64, Arc<str>, u32)>) -> RouterIndex {
        let mut entries: Vec<IndexEntry> = routers
            .into_iter()
            .map(|(rule, priority, name, value)| IndexEntry {
                rule,
                priority,
                name,
                value,
            })
            .collect();
        // Stable: equal priority and name keep input order.
        entries.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });

        let mut by_host: FxHashMap<Arc<str>, Vec<u32>> =
            FxHashMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut wildcard = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            // Saturates only past 4 billion routers.
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            match &entry.rule.hosts {
                Some(hosts) => {
                    for host in hosts.iter() {
                        by_host.entry(host.clone()).or_default().push(i);
                    }
                }
                None => wildcard.push(i),
            }
        }
        RouterIndex {
            entries,
            by_host,
            wildcard: wildcard.into_boxed_slice(),
        }
    }

    /// The value of the first router, in order, whose rule matches the request.
    pub fn find(&self, req: &RequestView<'_>) -> Option<u32> {
        self.find_entry(req).map(|e| e.value)
    }

    /// The first router, in order, whose rule matches the request.
    pub fn find_entry(&self, req: &RequestView<'_>) -> Option<&IndexEntry> {
        let mut buf = [0u8; 256];
        let host = normalize_host(req.host, &mut buf);
        let bucket: &[u32] = match host.and_then(|h| self.by_host.get(h)) {
            Some(list) => list,
            None => &[],
        };
        let (mut b, mut w) = (bucket.iter().peekable(), self.wildcard.iter().peekable());
        loop {
            let next = match (b.peek(), w.peek()) {
                (Some(&&x), Some(&&y)) if x < y => b.next(),
                (Some(_), None) => b.next(),
                (_, Some(_)) => w.next(),
                (None, None) => return None,
            };
            let entry = next.and_then(|&i| self.entries.get(i as usize))?;
            if entry.rule.rule.matches_normalized(req, host) {
                return Some(entry);
            }
        }
    }

    /// The routers, in matching order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Approximate bytes held by the index, for reporting (a rule shared with another
    /// index is counted in each).
    pub fn memory_bytes(&self) -> usize {
        let entries: usize = self
            .entries
            .iter()
            .map(|e| {
                // The name is the router's (shared); counted here, where it used to be a copy.
                size_of::<IndexEntry>()
                    + e.name.len()
                    + size_of::<IndexedRule>()
                    + 2 * size_of::<usize>() // the Arc's counts
                    + e.rule.heap_bytes()
            })
            .sum();
        let buckets: usize = self
            .by_host
            .values()
            .map(|list| list.capacity() * size_of::<u32>())
            .sum();
        // hashbrown: one control byte per slot plus the slot (the keys are the rules').
        let table = self.by_host.capacity() * (1 + size_of::<(Arc<str>, Vec<u32>)>());
        size_of::<Self>()
            + (self.entries.capacity() - self.entries.len()) * size_of::<IndexEntry>()
            + entries
            + buckets
            + table
            + self.wildcard.len() * size_of::<u32>()
    }
}

/// The normalized hosts a request must have for `expr` to match, if that set is finite.
pub fn required_hosts(expr: &Expr) -> Option<Vec<Box<str>>> {
    match expr {
        Expr::Matcher(Matcher::Host(h)) => Some(vec![normalize_rule_host(h)]),
        Expr::Matcher(_) | Expr::Not(_) => None,
        Expr::And(items) => items
            .iter()
            .filter_map(required_hosts)
            .min_by_key(|hosts| hosts.len()),
        Expr::Or(items) => {
            let mut all = Vec::new();
            for item in items {
                all.extend(required_hosts(item)?);
            }
            // An empty `Or` matches nothing: an empty set is exact.
            Some(all)
        }
    }
}

#[cfg(test)]
mod tests;
