//! Schemathesis, an implementation that is not Ladder's, generates requests
//! from `/api/v1/openapi.json` and checks every answer: no 5xx, and each
//! status, content type and body as the document says. Run with the demo's
//! admin token and a writer's token, bounded in examples and time.
//!
//! Schemathesis comes from PyPI, in the virtualenv `.ci/run` makes
//! (`.ci/venv`), or wherever `LADDER_SCHEMATHESIS` points. Without it the
//! test skips, and under CI it fails.

use std::{path::PathBuf, process::Command, sync::Once};

use ladder::{accounts::tokens::CreateToken, seed::demo};

use crate::helpers::{Kind, TestLadder, skip_or_fail};

static SKIP_NOTICE: Once = Once::new();

fn schemathesis() -> Option<PathBuf> {
    let path = std::env::var_os("LADDER_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/.ci/venv/bin/schemathesis"
            ))
        });
    path.exists().then_some(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let Some(schemathesis) = schemathesis() else {
        skip_or_fail(
            "schemathesis is not installed (.ci/run makes .ci/venv; or set LADDER_SCHEMATHESIS)",
            &SKIP_NOTICE,
        );
        return;
    };
    let t = TestLadder::start_with(Kind::Sqlite, |s| s.api.requests_per_second = 0)
        .await
        .unwrap();
    demo::seed(&t.ladder, Some("demo-password-1"))
        .await
        .unwrap();
    let app = t.serve().await;
    // Both tokens first, and the writer's run first: the admin's run may
    // deactivate, rename or delete what the writer needs.
    let mut tokens = Vec::new();
    for owner in ["alice", "admin"] {
        let token = t
            .ladder
            .db
            .run(CreateToken {
                actor: t.system(),
                owner: owner.into(),
                name: "schemathesis".into(),
                expires_at: None,
                scope: None,
                now: t.now(),
            })
            .await
            .unwrap()
            .secret;
        tokens.push((owner, token));
    }
    for (owner, token) in tokens {
        let run = tokio::task::spawn_blocking({
            let schemathesis = schemathesis.clone();
            let url = format!("{}/api/v1/openapi.json", app.base);
            move || {
                Command::new(schemathesis)
                    .args(["run", &url])
                    .args(["--header", &format!("Authorization: Bearer {token}")])
                    .args([
                        "--checks",
                        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                    ])
                    // One worker: hypothesis parses lambdas' source with `ast` from
                    // each worker thread, and CPython 3.11 can fail that under
                    // threads ("AST constructor recursion depth mismatch"), which
                    // schemathesis reports as a runtime error of its own.
                    .args(["--max-examples", "25", "--max-time", "60", "--workers", "1"])
                    .args(["--phases", "examples,coverage,fuzzing"])
                    .env("SCHEMATHESIS_TELEMETRY", "false")
                    .output()
                    .expect("schemathesis runs")
            }
        })
        .await
        .unwrap();
        let said = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "schemathesis with {owner}'s token found problems:\n{said}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}
