//! The layers against a plain `BTreeMap`: random puts, deletes, freezes and checkpoints, and
//! after each step every read (point and range, both directions) agrees with the model.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use redb::Durability;

use super::*;

#[derive(Debug, Clone)]
enum Step {
    Put(u64, u8),
    Delete(u64),
    Freeze,
    Checkpoint,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..40u64, any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        2 => (0..40u64).prop_map(Step::Delete),
        1 => Just(Step::Freeze),
        1 => Just(Step::Checkpoint),
    ]
}

fn database(dir: &std::path::Path) -> Database {
    let db = Database::create(dir.join("t.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    crate::storage::tables::create_all(&txn).unwrap();
    txn.commit().unwrap();
    db
}

/// Writes the frozen layer into the file and swaps it for a new base, as the checkpoint does.
fn checkpoint(db: &Database, layers: &mut Layers) {
    let Some(frozen) = layers.frozen.clone() else {
        return;
    };
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    frozen.write_to(&txn).unwrap();
    txn.commit().unwrap();
    layers.checkpointed(Base::open(db).unwrap());
}

fn check(layers: &Layers, model: &BTreeMap<u64, Vec<u8>>) -> Result<(), TestCaseError> {
    let view = View::new(layers).unwrap();
    for key in 0..40 {
        prop_assert_eq!(
            view.jobs.get(&key).unwrap(),
            model.get(&key).cloned(),
            "key {}",
            key
        );
    }
    let all: Vec<(u64, Vec<u8>)> = model.iter().map(|(k, v)| (*k, v.clone())).collect();
    let got = view
        .jobs
        .range(Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
        .unwrap();
    prop_assert_eq!(&got, &all);
    let mut reversed = all.clone();
    reversed.reverse();
    let got = view
        .jobs
        .range(Bound::Unbounded, Bound::Unbounded, true, usize::MAX)
        .unwrap();
    prop_assert_eq!(&got, &reversed);
    // A bounded window with a limit, both ways.
    let window: Vec<_> = all
        .iter()
        .filter(|(k, _)| (10..30).contains(k))
        .cloned()
        .collect();
    let got = view
        .jobs
        .range(Bound::Included(&10), Bound::Excluded(&30), false, 3)
        .unwrap();
    prop_assert_eq!(&got[..], &window[..window.len().min(3)]);
    let got = view
        .jobs
        .range(Bound::Included(&10), Bound::Excluded(&30), true, 3)
        .unwrap();
    let tail: Vec<_> = window.iter().rev().take(3).cloned().collect();
    prop_assert_eq!(got, tail);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn reads_through_the_layers_agree_with_a_plain_map(steps in prop::collection::vec(step(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        let mut layers = Layers::open(&db, 1).unwrap();
        let mut model = BTreeMap::new();
        for step in steps {
            match step {
                Step::Put(k, v) => {
                    let mut tables = Tables::new(&mut layers).unwrap();
                    let old = tables.jobs.replace(k, vec![v]).unwrap();
                    prop_assert_eq!(old, model.insert(k, vec![v]));
                }
                Step::Delete(k) => {
                    let mut tables = Tables::new(&mut layers).unwrap();
                    let old = tables.jobs.take(k).unwrap();
                    prop_assert_eq!(old, model.remove(&k));
                }
                Step::Freeze => {
                    if layers.frozen.is_none() {
                        layers.freeze();
                    }
                }
                Step::Checkpoint => checkpoint(&db, &mut layers),
            }
            check(&layers, &model)?;
        }
        // Everything folded into the file reads the same from the file alone.
        if layers.frozen.is_none() {
            layers.freeze();
        }
        checkpoint(&db, &mut layers);
        layers.freeze();
        checkpoint(&db, &mut layers);
        check(&layers, &model)?;
        prop_assert!(layers.active.is_empty());
    }
}

#[test]
fn a_deletion_range_hides_every_layer_below() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let mut layers = Layers::open(&db, 1).unwrap();
    {
        let mut tables = Tables::new(&mut layers).unwrap();
        for k in 0..10 {
            tables.events.put(k, vec![k as u8]);
        }
    }
    layers.freeze();
    checkpoint(&db, &mut layers);
    {
        let mut tables = Tables::new(&mut layers).unwrap();
        tables.events.put(10, vec![10]);
        tables
            .events
            .delete_range(Bound::Included(&2), Bound::Excluded(&8))
            .unwrap();
    }
    let view = View::new(&layers).unwrap();
    let keys: Vec<u64> = view
        .events
        .range(Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, [0, 1, 8, 9, 10]);
    assert_eq!(view.events.first().unwrap().map(|(k, _)| k), Some(0));
    assert!(layers.active.bytes() > 0);
}
