//! The scheduler's tasks by name, packed for a million of them: each task is one slot of a
//! vector, found through a hash table that holds only slot numbers. A `HashMap` of the same
//! tasks keeps its load below 7/8 by doubling, so at a million tasks it holds two million
//! buckets of name and entry (80 bytes), most of them empty; here a bucket is 8 bytes.
//!
//! Pure data: no actor, no clock.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Values by task name.
pub(super) struct TaskTable<V> {
    hasher: DefaultHashBuilder,
    /// Slot numbers, by the hash of the slot's name.
    index: HashTable<usize>,
    slots: Vec<(Arc<str>, V)>,
}

impl<V> Default for TaskTable<V> {
    fn default() -> Self {
        TaskTable {
            hasher: DefaultHashBuilder::default(),
            index: HashTable::new(),
            slots: Vec::new(),
        }
    }
}

impl<V> TaskTable<V> {
    fn slot_of(&self, name: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(name);
        let slots = &self.slots;
        self.index.find(hash, |&i| &*slots[i].0 == name).copied()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn get(&self, name: &str) -> Option<&V> {
        self.slot_of(name).map(|i| &self.slots[i].1)
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.slot_of(name).map(|i| &mut self.slots[i].1)
    }

    pub(super) fn contains_key(&self, name: &str) -> bool {
        self.slot_of(name).is_some()
    }

    /// Room for `more` tasks without growing.
    pub(super) fn reserve(&mut self, more: usize) {
        let TaskTable {
            hasher,
            index,
            slots,
        } = self;
        slots.reserve_exact(more);
        index.reserve(more, |&i| hasher.hash_one(&*slots[i].0));
    }

    /// Sets the task's value, handing back the one it replaces.
    pub(super) fn insert(&mut self, name: Arc<str>, value: V) -> Option<V> {
        if let Some(i) = self.slot_of(&name) {
            return Some(std::mem::replace(&mut self.slots[i].1, value));
        }
        let TaskTable {
            hasher,
            index,
            slots,
        } = self;
        let hash = hasher.hash_one(&*name);
        let at = slots.len();
        slots.push((name, value));
        index.insert_unique(hash, at, |&i| hasher.hash_one(&*slots[i].0));
        None
    }

    /// Takes the task out. The last slot moves into its place.
    pub(super) fn remove(&mut self, name: &str) -> Option<V> {
        let hash = self.hasher.hash_one(name);
        let slots = &self.slots;
        let found = self
            .index
            .find_entry(hash, |&i| &*slots[i].0 == name)
            .ok()?;
        let (at, _) = found.remove();
        let last = self.slots.len() - 1;
        let (_, value) = self.slots.swap_remove(at);
        if at != last {
            let moved = self.hasher.hash_one(&*self.slots[at].0);
            if let Some(i) = self.index.find_mut(moved, |&i| i == last) {
                *i = at;
            }
        }
        Some(value)
    }

    /// Keeps the tasks `keep` says yes to.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Arc<str>, &mut V) -> bool) {
        let before = self.slots.len();
        self.slots.retain_mut(|(name, value)| keep(name, value));
        if self.slots.len() == before {
            return;
        }
        // Slots moved: number them again.
        let TaskTable {
            hasher,
            index,
            slots,
        } = self;
        index.clear();
        for (at, (name, _)) in slots.iter().enumerate() {
            let hash = hasher.hash_one(&**name);
            index.insert_unique(hash, at, |&i| hasher.hash_one(&*slots[i].0));
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &V)> {
        self.slots.iter().map(|(name, value)| (name, value))
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.slots.iter_mut().map(|(_, value)| value)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Every operation, checked against a `HashMap` doing the same.
    #[test]
    fn behaves_like_a_map() {
        let mut table: TaskTable<u64> = TaskTable::default();
        let mut map: HashMap<String, u64> = HashMap::new();
        let name = |i: u64| format!("m.task_{}", i % 97);
        // A fixed walk of inserts, replacements and removals (a linear congruential sequence).
        let mut x: u64 = 7;
        for step in 0..5_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = name(x >> 33);
            match (x >> 20) % 4 {
                0 | 1 => assert_eq!(
                    table.insert(Arc::from(n.as_str()), step),
                    map.insert(n.clone(), step)
                ),
                2 => assert_eq!(table.remove(&n), map.remove(&n)),
                _ => {
                    if let Some(v) = table.get_mut(&n) {
                        *v += 1;
                    }
                    if let Some(v) = map.get_mut(&n) {
                        *v += 1;
                    }
                }
            }
            if step % 1000 == 999 {
                table.retain(|_, v| *v % 3 != 0);
                map.retain(|_, v| *v % 3 != 0);
            }
            assert_eq!(table.len(), map.len());
        }
        for i in 0..97 {
            let n = name(i);
            assert_eq!(table.get(&n), map.get(&n), "{n}");
            assert_eq!(table.contains_key(&n), map.contains_key(&n));
        }
        let mut listed: Vec<(String, u64)> =
            table.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        listed.sort();
        let mut expected: Vec<(String, u64)> = map.into_iter().collect();
        expected.sort();
        assert_eq!(listed, expected);
    }

    #[test]
    fn reserve_keeps_what_is_there() {
        let mut table: TaskTable<u8> = TaskTable::default();
        table.insert(Arc::from("a.b"), 1);
        table.reserve(10_000);
        assert_eq!(table.get("a.b"), Some(&1));
        assert_eq!(table.remove("a.b"), Some(1));
        assert_eq!(table.remove("a.b"), None);
        assert_eq!(table.len(), 0);
    }
}
