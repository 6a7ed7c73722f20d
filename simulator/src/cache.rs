//! The cache model: a byte-bounded LRU per edge location, and an optional Origin Shield tier
//! (one more LRU that every edge's misses go through).
//!
//! Keys are 64-bit hashes of the cache key ([`key_hash`], FNV-1a then a splitmix finalizer), so
//! a cache holds no strings; at the sample sizes used here a collision is a one-in-billions
//! event. CloudFront's two edge tiers (the point of presence and its regional edge cache) are
//! folded into one "edge location" cache; its size is the share of the edge's storage that
//! this distribution gets, which CloudFront does not publish, hence a flag.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A 64-bit hash of a cache key: FNV-1a over the bytes, then the splitmix64 finalizer.
/// Platform-independent, unlike `std`'s randomly keyed hasher.
pub fn key_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A separator no key byte can equal, so ("ab","c") and ("a","bc") differ.
            h ^= 0xff;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    super::rng::mix64(h)
}

/// The keys are already well-mixed hashes: the map uses them as they are.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap = HashMap<u64, u32, BuildHasherDefault<PassThrough>>;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    key: u64,
    bytes: u64,
    prev: u32,
    next: u32,
}

/// A least-recently-used cache bounded by the total bytes of its objects.
///
/// An object larger than the whole capacity is never stored (every request for it misses).
pub struct Lru {
    capacity: u64,
    used: u64,
    map: KeyMap,
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used, evicted first.
    tail: u32,
}

impl Lru {
    /// An empty cache holding at most `capacity` bytes.
    pub fn new(capacity: u64) -> Lru {
        Lru {
            capacity,
            used: 0,
            map: KeyMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Look `key` up; on a hit, mark it most recently used. Returns whether it was a hit.
    pub fn get(&mut self, key: u64) -> bool {
        match self.map.get(&key) {
            Some(&i) => {
                self.unlink(i);
                self.push_front(i);
                true
            }
            None => false,
        }
    }

    /// Store `key` (after a miss) as most recently used, evicting least recently used objects
    /// until it fits. A key already present is refreshed with the new size.
    pub fn insert(&mut self, key: u64, bytes: u64) {
        if let Some(&i) = self.map.get(&key) {
            self.unlink(i);
            self.map.remove(&key);
            self.used -= self.nodes[i as usize].bytes;
            self.free.push(i);
        }
        if bytes > self.capacity {
            return;
        }
        while self.used + bytes > self.capacity && self.tail != NIL {
            let victim = self.tail;
            self.unlink(victim);
            let node = self.nodes[victim as usize];
            self.map.remove(&node.key);
            self.used -= node.bytes;
            self.free.push(victim);
        }
        let node = Node {
            key,
            bytes,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.map.insert(key, i);
        self.used += bytes;
        self.push_front(i);
    }

    /// Number of objects held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the cache holds no object.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.used
    }

    fn unlink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = NIL;
            n.next = old;
        }
        if old == NIL {
            self.tail = i;
        } else {
            self.nodes[old as usize].prev = i;
        }
        self.head = i;
    }
}

/// Where a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// From the edge location's cache.
    Edge,
    /// Missed the edge, hit Origin Shield (only when the shield is modelled).
    Shield,
    /// Missed every cache tier: the origin answered.
    Origin,
}

/// The cache tiers of one scenario: one LRU per edge location and the Origin Shield LRU.
///
/// The shield is always simulated; a report "without shield" reads the edge misses as the
/// origin requests, "with shield" reads the shield misses. The edge tier behaves the same
/// either way, so one pass serves both.
pub struct Tiers {
    edges: Vec<Lru>,
    edge_bytes: u64,
    shield: Lru,
}

impl Tiers {
    /// `edges` edge caches of `edge_bytes` each (more are added when a request names a new
    /// edge, as a log does) and a shield of `shield_bytes`.
    pub fn new(edges: usize, edge_bytes: u64, shield_bytes: u64) -> Tiers {
        Tiers {
            edges: (0..edges).map(|_| Lru::new(edge_bytes)).collect(),
            edge_bytes,
            shield: Lru::new(shield_bytes),
        }
    }

    /// One request for `key` (an object of `bytes`) at edge location `edge`.
    pub fn request(&mut self, edge: usize, key: u64, bytes: u64) -> Served {
        while self.edges.len() <= edge {
            self.edges.push(Lru::new(self.edge_bytes));
        }
        let cache = &mut self.edges[edge];
        if cache.get(key) {
            return Served::Edge;
        }
        cache.insert(key, bytes);
        if self.shield.get(key) {
            return Served::Shield;
        }
        self.shield.insert(key, bytes);
        Served::Origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays `trace` (one letter per request, every object 1 byte) through an LRU of
    /// `capacity` bytes; returns the hit pattern as a string of `h`/`m`.
    fn replay(capacity: u64, trace: &str) -> String {
        let mut lru = Lru::new(capacity);
        trace
            .bytes()
            .map(|c| {
                let k = u64::from(c);
                if lru.get(k) {
                    'h'
                } else {
                    lru.insert(k, 1);
                    'm'
                }
            })
            .collect()
    }

    #[test]
    fn lru_hand_computed_traces() {
        // Capacity 2: a b a c (evicts b) b (evicts a) a (evicts c) c.
        assert_eq!(replay(2, "abacbac"), "mmhmmmm");
        // Capacity 3 keeps a, b, c: only the first touches miss.
        assert_eq!(replay(3, "abcabcabc"), "mmmhhhhhh");
        // Cyclic access one larger than the cache: LRU's worst case, every request misses.
        assert_eq!(replay(3, "abcdabcd"), "mmmmmmmm");
        // Recency, not frequency: a is touched last before d arrives, so b is evicted.
        assert_eq!(replay(3, "abcad" /* evicts b */), "mmmhm");
        assert_eq!(replay(3, "abcadb"), "mmmhmm");
        assert_eq!(replay(3, "abcadc"), "mmmhmh");
    }

    #[test]
    fn lru_is_bounded_by_bytes() {
        let mut lru = Lru::new(100);
        lru.insert(1, 60);
        lru.insert(2, 30);
        assert_eq!((lru.len(), lru.used()), (2, 90));
        // 50 more bytes: evict key 1 (least recent), 30 + 50 = 80 fits.
        lru.insert(3, 50);
        assert!(!lru.get(1));
        assert!(lru.get(2) && lru.get(3));
        assert_eq!(lru.used(), 80);
        // Larger than the whole cache: not stored, nothing evicted.
        lru.insert(4, 101);
        assert!(!lru.get(4));
        assert_eq!(lru.used(), 80);
        // Re-inserting a key replaces its size.
        lru.insert(2, 10);
        assert_eq!(lru.used(), 60);
        // Exactly full is allowed.
        lru.insert(5, 40);
        assert_eq!(lru.used(), 100);
        assert!(lru.get(2) && lru.get(3) && lru.get(5));
    }

    #[test]
    fn shield_collapses_misses_from_different_edges() {
        let mut t = Tiers::new(2, 1000, 1000);
        // The same object first requested at edge 0, then at edge 1, then again at both.
        assert_eq!(t.request(0, 7, 10), Served::Origin);
        assert_eq!(t.request(1, 7, 10), Served::Shield);
        assert_eq!(t.request(0, 7, 10), Served::Edge);
        assert_eq!(t.request(1, 7, 10), Served::Edge);
        // A different object.
        assert_eq!(t.request(1, 8, 10), Served::Origin);
    }

    #[test]
    fn key_hash_separates_parts() {
        assert_ne!(key_hash(&[b"ab", b"c"]), key_hash(&[b"a", b"bc"]));
        assert_eq!(key_hash(&[b"x"]), key_hash(&[b"x"]));
        assert_ne!(key_hash(&[b"x"]), key_hash(&[b"y"]));
    }
}
