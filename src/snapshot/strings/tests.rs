//! The string table: built, looked up, changed and cloned.

use super::*;

fn tag(id: &str) -> u32 {
    Key::fold(id.as_bytes(), &mut KeyWords::default())
        .unwrap()
        .tag()
}

fn table(ids: &[(&str, u32)]) -> Result<StringTable, BuildError> {
    let mut builder = StringsBuilder::default();
    for (id, cluster) in ids {
        builder.push(id.as_bytes(), *cluster)?;
    }
    builder.build()
}

#[test]
fn finds_every_id_and_nothing_else() {
    for count in [0usize, 1, 7, 1000, 50_000] {
        let ids: Vec<String> = (0..count).map(|i| format!("app-{i}-x")).collect();
        let pairs: Vec<(&str, u32)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), (i % 9) as u32))
            .collect();
        let table = table(&pairs).unwrap();
        assert_eq!(table.len(), count);
        for (id, cluster) in &pairs {
            assert_eq!(table.get(id.as_bytes()), Some(*cluster));
        }
        assert_eq!(table.get(b"app--x"), None);
        if count > 0 {
            assert_eq!(table.get(b"APP-0-X"), Some(0));
        }
        assert_eq!(table.get(b""), None);
        assert_eq!(table.iter().count(), count);
        // About 8 / 0.6 bytes of slots per app, plus the bytes and 5.
        let bytes: usize = ids.iter().map(|id| id.len() + ENTRY_OVERHEAD).sum();
        assert!(table.heap_bytes() <= bytes + 16 * 8 + count * 8 * 5 / 3 + 8);
    }
}

#[test]
fn room_reserved_for_a_dump_is_given_back() {
    let ids: Vec<String> = (0..20_000).map(|i| format!("App-{i}")).collect();
    let dump_size: usize = ids.iter().map(|id| id.len() + 10).sum();
    let mut builder = StringsBuilder::default();
    builder.reserve_for_dump(dump_size as u64);
    assert!(builder.arena.capacity() >= dump_size);
    for (i, id) in ids.iter().enumerate() {
        builder
            .push(id.to_ascii_lowercase().as_bytes(), i as u32)
            .unwrap();
    }
    let table = builder.build().unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(table.get(id.as_bytes()), Some(i as u32));
    }
    let bytes: usize = ids.iter().map(|id| id.len() + ENTRY_OVERHEAD).sum();
    assert_eq!(table.arena.capacity(), bytes);
    assert_eq!(table.slots.len(), slot_count(ids.len()));
}

#[test]
fn runs_past_the_end_wrap() {
    // IDs whose home is the last slot of a small table: the run wraps to the start.
    let count = slot_count(5);
    let ids: Vec<String> = (0..1_000_000)
        .map(|i| format!("w{i}"))
        .filter(|id| home32(tag(id), count) == count - 1)
        .take(5)
        .collect();
    let pairs: Vec<(&str, u32)> = ids.iter().map(|id| (id.as_str(), 3)).collect();
    let table = table(&pairs).unwrap();
    for id in &ids {
        assert_eq!(table.get(id.as_bytes()), Some(3), "{id}");
    }
    assert_eq!(table.len(), 5);
}

#[test]
fn duplicates_are_reported() {
    let error = table(&[("a", 0), ("b", 1), ("a", 2)]).unwrap_err();
    assert_eq!(error, BuildError::Duplicate(b"a".to_vec()));
    let many: Vec<String> = (0..5000).map(|i| format!("id{i}")).collect();
    let mut pairs: Vec<(&str, u32)> = many.iter().map(|id| (id.as_str(), 0)).collect();
    pairs.push(("id4321", 1));
    assert_eq!(
        table(&pairs).unwrap_err(),
        BuildError::Duplicate(b"id4321".to_vec())
    );
}

/// Random sets and removals on copies, against a std map, in small tables (long probe
/// runs that wrap) and through rebuilds.
#[test]
fn changes_on_a_copy_match_a_map() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut random = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let names: Vec<String> = (0..300).map(|i| format!("n{i}")).collect();
    let mut table = table(&[("n1", 1), ("n2", 2)]).unwrap();
    let mut model: std::collections::HashMap<&[u8], u32> =
        [(&b"n1"[..], 1), (&b"n2"[..], 2)].into_iter().collect();
    for round in 0..400u32 {
        let changes: Vec<(&[u8], Option<u32>)> = (0..random(12))
            .map(|_| {
                let id = names[random(300) as usize].as_bytes();
                (id, (random(3) != 0).then_some(round))
            })
            .collect();
        let next = table.with_changes(&changes).unwrap();
        for &(id, cluster) in &changes {
            match cluster {
                Some(cluster) => model.insert(id, cluster),
                None => model.remove(id),
            };
        }
        assert_eq!(next.len(), model.len());
        for name in &names {
            let id = name.as_bytes();
            assert_eq!(next.get(id), model.get(id).copied(), "{name}");
        }
        // Every entry once, in whichever order (the arena's or the slots').
        let mut listed: Vec<(&[u8], u32)> = next.iter().collect();
        let mut expected: Vec<(&[u8], u32)> = model.iter().map(|(&id, &c)| (id, c)).collect();
        listed.sort_unstable();
        expected.sort_unstable();
        assert_eq!(listed, expected, "round {round}");
        table = next;
    }
}
