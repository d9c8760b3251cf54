//! A cache of rendered ListCloudPhones pages.
//!
//! An entry is the serialised `phones` array and `count` of one query of one project, stored
//! with the store's data version read before the query and confirmed unchanged after it
//! (`Store::data_version`), and served only while that version is still current. Any commit
//! changes the version, so an entry never outlives the data it shows. On PostgreSQL other
//! replicas' commits change it when their notification arrives; while the store reports no
//! version (a commit under way, or the PostgreSQL listener disconnected) nothing is cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most entries kept; a full cache starts over.
const MAX_ENTRIES: usize = 4096;

#[derive(Clone)]
pub struct Page {
    pub version: u64,
    pub count: i64,
    pub phones_json: Arc<str>,
}

#[derive(Default)]
pub struct PageCache {
    entries: Mutex<HashMap<String, Page>>,
}

impl PageCache {
    /// The entry for `key` if it was rendered at `version`.
    pub fn get(&self, key: &str, version: u64) -> Option<Page> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).filter(|p| p.version == version).cloned()
    }

    pub fn put(&self, key: String, page: Page) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_the_current_version_and_stays_bounded() {
        let c = PageCache::default();
        c.put(
            "k".into(),
            Page {
                version: 3,
                count: 1,
                phones_json: "[]".into(),
            },
        );
        assert!(c.get("k", 3).is_some());
        assert!(c.get("k", 4).is_none());
        assert!(c.get("other", 3).is_none());
        for i in 0..MAX_ENTRIES + 10 {
            c.put(
                format!("k{i}"),
                Page {
                    version: 1,
                    count: 0,
                    phones_json: "[]".into(),
                },
            );
        }
        assert!(c.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
