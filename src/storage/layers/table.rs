//! One table seen through its layers: the writer's changes not yet checkpointed (`active`),
//! the changes a checkpoint is writing right now (`frozen`), and the data file (`base`, a redb
//! read transaction as of the last checkpoint). A key's newest layer decides: a value, or a
//! tombstone (`None`) that hides what the layers below hold.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};

use redb::ReadOnlyTable;

use super::super::error::StoreError;

/// A layer of changes: key → new value, or `None` for a deletion.
pub type Changes<K, V> = BTreeMap<K, Option<V>>;

/// An owned key of a table, and the redb key type the data file stores it as.
pub trait OwnedKey: Ord + Clone + Send + Sync + 'static {
    /// The redb key type.
    type R: redb::Key + 'static;
    /// The key as redb takes it.
    fn as_redb(&self) -> <Self::R as redb::Value>::SelfType<'_>;
    /// The key redb returned.
    fn from_redb(key: <Self::R as redb::Value>::SelfType<'_>) -> Self;
    /// Bytes it takes in memory (for the checkpoint's size trigger).
    fn size(&self) -> usize;
}

/// An owned value of a table, and the redb value type the data file stores it as.
pub trait OwnedValue: Clone + Send + Sync + 'static {
    /// The redb value type.
    type R: redb::Value + 'static;
    /// The value as redb takes it.
    fn as_redb(&self) -> <Self::R as redb::Value>::SelfType<'_>;
    /// The value redb returned.
    fn from_redb(value: <Self::R as redb::Value>::SelfType<'_>) -> Self;
    /// Bytes it takes in memory.
    fn size(&self) -> usize;
}

impl OwnedKey for u64 {
    type R = u64;
    fn as_redb(&self) -> u64 {
        *self
    }
    fn from_redb(key: u64) -> u64 {
        key
    }
    fn size(&self) -> usize {
        8
    }
}

impl OwnedKey for String {
    type R = &'static str;
    fn as_redb(&self) -> &str {
        self
    }
    fn from_redb(key: &str) -> String {
        key.to_owned()
    }
    fn size(&self) -> usize {
        24 + self.len()
    }
}

impl OwnedKey for (u64, u64) {
    type R = (u64, u64);
    fn as_redb(&self) -> (u64, u64) {
        *self
    }
    fn from_redb(key: (u64, u64)) -> (u64, u64) {
        key
    }
    fn size(&self) -> usize {
        16
    }
}

impl OwnedKey for (u64, String) {
    type R = (u64, &'static str);
    fn as_redb(&self) -> (u64, &str) {
        (self.0, &self.1)
    }
    fn from_redb(key: (u64, &str)) -> (u64, String) {
        (key.0, key.1.to_owned())
    }
    fn size(&self) -> usize {
        32 + self.1.len()
    }
}

impl OwnedValue for Vec<u8> {
    type R = &'static [u8];
    fn as_redb(&self) -> &[u8] {
        self
    }
    fn from_redb(value: &[u8]) -> Vec<u8> {
        value.to_vec()
    }
    fn size(&self) -> usize {
        24 + self.len()
    }
}

impl OwnedValue for String {
    type R = &'static str;
    fn as_redb(&self) -> &str {
        self
    }
    fn from_redb(value: &str) -> String {
        value.to_owned()
    }
    fn size(&self) -> usize {
        24 + self.len()
    }
}

impl OwnedValue for u64 {
    type R = u64;
    fn as_redb(&self) -> u64 {
        *self
    }
    fn from_redb(value: u64) -> u64 {
        value
    }
    fn size(&self) -> usize {
        8
    }
}

impl OwnedValue for () {
    type R = ();
    fn as_redb(&self) {}
    fn from_redb(_: ()) {}
    fn size(&self) -> usize {
        0
    }
}

/// A BTreeMap entry's overhead, roughly (for the size trigger, not exact accounting).
const ENTRY_OVERHEAD: usize = 32;

/// The read side of a table's layers.
pub struct Layered<'a, K: OwnedKey, V: OwnedValue> {
    pub active: &'a Changes<K, V>,
    pub frozen: Option<&'a Changes<K, V>>,
    pub base: &'a ReadOnlyTable<K::R, V::R>,
}

impl<K: OwnedKey, V: OwnedValue> Clone for Layered<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: OwnedKey, V: OwnedValue> Copy for Layered<'_, K, V> {}

impl<'a, K: OwnedKey, V: OwnedValue> Layered<'a, K, V> {
    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        if let Some(change) = self.active.get(key) {
            return Ok(change.clone());
        }
        if let Some(change) = self.frozen.and_then(|f| f.get(key)) {
            return Ok(change.clone());
        }
        Ok(self
            .base
            .get(key.as_redb())?
            .map(|v| V::from_redb(v.value())))
    }

    /// Up to `limit` entries with keys within `(lo, hi)`, in key order (`reverse`: from the
    /// highest down): a merge of the layers, the newest deciding each key.
    pub fn range(
        &self,
        lo: Bound<&K>,
        hi: Bound<&K>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let bounds = (lo, hi);
        let (base_lo, base_hi) = (redb_bound(lo), redb_bound(hi));
        let base = self
            .base
            .range::<<K::R as redb::Value>::SelfType<'_>>((base_lo, base_hi))?;
        let base: Box<dyn Iterator<Item = _>> = if reverse {
            Box::new(base.rev())
        } else {
            Box::new(base)
        };
        // Values are copied out of the file only when chosen: a key the layers above shadow
        // costs its key alone.
        let mut base = base
            .map(|row| row.map(|(k, v)| (K::from_redb(k.value()), v)))
            .peekable();
        let layer = |changes: Option<&'a Changes<K, V>>| {
            let iter = changes.map(|c| c.range::<K, _>(bounds));
            let boxed: Box<dyn Iterator<Item = (&'a K, &'a Option<V>)>> = match (iter, reverse) {
                (Some(iter), true) => Box::new(iter.rev()),
                (Some(iter), false) => Box::new(iter),
                (None, _) => Box::new(std::iter::empty()),
            };
            boxed.peekable()
        };
        let mut active = layer(Some(self.active));
        let mut frozen = layer(self.frozen);
        // Whether `a` comes before `b` in the walk's direction.
        let before = |a: &K, b: &K| if reverse { a > b } else { a < b };
        loop {
            let next_base = match base.peek() {
                Some(Ok((k, _))) => Some(k.clone()),
                Some(Err(_)) => {
                    if let Some(Err(error)) = base.next() {
                        return Err(error.into());
                    }
                    None
                }
                None => None,
            };
            let candidates = [
                active.peek().map(|(k, _)| (*k).clone()),
                frozen.peek().map(|(k, _)| (*k).clone()),
                next_base,
            ];
            let Some(key) = candidates
                .iter()
                .flatten()
                .fold(None::<&K>, |best, k| match best {
                    Some(b) if !before(k, b) => Some(b),
                    _ => Some(k),
                })
                .cloned()
            else {
                return Ok(out);
            };
            // The newest layer holding the key decides; the others' entries are skipped.
            let mut value: Option<Option<V>> = None;
            if active.peek().is_some_and(|(k, _)| **k == key) {
                value = active.next().map(|(_, v)| v.clone());
            }
            if frozen.peek().is_some_and(|(k, _)| **k == key) {
                let v = frozen.next().map(|(_, v)| v.clone());
                value = value.or(v);
            }
            if base
                .peek()
                .is_some_and(|r| r.as_ref().is_ok_and(|(k, _)| *k == key))
            {
                let row = base.next().and_then(Result::ok);
                if value.is_none() {
                    value = row.map(|(_, v)| Some(V::from_redb(v.value())));
                }
            }
            if let Some(Some(value)) = value {
                out.push((key, value));
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
    }

    /// The first entry (lowest key).
    pub fn first(&self) -> Result<Option<(K, V)>, StoreError> {
        Ok(self
            .range(Bound::Unbounded, Bound::Unbounded, false, 1)?
            .pop())
    }
}

fn redb_bound<K: OwnedKey>(bound: Bound<&K>) -> Bound<<K::R as redb::Value>::SelfType<'_>> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_redb()),
        Bound::Excluded(k) => Bound::Excluded(k.as_redb()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A table as the writer changes it: reads through every layer, writes into `active`.
pub struct Staged<'a, K: OwnedKey, V: OwnedValue> {
    pub active: &'a mut Changes<K, V>,
    pub frozen: Option<&'a Changes<K, V>>,
    pub base: &'a ReadOnlyTable<K::R, V::R>,
    /// The active layer's size in bytes, roughly (shared by every table of the layer).
    pub bytes: &'a AtomicUsize,
}

impl<K: OwnedKey, V: OwnedValue> Staged<'_, K, V> {
    /// The read side.
    pub fn read(&self) -> Layered<'_, K, V> {
        Layered {
            active: self.active,
            frozen: self.frozen,
            base: self.base,
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        self.read().get(key)
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: K, value: V) {
        self.set(key, Some(value));
    }

    /// Sets `key` to `value` and returns the value it had.
    pub fn replace(&mut self, key: K, value: V) -> Result<Option<V>, StoreError> {
        let old = self.get(&key)?;
        self.put(key, value);
        Ok(old)
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: K) {
        self.set(key, None);
    }

    /// Deletes `key` and returns the value it had.
    pub fn take(&mut self, key: K) -> Result<Option<V>, StoreError> {
        let old = self.get(&key)?;
        if old.is_some() {
            self.delete(key);
        }
        Ok(old)
    }

    /// Deletes every key within `(lo, hi)`.
    pub fn delete_range(&mut self, lo: Bound<&K>, hi: Bound<&K>) -> Result<(), StoreError> {
        let keys: Vec<K> = self
            .read()
            .range(lo, hi, false, usize::MAX)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.delete(key);
        }
        Ok(())
    }

    fn set(&mut self, key: K, value: Option<V>) {
        let new_size = value.as_ref().map_or(0, V::size);
        let key_size = key.size();
        match self.active.insert(key, value) {
            // The key and the entry are counted already; only the value's size changes.
            Some(old) => {
                self.bytes.fetch_add(new_size, Ordering::Relaxed);
                self.bytes
                    .fetch_sub(old.as_ref().map_or(0, V::size), Ordering::Relaxed);
            }
            None => {
                self.bytes
                    .fetch_add(key_size + new_size + ENTRY_OVERHEAD, Ordering::Relaxed);
            }
        }
    }
}

/// Writes a layer's changes into the data file's table, in key order.
pub fn write_changes<K: OwnedKey, V: OwnedValue>(
    table: &mut redb::Table<'_, K::R, V::R>,
    changes: &Changes<K, V>,
) -> Result<(), StoreError> {
    for (key, change) in changes {
        match change {
            Some(value) => {
                table.insert(key.as_redb(), value.as_redb())?;
            }
            None => {
                table.remove(key.as_redb())?;
            }
        }
    }
    Ok(())
}
