//! Consistent hashing of replicas (`hashring`, with virtual nodes).
//!
//! Each replica owns [`VNODES`] points of the ring, so keys spread evenly,
//! and removing one replica moves only the keys it owned. A key whose
//! replica is unavailable is hashed again with an attempt number: the keys
//! of every other replica stay where they are.

use std::hash::Hash;

use hashring::HashRing;

/// Points of the ring per replica.
pub const VNODES: u32 = 64;

/// How many times a key is hashed again when its replica cannot take it.
const REHASHES: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct VNode {
    replica: u32,
    point: u32,
}

/// A ring of replica indexes.
#[derive(Debug)]
pub struct Ring {
    ring: HashRing<VNode>,
    /// How many replicas it was made for.
    replicas: usize,
}

impl Ring {
    /// A ring of `replicas` replicas, numbered from 0.
    pub fn new(replicas: usize) -> Self {
        let mut ring = HashRing::new();
        let nodes = (0..u32::try_from(replicas).unwrap_or(u32::MAX))
            .flat_map(|replica| (0..VNODES).map(move |point| VNode { replica, point }))
            .collect();
        ring.batch_add(nodes);
        Self { ring, replicas }
    }

    /// Takes replica `replica` out of the ring (its keys move to the others).
    pub fn remove(&mut self, replica: usize) {
        let Ok(replica) = u32::try_from(replica) else {
            return;
        };
        for point in 0..VNODES {
            self.ring.remove(&VNode { replica, point });
        }
    }

    /// The replica owning `key`, or, when `usable` refuses it, the owner of
    /// the key hashed again (at most [`REHASHES`] times), or else the first
    /// usable replica after the owner; `None` if no replica is usable.
    pub fn get(&self, key: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let owner = self.ring.get(&key)?.replica as usize;
        if usable(owner) {
            return Some(owner);
        }
        (1..=REHASHES)
            .find_map(|attempt| {
                let replica = self.ring.get(&(key, attempt))?.replica as usize;
                usable(replica).then_some(replica)
            })
            .or_else(|| {
                (1..self.replicas)
                    .map(|step| (owner + step) % self.replicas)
                    .find(|&replica| usable(replica))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck_macros::quickcheck;

    #[test]
    fn the_same_key_reaches_the_same_replica() {
        let ring = Ring::new(5);
        for key in 0..10_000u64 {
            let first = ring.get(key, |_| true);
            assert!(first.is_some());
            assert_eq!(ring.get(key, |_| true), first);
        }
    }

    #[test]
    fn removing_one_of_five_replicas_moves_only_its_share() {
        let five = Ring::new(5);
        let mut four = Ring::new(5);
        four.remove(2);
        let keys = 10_000u64;
        let mut moved = 0;
        for key in 0..keys {
            let before = five.get(key, |_| true).unwrap();
            let after = four.get(key, |_| true).unwrap();
            if before == 2 {
                assert_ne!(after, 2);
                moved += 1;
            } else {
                // Keys of the other replicas never move.
                assert_eq!(before, after, "key {key} moved off a live replica");
            }
        }
        // About a fifth of the keys were replica 2's.
        let share = f64::from(moved) / keys as f64;
        assert!((0.12..=0.28).contains(&share), "share {share}");
    }

    #[test]
    fn an_unavailable_replica_gives_its_keys_to_the_others_only() {
        let ring = Ring::new(5);
        for key in 0..2_000u64 {
            let owner = ring.get(key, |_| true).unwrap();
            let without = ring.get(key, |r| r != 3).unwrap();
            assert_ne!(without, 3);
            if owner != 3 {
                assert_eq!(owner, without);
            }
        }
        assert_eq!(ring.get(7, |_| false), None);
    }

    #[test]
    fn the_last_usable_replica_of_many_still_gets_every_key() {
        let ring = Ring::new(64);
        for key in 0..500u64 {
            assert_eq!(ring.get(key, |r| r == 41), Some(41));
        }
    }

    #[quickcheck]
    fn a_key_stays_with_its_replica_unless_that_one_leaves(
        replicas: u8,
        gone: u8,
        keys: Vec<u64>,
    ) -> bool {
        let n = usize::from(replicas % 16) + 2;
        let gone = usize::from(gone) % n;
        let all = Ring::new(n);
        let mut fewer = Ring::new(n);
        fewer.remove(gone);
        keys.into_iter().all(|key| {
            let before = all.get(key, |_| true).unwrap();
            let after = fewer.get(key, |_| true).unwrap();
            after != gone && (before == gone || before == after)
        })
    }
}
