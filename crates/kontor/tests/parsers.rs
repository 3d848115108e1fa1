//! Outside input the HTTP layer parses before a handler's own checks: the query string of
//! every route, and the multipart body of an import upload. Random inputs, sent to a running
//! server by a caller holding both a token and a super admin's console session: every answer
//! is a success or a client error (never a 5xx, never a dropped connection), the server stays
//! healthy, and refused uploads leave no file behind.

mod common;

use common::console::{http, sign_in, user};
use common::routes::{concrete, sample_ids};
use common::Server;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};

/// Cases per property; `KONTOR_PARSER_CASES` runs more.
fn cases(default: u32) -> u32 {
    std::env::var("KONTOR_PARSER_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes as they may appear in a query string: mostly percent-encoded, sometimes raw
/// separators and broken escapes.
fn query_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => any::<u8>().prop_map(|b| format!("%{b:02X}")),
            4 => proptest::sample::select(b"az09-_.~".to_vec()).prop_map(|b| (b as char).to_string()),
            1 => proptest::sample::select(vec!["&", "=", "%", "%G", "+", ",", "[]", "%00", "%FF%FE"]).prop_map(String::from),
            1 => "[0-9]{1,30}",
            1 => Just("-1".to_string()),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// A query string of keys the routes read (and others), with any values.
fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        3 => proptest::sample::select(vec![
            "limit", "after", "before", "properties", "propertiesWithHistory", "associations",
            "archived", "idProperty", "object", "property", "q", "page", "done", "_csrf",
            "objectType", "state", "sort", "dataSensitivity",
        ])
        .prop_map(String::from),
        1 => query_text(),
    ];
    let pair = (key, proptest::option::of(query_text()), 0usize..3).prop_map(|(k, v, repeat)| {
        let one = match v {
            Some(v) => format!("{k}={v}"),
            None => k,
        };
        vec![one; repeat + 1].join("&")
    });
    prop_oneof![
        8 => proptest::collection::vec(pair, 0..8).prop_map(|p| p.join("&")),
        // A long value: a list of many properties.
        1 => (1usize..4000).prop_map(|n| format!("properties={}", vec!["email"; n].join(","))),
    ]
}

struct Caller {
    token: String,
    session: String,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn caller(s: &Server, name: &str) -> (String, Caller) {
    let (account, token) = s.account(name);
    let email = format!("{}@parsers.example", name.to_lowercase().replace(' ', "-"));
    let (_, password) = user(s, &account, &email, "super-admin");
    let (session, _) = sign_in(s, &email, &password).await;
    (account, Caller { token, session })
}

async fn healthy(s: &Server) -> bool {
    http()
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

#[test]
fn any_query_string_on_any_route_is_answered_without_a_server_error() {
    let rt = runtime();
    let s = rt.block_on(Server::start());
    let (_, who) = rt.block_on(caller(&s, "Query strings"));
    let h = http();
    // The paths that answer GET.
    let paths: Vec<String> = kontor_server::route_paths()
        .into_iter()
        .map(|p| concrete(p, &sample_ids()))
        .filter(|p| {
            rt.block_on(h.get(format!("{}{p}", s.base)).send())
                .is_ok_and(|r| r.status() != 405)
        })
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: cases(600),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..paths.len(), query());
    let tally = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let answered = runner.run(&strategy, |(i, q)| {
        let url = format!("{}{}?{q}", s.base, paths[i]);
        let status = rt.block_on(async {
            h.get(&url)
                .header(AUTHORIZATION, format!("Bearer {}", who.token))
                .header(COOKIE, format!("kontor_session={}", who.session))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        let status = status.map_err(|e| TestCaseError::fail(format!("GET {url}: {e}")))?;
        prop_assert!(status < 500, "GET {url} answered {status}");
        *tally.borrow_mut().entry(status).or_default() += 1;
        Ok(())
    });
    if let Err(e) = answered {
        panic!("{e}");
    }
    eprintln!("query strings: answers by status {:?}", tally.borrow());
    assert!(rt.block_on(healthy(&s)), "the server is healthy after");
}

/// One part of a multipart body.
#[derive(Debug, Clone)]
struct Part {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

const IMPORT_REQUEST: &str = r#"{"name":"fuzzed","files":[{"fileName":"f.csv","fileFormat":"CSV","fileImportPage":{"hasHeader":true,"columnMappings":[{"columnName":"email","propertyName":"email","columnObjectTypeId":"0-1","idColumnType":"HUBSPOT_ALTERNATE_ID"},{"columnName":"firstname","propertyName":"firstname","columnObjectTypeId":"0-1"}]}}]}"#;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// Text cut or damaged at a random place.
fn damaged(text: &'static str) -> impl Strategy<Value = Vec<u8>> {
    (0..=text.len(), any::<u8>(), any::<bool>()).prop_map(move |(at, b, cut)| {
        let mut v = text.as_bytes().to_vec();
        if cut {
            v.truncate(at);
        } else if at < v.len() {
            v[at] = b;
        }
        v
    })
}

fn part() -> impl Strategy<Value = Part> {
    let request = prop_oneof![
        3 => Just(IMPORT_REQUEST.as_bytes().to_vec()),
        2 => damaged(IMPORT_REQUEST),
        1 => bytes(200),
    ];
    let csv = prop_oneof![
        3 => Just(b"email,firstname\nada@example.com,Ada\n".to_vec()),
        1 => damaged("email,firstname\nada@example.com,Ada\n\"open,quote\n"),
        1 => bytes(2000),
    ];
    let name = prop_oneof![
        4 => Just("importRequest".to_string()),
        4 => Just("files".to_string()),
        1 => "[a-zA-Z\"\\\\;= ]{0,12}",
    ];
    (
        name,
        prop_oneof![
            3 => Just(Some("f.csv".to_string())),
            1 => Just(None),
            1 => "[a-zA-Z0-9._\"/\\\\ -]{0,20}".prop_map(Some),
        ],
        proptest::option::of(proptest::sample::select(vec![
            "text/csv",
            "application/json",
            "application/octet-stream",
            "text/plain; charset=utf-16",
            "",
        ])),
        request,
        csv,
    )
        .prop_map(|(name, file_name, content_type, request, csv)| {
            let data = if name == "importRequest" {
                request
            } else {
                csv
            };
            Part {
                name,
                file_name,
                content_type: content_type.map(String::from),
                data,
            }
        })
}

/// A multipart body and the boundary its `Content-Type` names (which may not be the one used).
fn multipart() -> impl Strategy<Value = (String, Vec<u8>)> {
    (
        proptest::collection::vec(part(), 0..4),
        prop_oneof![
            4 => "[a-zA-Z0-9-]{1,40}",
            1 => "[a-zA-Z0-9'()+_,./:=?-]{1,70}",
        ],
        prop_oneof![2 => Just(0u8), 1 => 1u8..5],
        any::<prop::sample::Index>(),
    )
        .prop_map(|(parts, boundary, damage, at)| {
            let mut body = Vec::new();
            for p in &parts {
                body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                let mut disposition =
                    format!("Content-Disposition: form-data; name=\"{}\"", p.name);
                if let Some(f) = &p.file_name {
                    disposition.push_str(&format!("; filename=\"{f}\""));
                }
                if damage != 1 {
                    body.extend_from_slice(disposition.as_bytes());
                    body.extend_from_slice(b"\r\n");
                }
                if let Some(ct) = &p.content_type {
                    body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
                }
                body.extend_from_slice(b"\r\n");
                body.extend_from_slice(&p.data);
                body.extend_from_slice(b"\r\n");
            }
            if damage != 2 {
                body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            }
            if damage == 3 && !body.is_empty() {
                body.truncate(at.index(body.len()));
            }
            let named = if damage == 4 {
                format!("{boundary}x")
            } else {
                boundary
            };
            (named, body)
        })
}

#[test]
fn any_multipart_upload_is_answered_and_refused_ones_leave_no_file() {
    let rt = runtime();
    let s = rt.block_on(Server::start());
    let (account, who) = rt.block_on(caller(&s, "Multipart"));
    let h = http();
    let mut runner = TestRunner::new(Config {
        cases: cases(500),
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = std::cell::Cell::new(0);
    let sent = std::cell::Cell::new(0);
    let answered = runner.run(&multipart(), |(boundary, body)| {
        let status = rt.block_on(async {
            h.post(format!("{}/crm/v3/imports", s.base))
                .header(AUTHORIZATION, format!("Bearer {}", who.token))
                .header(
                    CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body.clone())
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        let status = status.map_err(|e| TestCaseError::fail(format!("upload: {e}")))?;
        prop_assert!(
            status == 200 || (400..500).contains(&status),
            "an upload of {} bytes answered {status}",
            body.len()
        );
        sent.set(sent.get() + 1);
        if status == 200 {
            accepted.set(accepted.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = answered {
        panic!("{e}");
    }
    eprintln!(
        "multipart: {} uploads, {} accepted",
        sent.get(),
        accepted.get()
    );
    assert!(
        accepted.get() > 0,
        "some uploads were well formed and accepted"
    );
    assert!(rt.block_on(healthy(&s)), "the server is healthy after");
    // Every upload was streamed to a file of its own: the accepted ones became imports' files,
    // the refused ones are gone.
    let folder = common::files_root(&s.data_dir).join(format!("imports/{account}"));
    let partial: Vec<String> = std::fs::read_dir(&folder)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        partial.is_empty(),
        "refused uploads left files: {partial:?}"
    );
}
