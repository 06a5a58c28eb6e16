//! Arbitrary `handler_args` for the built-in handlers: validation never panics, never repeats
//! a secret, and what it accepts reads back from its stored text as accepted.

use proptest::prelude::*;
use scheduler_actors::builtin::validate_handler_args;
use serde_json::{Value, json};

/// A secret planted in the arguments; no message may hold it.
const SECRET: &str = "s3cr3t-value-17";

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "", " ", "echo", "/bin/true", "GET", "post", "PATCH", "BREW", "http://127.0.0.1:1/x",
            "ftp://127.0.0.1/", "http://[::1", "not a url",
            "x-api-key", "Authorization", "bad header", "A=B", "\u{0}", "\n",
        ])
        .prop_map(str::to_owned),
        2 => ".{0,24}",
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 10, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arguments shaped like `http`'s, a header holding the secret.
fn http_args() -> impl Strategy<Value = Value> {
    let url = prop_oneof![
        2 => text(),
        2 => Just("http://127.0.0.1:1/x".to_owned()),
        1 => prop::sample::select(vec![
            format!("https://user:{SECRET}@127.0.0.1/h"),
            format!("http://127.0.0.1/h?token={SECRET}"),
            format!("ftp://user:{SECRET}@127.0.0.1/"),
            format!("http://user:{SECRET}@[::1"),
            format!("http://user:{SECRET}@127.0.0.1:99999/"),
        ]),
    ];
    let header = prop_oneof![
        3 => prop::sample::select(vec!["Authorization", "x-api-key"]).prop_map(str::to_owned),
        1 => text(),
    ];
    (
        url,
        proptest::option::of(text()),
        header,
        proptest::option::of(prop_oneof![3 => 100u16..600, 1 => any::<u16>()]),
        proptest::option::of(prop_oneof![Just(0u64), any::<u64>()]),
        proptest::option::weighted(0.2, any_json()),
    )
        .prop_map(|(url, method, header, status, timeout, extra)| {
            let mut args = json!({
                "url": url,
                "method": method,
                "headers": {header: format!("Bearer {SECRET}")},
                "expect_status": status,
                "timeout_secs": timeout,
            });
            if let Some(extra) = extra {
                args["extra"] = extra;
            }
            args
        })
}

/// Arguments that put the secret where another type belongs.
fn mistyped_args() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"url": "http://127.0.0.1:1/", "headers": format!("Authorization: Bearer {SECRET}")}),
        json!({"url": "http://127.0.0.1:1/", "timeout_secs": SECRET}),
        json!({"url": "http://127.0.0.1:1/", "expect_status": format!("\"{SECRET}\"")}),
        json!({"url": "http://127.0.0.1:1/", "body": {"token": SECRET}}),
        json!({"url": ["a", SECRET]}),
        json!({"program": "env", "env": format!("TOKEN={SECRET}")}),
        json!({"program": "env", "args": SECRET}),
        json!({"program": {"x": SECRET}}),
    ])
}

/// Arguments shaped like `shell`'s, an environment variable holding the secret.
fn shell_args() -> impl Strategy<Value = Value> {
    (
        text(),
        prop::collection::vec(text(), 0..3),
        text(),
        proptest::option::of(text()),
        proptest::option::weighted(0.2, any_json()),
    )
        .prop_map(|(program, args, env, cwd, extra)| {
            let mut value = json!({
                "program": program,
                "args": args,
                "env": {env: SECRET},
                "cwd": cwd,
            });
            if let Some(extra) = extra {
                value["unexpected"] = extra;
            }
            value
        })
}

fn check(handler: &str, args: Option<&Value>) -> Result<bool, TestCaseError> {
    let code_handler = |h: &str| h == "app::mine";
    match validate_handler_args(handler, args, &code_handler) {
        Ok(()) => {
            // Stored as text and read back, the arguments are the same and still accepted.
            let stored = args.map(Value::to_string);
            let read: Option<Value> =
                stored.map(|s| serde_json::from_str(&s).expect("JSON it wrote"));
            prop_assert_eq!(read.as_ref(), args);
            prop_assert!(validate_handler_args(handler, read.as_ref(), &code_handler).is_ok());
            Ok(true)
        }
        Err(e) => {
            prop_assert!(!e.is_empty());
            prop_assert!(!e.contains(SECRET), "{}", e);
            Ok(false)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn http_arguments_are_accepted_or_refused_without_their_secrets(args in http_args()) {
        check("http", Some(&args))?;
    }

    #[test]
    fn shell_arguments_are_accepted_or_refused_without_their_secrets(args in shell_args()) {
        check("shell", Some(&args))?;
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_repeated(args in mistyped_args()) {
        let handler = if args.get("program").is_some() { "shell" } else { "http" };
        prop_assert!(!check(handler, Some(&args))?, "{} accepted", args);
    }

    #[test]
    fn any_json_for_any_handler_is_accepted_or_refused(
        handler in prop::sample::select(vec!["http", "shell", "sleep", "noop", "app::mine", "nope"]),
        args in proptest::option::of(any_json()),
    ) {
        check(handler, args.as_ref())?;
    }
}

/// The generators reach acceptance too.
#[test]
fn the_generators_make_valid_arguments_too() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut accepted = (0, 0);
    for _ in 0..2_000 {
        let http = http_args()
            .new_tree(&mut runner)
            .expect("a value")
            .current();
        accepted.0 += usize::from(validate_handler_args("http", Some(&http), &|_| false).is_ok());
        let shell = shell_args()
            .new_tree(&mut runner)
            .expect("a value")
            .current();
        accepted.1 += usize::from(validate_handler_args("shell", Some(&shell), &|_| false).is_ok());
    }
    assert!(accepted.0 >= 20, "{} http arguments accepted", accepted.0);
    assert!(accepted.1 >= 20, "{} shell arguments accepted", accepted.1);
}
