//! Maps kept in memory for a while (kept SQL sessions, statements planned
//! for the call that runs them), bounded in entries.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Makes room in `map` for `key` when it is full (`max` entries, none of
/// them `key`): the entries `ttl` old or older (by `born`) go first, then,
/// if it is still full, the oldest.
pub(crate) fn make_room<K, V>(
    map: &mut HashMap<K, V>,
    key: &K,
    max: usize,
    ttl: Duration,
    now: Instant,
    born: impl Fn(&V) -> Instant,
) where
    K: Eq + Hash + Clone,
{
    if map.len() < max || map.contains_key(key) {
        return;
    }
    map.retain(|_, v| now.saturating_duration_since(born(v)) < ttl);
    if map.len() >= max {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| born(v))
            .map(|(k, _)| k.clone());
        if let Some(oldest) = oldest {
            map.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_expired_entries_then_the_oldest() {
        let now = Instant::now();
        let ttl = Duration::from_secs(10);
        let at = |secs: u64| now - Duration::from_secs(secs);
        let mut map = HashMap::from([(1, at(20)), (2, at(15)), (3, at(5)), (4, at(1))]);
        // Not full, or the key is there: nothing goes.
        make_room(&mut map, &9, 5, ttl, now, |b| *b);
        make_room(&mut map, &3, 4, ttl, now, |b| *b);
        assert_eq!(map.len(), 4);
        // Full: both expired entries go.
        make_room(&mut map, &9, 4, ttl, now, |b| *b);
        let mut left: Vec<_> = map.keys().copied().collect();
        left.sort();
        assert_eq!(left, [3, 4]);
        // Full of fresh entries: the oldest goes.
        make_room(&mut map, &9, 2, ttl, now, |b| *b);
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), [4]);
    }
}
