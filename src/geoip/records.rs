//! Decoded records of one IP database, kept by where they sit in it.
//!
//! Many networks point at one record (every range of a province's carrier shares the
//! same country, province, carrier and ASN), and decoding a record (serde over the
//! MaxMind format, then folding province and carrier spellings) costs several times the
//! tree walk that finds it. So decoded records are kept in a fixed table of slots, each
//! an arc-swap pointer: a read takes no lock, a record whose slot is taken by another
//! replaces it, and memory is bounded by the slot count. Keyed by the record's offset
//! in the database, so two addresses share an entry exactly when the database gives
//! them the same record; whatever depends on the address itself (operator overrides) is
//! applied after, per lookup.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

/// Slots per table. A slot holds one record; a whole-country database built from open
/// data has tens of thousands, of which the clients of one server hit far fewer.
pub(crate) const SLOTS: usize = 8192;

/// Decoded records by offset; see the module documentation.
pub(crate) struct RecordCache<T> {
    slots: Box<[ArcSwapOption<(usize, T)>]>,
    /// `64 - log2(slots)`: the top bits of the offset's hash pick the slot.
    shift: u32,
}

impl<T: Clone> RecordCache<T> {
    /// A table of `slots` slots, rounded up to a power of two.
    pub(crate) fn new(slots: usize) -> Self {
        let slots = slots.max(2).next_power_of_two();
        Self {
            slots: (0..slots).map(|_| ArcSwapOption::empty()).collect(),
            shift: 64 - slots.trailing_zeros(),
        }
    }

    /// The record at `offset`: a copy of the kept one, or `decode()` kept for next time.
    pub(crate) fn get_or_decode(&self, offset: usize, decode: impl FnOnce() -> T) -> T {
        let slot = &self.slots[self.slot_of(offset)];
        if let Some(kept) = &*slot.load()
            && kept.0 == offset
        {
            return kept.1.clone();
        }
        let record = decode();
        slot.store(Some(Arc::new((offset, record.clone()))));
        record
    }

    fn slot_of(&self, offset: usize) -> usize {
        // Records are packed back to back, so their offsets' low bits are not spread
        // evenly; a multiplicative hash spreads them over the slots.
        ((offset as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_kept_record_is_not_decoded_again() {
        let cache = RecordCache::new(16);
        let decodes = Cell::new(0);
        let decode = |value: &str| {
            decodes.set(decodes.get() + 1);
            value.to_string()
        };
        assert_eq!(cache.get_or_decode(100, || decode("a")), "a");
        assert_eq!(cache.get_or_decode(100, || decode("other")), "a");
        assert_eq!(decodes.get(), 1);
        assert_eq!(cache.get_or_decode(200, || decode("b")), "b");
        assert_eq!(decodes.get(), 2);
    }

    #[test]
    fn records_sharing_a_slot_replace_each_other_and_are_never_mixed_up() {
        // Two slots: many offsets collide, and each must still read its own record.
        let cache = RecordCache::new(2);
        for round in 0..3 {
            for offset in 0..64usize {
                let got = cache.get_or_decode(offset, || offset * 10);
                assert_eq!(got, offset * 10, "round {round}, offset {offset}");
            }
        }
    }

    #[test]
    fn slot_count_is_a_power_of_two_and_every_slot_is_used() {
        let cache: RecordCache<u8> = RecordCache::new(1000);
        assert_eq!(cache.slots.len(), 1024);
        let mut used = vec![false; cache.slots.len()];
        // Offsets packed like variable-size records: the hash must still reach every slot.
        for offset in (0..200_000usize).step_by(7) {
            used[cache.slot_of(offset)] = true;
        }
        assert!(used.iter().all(|u| *u));
    }
}
