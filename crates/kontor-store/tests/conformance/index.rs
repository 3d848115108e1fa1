//! The search index answers as the matcher does: random records, random writes and random
//! requests of every filter shape, each answered through the index (level with the change
//! log, or behind it) and by the matcher over every record (`Store::search_scan`), and the
//! two compared: total, page and order.

use super::*;
use kontor_domain::search::SearchRequest;
use kontor_store::{CreateInput, Directory, PropertyInput, SearchTuning, Store, UpdateInput};
use serde_json::json;

/// A small deterministic generator (xorshift), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const TEXT: &[&str] = &[
    "Emma",
    "emma",
    "EMMA",
    "Émile",
    "émile",
    "Mueller",
    "Müller",
    "müller-lüdenscheidt",
    "straße",
    "STRASSE",
    "ΟΔΟΣ",
    "οδος",
    "Anna Lena",
    "anna.lena@example.com",
    "O'Brien",
    "x",
    "10",
    "9",
    "a b c",
    "Zoë",
    "zoe",
    "Zoë Ann",
    "emma mueller",
];
const NUMBERS: &[&str] = &["10", "9", "1.5", "-3", "0", "100", "-0.5", "42", "9.0"];
const DATES: &[&str] = &["2024-05-01", "1999-12-31", "2000-01-01", "2024-04-30"];
const TIMES: &[&str] = &[
    "2024-05-01T10:00:00Z",
    "2024-05-01T10:00:00.000Z",
    "2019-01-01T00:00:00Z",
    "2024-05-01T00:00:00Z",
];
const STAGES: &[&str] = &["lead", "customer", "subscriber", "other"];
const TIERS: &[&str] = &["gold", "silver", "bronze"];
const PHONES: &[&str] = &["+1-555-0100", "+49 30 1234", "030 1234", "555 0100"];
const WORDS: &[&str] = &[
    "emma",
    "mue",
    "müller",
    "example.com",
    "lena",
    "anna lena",
    "+1",
    "555",
    "1234",
    "zo",
    "ΟΔΟΣ",
    "οδος",
    "x",
    "str",
    "o'brien",
    "brien",
    "ller",
];

/// (property, pool, filter values that no record holds but that compare)
fn pools() -> Vec<(
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
)> {
    vec![
        ("firstname", TEXT, &["e", "z", "émile", "EMMA"]),
        ("lastname", TEXT, &["m", "mueller", "MÜLLER"]),
        ("city", TEXT, &["a", "zz"]),
        ("phone", PHONES, &["+2"]),
        ("lifecyclestage", STAGES, &["lead", "CUSTOMER"]),
        ("annualrevenue", NUMBERS, &["9.5", "abc", " 10 ", "1e1"]),
        ("num_employees", NUMBERS, &["50"]),
        (
            "date_of_birth",
            DATES,
            &["1714521600000", "2024-05-01T00:00:00Z", "nope"],
        ),
        (
            "notes_last_contacted",
            TIMES,
            &["1714557600000", "2024-05-01", "2020"],
        ),
        ("score", NUMBERS, &["5"]),
        ("tier", TIERS, &["GOLD"]),
        ("note", TEXT, &["10", "9"]),
    ]
}

fn random_props(rng: &mut Rng, i: usize) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    if rng.chance(80) {
        m.insert("email".into(), json!(format!("User{i}@Ex{}.com", i % 3)));
    }
    for (p, pool, _) in pools() {
        if rng.chance(70) {
            m.insert(p.into(), json!(rng.pick(pool)));
        }
    }
    m
}

fn random_filter(rng: &mut Rng) -> Value {
    let pools = pools();
    let (p, pool, extra) = pools[rng.below(pools.len())];
    let value = |rng: &mut Rng| -> String {
        if rng.chance(25) {
            rng.pick(extra).to_string()
        } else {
            rng.pick(pool).to_string()
        }
    };
    let ops = [
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    ];
    let op = ops[rng.below(ops.len())];
    match op {
        "HAS_PROPERTY" | "NOT_HAS_PROPERTY" => json!({"propertyName": p, "operator": op}),
        "BETWEEN" => {
            json!({"propertyName": p, "operator": op, "value": value(rng), "highValue": value(rng)})
        }
        "IN" | "NOT_IN" => {
            let n = 1 + rng.below(3);
            let values: Vec<String> = (0..n).map(|_| value(rng)).collect();
            json!({"propertyName": p, "operator": op, "values": values})
        }
        "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" => {
            let v = value(rng);
            let v = match rng.below(4) {
                0 => format!("{}*", v.chars().take(2).collect::<String>()),
                1 => format!("*{}", v.chars().skip(1).collect::<String>()),
                _ => v,
            };
            json!({"propertyName": p, "operator": op, "value": v})
        }
        _ => json!({"propertyName": p, "operator": op, "value": value(rng)}),
    }
}

fn random_request(rng: &mut Rng, ids: &[i64]) -> Value {
    let mut req = serde_json::Map::new();
    if rng.chance(85) {
        let groups: Vec<Value> = (0..1 + rng.below(3))
            .map(|_| {
                let filters: Vec<Value> =
                    (0..1 + rng.below(3)).map(|_| random_filter(rng)).collect();
                json!({"filters": filters})
            })
            .collect();
        req.insert("filterGroups".into(), json!(groups));
    }
    if rng.chance(50) {
        let pools = pools();
        let p = pools[rng.below(pools.len())].0;
        let sort = if rng.chance(50) {
            format!("-{p}")
        } else {
            p.to_string()
        };
        req.insert("sorts".into(), json!([sort]));
    }
    if rng.chance(25) {
        let mut words: Vec<String> = (0..1 + rng.below(2))
            .map(|_| rng.pick(WORDS).to_string())
            .collect();
        if rng.chance(20) && !ids.is_empty() {
            words.push(ids[rng.below(ids.len())].to_string());
        }
        req.insert("query".into(), json!(words.join(" ")));
    }
    req.insert("limit".into(), json!(1 + rng.below(15)));
    req.insert("after".into(), json!(rng.below(25)));
    Value::Object(req)
}

async fn compare(
    s: &Store,
    a: i64,
    contacts: &ObjectType,
    rng: &mut Rng,
    ids: &[i64],
    n: usize,
    what: &str,
) {
    // The default sizes, and sizes so small that these few records take every strategy:
    // lists intersected or too long to read, sorting here (by keys in memory, made at once,
    // as soon as a sort asks for them) or by the database.
    let tiny = s.with_search_tuning(tiny_tuning());
    for _ in 0..n {
        let body = random_request(rng, ids);
        let req = SearchRequest::parse(&body).unwrap();
        let (t2, p2) = s.search_scan(a, contacts, &req).await.unwrap();
        let p2: Vec<i64> = p2.iter().map(|r| r.id).collect();
        for (how, s) in [("default", s), ("tiny", &tiny)] {
            let (t1, p1) = s
                .search(a, contacts, &req)
                .await
                .unwrap_or_else(|e| panic!("{what}: {body}: {e}"));
            let p1: Vec<i64> = p1.iter().map(|r| r.id).collect();
            assert_eq!(
                (t1, &p1),
                (t2, &p2),
                "{what}, {how} sizes: index (left) and matcher (right) differ on {body}"
            );
        }
    }
}

fn tiny_tuning() -> SearchTuning {
    SearchTuning {
        estimate_cap: 6,
        small: 2,
        list_cap: 30,
        keyed_cap: 8,
        sort_key_memory: 1 << 20,
        sort_keys_at_once: true,
    }
}

/// Drives the open index builds' jobs to their end, as a runner would.
async fn run_builds(s: &Store) {
    while let Some(job) = s
        .claim_job(
            "builder",
            60_000,
            &[kontor_store::JOB_KIND_INDEX_BUILD],
            None,
        )
        .await
        .unwrap()
    {
        while let Some(n) = s.index_build_batch(&job, "builder", 7).await.unwrap() {
            assert!(n >= 0, "the lease is held");
        }
    }
}

pub async fn indexed_searches_equal_the_matcher(d: Directory) {
    let (a, s) = account(&d, "index").await;
    let contacts = ot(&s, a, "contacts").await;
    for (name, kind, options) in [
        ("score", "number", vec![]),
        ("tier", "enumeration", TIERS.to_vec()),
        ("note", "string", vec![]),
    ] {
        let input: PropertyInput = serde_json::from_value(json!({
            "name": name, "label": name, "type": kind, "groupName": "contactinformation",
            "options": options.iter().enumerate().map(|(i, o)| json!({"label": o, "value": o, "displayOrder": i})).collect::<Vec<_>>(),
        }))
        .unwrap();
        s.create_property(a, "0-1", input).await.unwrap();
    }
    let seed = 0x5eed_0000_0000_0001 ^ kontor_domain::time::now_ms() as u64;
    eprintln!("index conformance seed {seed:#x}");
    let mut rng = Rng(seed | 1);
    let inputs: Vec<CreateInput> = (0..160)
        .map(|i| CreateInput {
            properties: random_props(&mut rng, i),
            associations: vec![],
        })
        .collect();
    let mut ids: Vec<i64> = Vec::new();
    for chunk in inputs.chunks(40) {
        let made = s
            .create_records(a, &contacts, chunk.to_vec(), &actor())
            .await
            .unwrap();
        ids.extend(made.iter().map(|r| r.id));
    }
    // Nothing indexed yet: every record is in the delta the matcher decides.
    compare(&s, a, &contacts, &mut rng, &ids, 100, "before indexing").await;
    assert!(s.index_all_changes(a).await.unwrap() > 0);
    compare(&s, a, &contacts, &mut rng, &ids, 300, "after the load").await;

    // Writes of every kind: values set, changed and cleared; the recycle bin both ways; merges.
    for round in 0..60 {
        let id = ids[rng.below(ids.len())];
        let mut m = random_props(&mut rng, 1000 + round);
        m.remove("email");
        for (p, _, _) in pools() {
            if rng.chance(15) {
                m.insert(p.into(), json!(""));
            }
        }
        let _ = s
            .update_records(
                a,
                &contacts,
                vec![UpdateInput { id, properties: m }],
                &actor(),
            )
            .await
            .unwrap();
    }
    let gone: Vec<i64> = (0..12).map(|_| ids[rng.below(ids.len())]).collect();
    s.archive_records(a, &contacts, &gone, &actor())
        .await
        .unwrap();
    s.restore_records(a, &contacts, &gone[..5], &actor())
        .await
        .unwrap();
    let live: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|i| !gone[5..].contains(i))
        .collect();
    s.merge_records(a, &contacts, live[0], live[1], &actor())
        .await
        .unwrap();
    s.merge_records(a, &contacts, live[3], live[2], &actor())
        .await
        .unwrap();
    // The index is behind those writes: its answer for the records they touched is replaced
    // by the matcher's, then it catches up.
    compare(
        &s,
        a,
        &contacts,
        &mut rng,
        &ids,
        300,
        "after writes, the index behind",
    )
    .await;
    s.index_all_changes(a).await.unwrap();
    compare(
        &s,
        a,
        &contacts,
        &mut rng,
        &ids,
        200,
        "after writes, indexed",
    )
    .await;

    // A type change keys the property anew: while its build runs the matcher answers for it,
    // then the index again.
    let to_number: PropertyInput =
        serde_json::from_value(json!({"type": "number", "fieldType": "number"})).unwrap();
    s.update_property(a, "0-1", "note", to_number)
        .await
        .unwrap();
    let builds = s.index_builds(a).await.unwrap();
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert_eq!(builds[0].property, "note");
    compare(&s, a, &contacts, &mut rng, &ids, 100, "during the build").await;
    run_builds(&s).await;
    assert!(s.index_builds(a).await.unwrap().is_empty());
    compare(&s, a, &contacts, &mut rng, &ids, 200, "after the build").await;
}

/// Writes race searches and the indexer: every record always holds one of two cities, so a
/// search for either finds all of them, each once, whether the index has caught up with a
/// record's last change or not.
pub async fn searches_racing_writes_and_the_indexer(d: Directory) {
    let (a, s) = account(&d, "racing").await;
    let contacts = ot(&s, a, "contacts").await;
    let inputs: Vec<CreateInput> = (0..120)
        .map(|i| CreateInput {
            properties: props(json!({"city": if i % 2 == 0 { "Ämsterdam" } else { "berlin" }, "firstname": format!("p{i}")})),
            associations: vec![],
        })
        .collect();
    let ids: Vec<i64> = s
        .create_records(a, &contacts, inputs, &actor())
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let writer = |seed: u64| {
        let (s, contacts, ids) = (s.clone(), contacts.clone(), ids.clone());
        tokio::spawn(async move {
            let mut rng = Rng(seed);
            let mut n = 0;
            while std::time::Instant::now() < until {
                let id = ids[rng.below(ids.len())];
                let city = if rng.chance(50) {
                    "ÄMSTERDAM"
                } else {
                    "Berlin"
                };
                s.update_records(
                    a,
                    &contacts,
                    vec![UpdateInput {
                        id,
                        properties: props(json!({"city": city})),
                    }],
                    &actor(),
                )
                .await
                .unwrap();
                n += 1;
            }
            n
        })
    };
    let indexer = {
        let s = s.clone();
        tokio::spawn(async move {
            while std::time::Instant::now() < until {
                s.index_changes(a).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let writers = [writer(11), writer(29)];
    // Keys in memory from the first sort or broad filter on, brought forward as the index
    // moves: every record is in one of the two cities, whichever it is in now.
    let searcher = s.with_search_tuning(SearchTuning {
        sort_keys_at_once: true,
        estimate_cap: 6,
        small: 2,
        ..SearchTuning::default()
    });
    // The first 100 (as many values as a filter takes).
    let names: Vec<String> = (0..100).map(|i| format!("P{i}")).collect();
    let mut searches = 0;
    while std::time::Instant::now() < until {
        let mut filters = vec![
            json!({"propertyName": "city", "operator": "IN", "values": ["ämsterdam", "BERLIN"]}),
        ];
        let mut want = ids.len();
        if searches % 3 == 2 {
            filters.push(json!({"propertyName": "firstname", "operator": "IN", "values": names}));
            want = names.len();
        }
        let req = SearchRequest::parse(&json!({
            "filterGroups": [{"filters": filters}],
            "sorts": [if searches % 2 == 0 { "city" } else { "-firstname" }],
            "limit": 200
        }))
        .unwrap();
        let (total, page) = searcher.search(a, &contacts, &req).await.unwrap();
        let mut found: Vec<i64> = page.iter().map(|r| r.id).collect();
        found.sort_unstable();
        found.dedup();
        assert_eq!((total, found.len()), (want, want), "search {searches}");
        searches += 1;
    }
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }
    indexer.await.unwrap();
    assert!(
        writes > 20 && searches > 5,
        "{writes} writes, {searches} searches"
    );
    // Once the writes stop, the order and each city's records too, the index behind and
    // caught up.
    for caught_up in [false, true] {
        if caught_up {
            s.index_all_changes(a).await.unwrap();
        }
        for sort in ["city", "-city", "-firstname", "berlin", "ämsterdam"] {
            let (filters, sort) = match sort {
                "berlin" | "ämsterdam" => (
                    json!([
                        {"propertyName": "city", "operator": "EQ", "value": sort},
                        {"propertyName": "firstname", "operator": "IN", "values": names}
                    ]),
                    "firstname",
                ),
                _ => (
                    json!([{"propertyName": "city", "operator": "HAS_PROPERTY"}]),
                    sort,
                ),
            };
            let req = SearchRequest::parse(&json!({
                "filterGroups": [{"filters": filters.clone()}],
                "sorts": [sort],
                "limit": 200
            }))
            .unwrap();
            let ids =
                |page: Vec<kontor_store::Record>| page.iter().map(|r| r.id).collect::<Vec<_>>();
            let (t1, p1) = searcher.search(a, &contacts, &req).await.unwrap();
            let (t2, p2) = s.search_scan(a, &contacts, &req).await.unwrap();
            assert_eq!(
                (t1, ids(p1)),
                (t2, ids(p2)),
                "{filters} sorted by {sort}, caught up: {caught_up}"
            );
        }
    }
    let req = SearchRequest::parse(&json!({"filterGroups": [{"filters": [{"propertyName": "city", "operator": "EQ", "value": "amsterdam"}]}]})).unwrap();
    assert_eq!(
        s.search(a, &contacts, &req).await.unwrap().0,
        0,
        "Ä is not A"
    );
}

/// `query` words answered from posting lists long enough to span blocks: records made, some
/// changed, some taken away and brought back, the lists always giving what the matcher does.
pub async fn query_words_over_many_blocks(d: Directory) {
    let (a, s) = account(&d, "grams").await;
    let contacts = ot(&s, a, "contacts").await;
    let names = ["Emma", "Emmett", "Emil", "Noah"];
    let lastnames = [
        "Smith",
        "Smythe-Emmerich",
        "Smithson",
        "Emmerichsen",
        "Rodriguez",
    ];
    let inputs: Vec<CreateInput> = (0..900)
        .map(|i| CreateInput {
            properties: props(json!({
                "firstname": names[i % names.len()],
                "lastname": lastnames[i % lastnames.len()],
                "company": format!("Firm {}", 12340 + i % 7),
            })),
            associations: vec![],
        })
        .collect();
    let mut ids = Vec::new();
    for chunk in inputs.chunks(300) {
        let made = s
            .create_records(a, &contacts, chunk.to_vec(), &actor())
            .await
            .unwrap();
        ids.extend(made.iter().map(|r| r.id));
    }
    let queries = [
        "emma",
        "emm",
        "e",
        "em smith",
        "smith emma",
        "sm",
        "noah",
        "firm 12343",
        "1234",
        "12343",
        "emmerich",
        "zz",
        // Longer than the short grams: whole words, and words that go on.
        "smith",
        "smiths",
        "emmet",
        "emmett",
        "smythe-",
        "emmso",
        "emmson",
        // Longer than any gram: narrowed from their first 8 characters' lists ("emmerich" is
        // also a word of "Smythe-Emmerich").
        "emmerichs",
        "emmerichsen",
        "smythe-emm",
        "emma emmerichsen",
        "rodriguez",
        "rodrigues",
        "emil rodriguez",
    ];
    let check = |what: &'static str| {
        let s = s.clone();
        let contacts = contacts.clone();
        async move {
            for q in queries {
                for after in [0, 150] {
                    let req =
                        SearchRequest::parse(&json!({"query": q, "limit": 100, "after": after}))
                            .unwrap();
                    let (t1, p1) = s.search(a, &contacts, &req).await.unwrap();
                    let (t2, p2) = s.search_scan(a, &contacts, &req).await.unwrap();
                    let ids =
                        |p: Vec<kontor_store::Record>| p.iter().map(|r| r.id).collect::<Vec<_>>();
                    assert_eq!((t1, ids(p1)), (t2, ids(p2)), "{what}: {q:?} after {after}");
                }
            }
        }
    };
    s.index_all_changes(a).await.unwrap();
    check("after the load").await;
    // Names change both ways (the first records of blocks among them), records leave and
    // come back.
    let mut updates = Vec::new();
    for (n, &id) in ids.iter().enumerate().filter(|(n, _)| n % 7 == 0) {
        updates.push(UpdateInput {
            id,
            properties: props(
                json!({"firstname": names[(n / 7) % names.len()], "lastname": "Emmson"}),
            ),
        });
    }
    for chunk in updates.chunks(100) {
        s.update_records(a, &contacts, chunk.to_vec(), &actor())
            .await
            .unwrap();
    }
    let gone: Vec<i64> = ids.iter().copied().filter(|i| i % 4 == 1).collect();
    s.archive_records(a, &contacts, &gone, &actor())
        .await
        .unwrap();
    s.index_all_changes(a).await.unwrap();
    check("after changes and removals").await;
    s.restore_records(a, &contacts, &gone[..gone.len() / 2], &actor())
        .await
        .unwrap();
    s.index_all_changes(a).await.unwrap();
    check("after some came back").await;
}
