//! The in-memory series index: id → key and head location, and postings (label name →
//! value → sorted series ids) for selectors. Rebuilt on open from the catalog and the WAL.

use crate::types::{CompiledSelector, MatchOp, SeriesKey, METRIC_LABEL};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub(crate) struct SeriesEntry {
    pub key: Arc<SeriesKey>,
    pub shard: u32,
    pub slot: u32,
}

/// A selected series.
#[derive(Clone, Debug)]
pub(crate) struct Selected {
    pub id: u64,
    pub key: Arc<SeriesKey>,
    pub shard: u32,
    pub slot: u32,
}

#[derive(Default)]
pub(crate) struct SeriesIndex {
    entries: Vec<Option<SeriesEntry>>,
    postings: HashMap<String, HashMap<String, Vec<u64>>>,
    all: Vec<u64>,
}

fn add_posting(list: &mut Vec<u64>, id: u64) {
    match list.last() {
        Some(&last) if last >= id => {
            if let Err(pos) = list.binary_search(&id) {
                list.insert(pos, id);
            }
        }
        _ => list.push(id),
    }
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

impl SeriesIndex {
    /// The id the next new series gets.
    pub(crate) fn next_id(&self) -> u64 {
        self.entries.len() as u64
    }

    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    pub(crate) fn get(&self, id: u64) -> Option<&SeriesEntry> {
        self.entries.get(id as usize).and_then(Option::as_ref)
    }

    /// Registers a series under `id` (ids may arrive out of order during replay).
    pub(crate) fn insert(&mut self, id: u64, entry: SeriesEntry) {
        let i = id as usize;
        if self.entries.len() <= i {
            self.entries.resize(i + 1, None);
        }
        if self.entries[i].is_some() {
            return;
        }
        let key = Arc::clone(&entry.key);
        self.entries[i] = Some(entry);
        add_posting(&mut self.all, id);
        add_posting(
            self.postings
                .entry(METRIC_LABEL.to_owned())
                .or_default()
                .entry(key.metric.clone())
                .or_default(),
            id,
        );
        for (k, v) in &key.labels {
            add_posting(
                self.postings
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default(),
                id,
            );
        }
    }

    /// Ids (ascending) of the series a selector matches.
    pub(crate) fn select(&self, sel: &CompiledSelector) -> Vec<Selected> {
        let mut candidates: Option<Vec<u64>> = None;
        for m in &sel.matchers {
            let list: Vec<u64> = match m.matcher.op {
                MatchOp::Equal if !m.matcher.value.is_empty() => self
                    .postings
                    .get(&m.matcher.label)
                    .and_then(|vals| vals.get(&m.matcher.value))
                    .cloned()
                    .unwrap_or_default(),
                MatchOp::Regex if !m.matches_value("") => {
                    let mut ids: Vec<u64> = Vec::new();
                    if let Some(vals) = self.postings.get(&m.matcher.label) {
                        for (v, list) in vals {
                            if m.matches_value(v) {
                                ids.extend_from_slice(list);
                            }
                        }
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    ids
                }
                _ => continue,
            };
            candidates = Some(match candidates {
                None => list,
                Some(c) => intersect(&c, &list),
            });
        }
        let ids: &[u64] = candidates.as_deref().unwrap_or(&self.all);
        ids.iter()
            .filter_map(|&id| {
                let e = self.get(id)?;
                sel.matches(&e.key).then(|| Selected {
                    id,
                    key: Arc::clone(&e.key),
                    shard: e.shard,
                    slot: e.slot,
                })
            })
            .collect()
    }

    /// Every label name in use (`__name__` included), sorted.
    pub(crate) fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .postings
            .iter()
            .filter(|(_, vals)| vals.values().any(|l| !l.is_empty()))
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    /// Every value of one label, sorted.
    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .postings
            .get(name)
            .map(|vals| {
                vals.iter()
                    .filter(|(_, l)| !l.is_empty())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// All registered series `(id, key)`, ascending id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &Arc<SeriesKey>)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as u64, &e.key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Selector;

    #[test]
    fn postings_select_and_intersect() {
        let mut idx = SeriesIndex::default();
        let keys = [
            SeriesKey::new("cpu").with_label("device", "a"),
            SeriesKey::new("cpu").with_label("device", "b"),
            SeriesKey::new("mem").with_label("device", "a"),
        ];
        // Out-of-order ids, as a replay may deliver them.
        for (id, k) in [(2u64, &keys[2]), (0, &keys[0]), (1, &keys[1])] {
            idx.insert(
                id,
                SeriesEntry {
                    key: Arc::new(k.clone()),
                    shard: 0,
                    slot: id as u32,
                },
            );
        }
        let ids = |s: Selector| -> Vec<u64> {
            idx.select(&s.compile().unwrap())
                .iter()
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(ids(Selector::all()), vec![0, 1, 2]);
        assert_eq!(ids(Selector::metric("cpu")), vec![0, 1]);
        assert_eq!(ids(Selector::metric("cpu").eq("device", "a")), vec![0]);
        assert_eq!(ids(Selector::all().re("device", "a|b")), vec![0, 1, 2]);
        assert_eq!(ids(Selector::all().re("__name__", "m.*")), vec![2]);
        assert_eq!(ids(Selector::metric("cpu").ne("device", "a")), vec![1]);
        assert_eq!(ids(Selector::metric("nope")), Vec::<u64>::new());
        assert_eq!(idx.label_names(), vec!["__name__", "device"]);
        assert_eq!(idx.label_values("device"), vec!["a", "b"]);
        assert_eq!(idx.next_id(), 3);
    }
}
