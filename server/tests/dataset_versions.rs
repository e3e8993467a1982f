//! Dataset versions against the real S3 protocol (local mode's endpoint):
//! manifests over many list pages, digests, snapshots, drift, uploads through
//! presigned multipart URLs, previews of every supported format, and the
//! errors users see for bad input.

mod common;

use common::{Auth, TestApp, presigned_put};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;

struct Fixture {
    app: TestApp,
    admin: Auth,
    member: Auth,
    viewer: Auth,
    outsider: Auth,
    dataset: String,
}

async fn fixture(pool: PgPool) -> Fixture {
    let app = TestApp::new(pool).await;
    let admin = app.user("admin@example.com", false).await;
    let member = app.user("member@example.com", false).await;
    let viewer = app.user("viewer@example.com", false).await;
    let outsider = app.user("outsider@example.com", false).await;
    let a = Auth::Bearer(admin.token.clone());
    app.team_with_members("ml", &a, &[("member@example.com", "member"), ("viewer@example.com", "viewer")]).await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams",
            &Auth::Bearer(outsider.token.clone()),
            Some(json!({"slug": "other", "name": "Other"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let member = Auth::Bearer(member.token.clone());
    let res = app.call(Method::POST, "/api/v1/teams/ml/datasets", &member, Some(json!({"name": "churn"}))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let dataset = res.json()["id"].as_str().expect("id").to_owned();
    Fixture {
        app,
        admin: a,
        member,
        viewer: Auth::Bearer(viewer.token.clone()),
        outsider: Auth::Bearer(outsider.token.clone()),
        dataset,
    }
}

impl Fixture {
    async fn register(&self, uri: &str, snapshot: bool) -> Value {
        let path = format!("/api/v1/datasets/{}/versions", self.dataset);
        let res = self
            .app
            .call(Method::POST, &path, &self.member, Some(json!({"source_uri": uri, "snapshot": snapshot})))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let id = res.json()["id"].as_str().expect("id").to_owned();
        self.app.wait_for(&format!("/api/v1/dataset-versions/{id}"), &self.member, |v| v["status"] != "scanning").await
    }

    async fn verify(&self, id: &str) -> Value {
        let res =
            self.app.call(Method::POST, &format!("/api/v1/dataset-versions/{id}/verify"), &self.member, None).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        self.app
            .wait_for(&format!("/api/v1/dataset-versions/{id}/verify"), &self.member, |c| c["status"] != "running")
            .await
    }
}

fn digest_of(rows: &[(String, i64, String)]) -> String {
    let mut sorted = rows.to_vec();
    sorted.sort();
    let mut h = Sha256::new();
    for (k, s, e) in &sorted {
        h.update(format!("{k}\t{s}\t{e}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_prefix_of_10_000_objects_is_recorded_across_list_pages(pool: PgPool) {
    let f = fixture(pool).await;
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..10_050 {
        let c = f.app.s3().clone();
        puts.spawn(async move {
            let body = format!("id,value\n{i},{}\n", i % 7);
            c.put_object()
                .bucket("capstan")
                .key(format!("raw/events/part-{i:05}.csv"))
                .body(body.into_bytes().into())
                .send()
                .await
                .expect("put");
        });
        if puts.len() >= 64 {
            puts.join_next().await;
        }
    }
    while puts.join_next().await.is_some() {}
    f.app.put("capstan", "raw/other/x.csv", "a\n1\n").await;

    let v = f.register("s3://capstan/raw/events", false).await;
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["number"], 1);
    assert_eq!(v["source_uri"], "s3://capstan/raw/events/", "a prefix is a folder");
    assert_eq!(v["location"], "s3://capstan/raw/events/");
    assert_eq!(v["object_count"], 10_050, "every page of the listing was recorded");
    let id = v["id"].as_str().expect("id");

    // the digest is SHA-256 over the sorted manifest, reproducible by anyone with a listing
    let mut listed = Vec::new();
    let calls = storage::list_prefix(f.app.s3(), "capstan", "raw/events/", |page| {
        listed.extend(page.into_iter().map(|o| (o.key.trim_start_matches("raw/events/").to_owned(), o.size, o.etag)));
    })
    .await
    .expect("list");
    assert_eq!(calls, 11, "10 050 keys take 11 list calls");
    assert_eq!(v["byte_count"], listed.iter().map(|r| r.1).sum::<i64>());
    assert_eq!(v["digest"], digest_of(&listed));

    // manifest: keyset pages and a key-prefix filter
    let base = format!("/api/v1/dataset-versions/{id}/manifest");
    let first = f.app.call(Method::GET, &format!("{base}?limit=200"), &f.viewer, None).await.json();
    assert_eq!(first["items"].as_array().expect("items").len(), 200);
    assert_eq!(first["items"][0]["key"], "part-00000.csv");
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let second = f.app.call(Method::GET, &format!("{base}?limit=200&cursor={cursor}"), &f.viewer, None).await.json();
    assert_eq!(second["items"][0]["key"], "part-00200.csv");
    let filtered = f.app.call(Method::GET, &format!("{base}?prefix=part-0999"), &f.viewer, None).await.json();
    let keys: Vec<&str> =
        filtered["items"].as_array().expect("items").iter().map(|e| e["key"].as_str().expect("key")).collect();
    assert_eq!(keys.len(), 10);
    assert!(keys.iter().all(|k| k.starts_with("part-0999")));

    // a second registration is version 2; the first cannot be changed in SQL either
    let v2 = f.register("s3://capstan/raw/other/", false).await;
    assert_eq!(v2["number"], 2);
    let dataset = f.app.call(Method::GET, &format!("/api/v1/datasets/{}", f.dataset), &f.viewer, None).await.json();
    assert_eq!((dataset["version_count"].as_i64(), dataset["latest_version"].as_i64()), (Some(2), Some(2)));
    let tampered = sqlx::query("update dataset_version set object_count = 1 where version_id = $1::uuid")
        .bind(id)
        .execute(&f.app.pool)
        .await;
    assert!(tampered.is_err(), "a ready version is frozen");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn verify_reports_overwritten_deleted_and_added_objects(pool: PgPool) {
    let f = fixture(pool).await;
    for name in ["a.csv", "b.csv", "c.csv"] {
        f.app.put("capstan", &format!("src/{name}"), format!("x\n{name}\n")).await;
    }
    let v = f.register("s3://capstan/src/", false).await;
    assert_eq!(v["status"], "ready");
    let id = v["id"].as_str().expect("id");
    let clean = f.verify(id).await;
    assert_eq!(
        (clean["added"].as_i64(), clean["removed"].as_i64(), clean["changed"].as_i64()),
        (Some(0), Some(0), Some(0))
    );

    f.app.put("capstan", "src/a.csv", "x\nZZZZZ\n").await; // same size, new content
    f.app.s3().delete_object().bucket("capstan").key("src/b.csv").send().await.expect("delete");
    f.app.put("capstan", "src/d.csv", "new\n").await;
    let check = f.verify(id).await;
    assert_eq!(check["status"], "done");
    assert_eq!(
        (check["added"].as_i64(), check["removed"].as_i64(), check["changed"].as_i64()),
        (Some(1), Some(1), Some(1))
    );
    assert!(check["checked_at"].is_string());
    let drift = f.app.call(Method::GET, &format!("/api/v1/dataset-versions/{id}/drift"), &f.viewer, None).await.json();
    let rows: Vec<(String, String)> = drift["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| (d["key"].as_str().expect("key").to_owned(), d["change"].as_str().expect("change").to_owned()))
        .collect();
    assert_eq!(
        rows,
        [("a.csv".into(), "changed".into()), ("b.csv".into(), "removed".into()), ("d.csv".into(), "added".into())]
    );
    // viewers read but cannot start checks
    let res = f.app.call(Method::POST, &format!("/api/v1/dataset-versions/{id}/verify"), &f.viewer, None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(f.app.audit_count("dataset_version.verified").await, 2);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_snapshot_is_a_copy_that_later_writes_cannot_change(pool: PgPool) {
    let f = fixture(pool).await;
    f.app.put("capstan", "live/x.csv", "id\n1\n").await;
    f.app.put("capstan", "live/sub/y.jsonl", "{\"a\":1}\n").await;
    let v = f.register("s3://capstan/live/", true).await;
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["snapshot"], true);
    assert_eq!(v["location"], "s3://capstan/datasets/ml/churn/v1/");
    assert_eq!(v["object_count"], 2);
    let copied = f
        .app
        .s3()
        .get_object()
        .bucket("capstan")
        .key("datasets/ml/churn/v1/sub/y.jsonl")
        .send()
        .await
        .expect("copy exists");
    assert_eq!(copied.body.collect().await.expect("body").into_bytes().as_ref(), b"{\"a\":1}\n");

    f.app.put("capstan", "live/x.csv", "id\n2\n3\n").await;
    f.app.put("capstan", "live/z.csv", "more").await;
    let check = f.verify(v["id"].as_str().expect("id")).await;
    assert_eq!(
        (check["added"].as_i64(), check["removed"].as_i64(), check["changed"].as_i64()),
        (Some(0), Some(0), Some(0))
    );
}

/// Site admins open locations outside Capstan's bucket to a team; team
/// admins cannot, and other teams stay refused.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn outside_locations_need_a_site_admins_allowance(pool: PgPool) {
    let f = fixture(pool).await;
    storage::ensure_bucket(f.app.s3(), "external").await.expect("bucket");
    f.app.put("external", "exports/a.csv", "a\n1\n").await;
    let path = format!("/api/v1/datasets/{}/versions", f.dataset);
    let register = || f.app.call(Method::POST, &path, &f.member, Some(json!({"source_uri": "s3://external/exports/"})));
    assert_eq!(register().await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let allow = json!({"allowed_sources": ["s3://external/exports/"]});
    let res = f.app.call(Method::PATCH, "/api/v1/teams/ml", &f.admin, Some(allow.clone())).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "a team admin cannot open outside data to the team");
    let root = Auth::Bearer(f.app.user("root@example.com", true).await.token);
    let bad = json!({"allowed_sources": ["s3://capstan/datasets/other/"]});
    let res = f.app.call(Method::PATCH, "/api/v1/teams/ml", &root, Some(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "Capstan's own areas are not allowed this way");
    let res = f.app.call(Method::PATCH, "/api/v1/teams/ml", &root, Some(allow)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["allowed_sources"], json!(["s3://external/exports/"]));
    let res = register().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    // a neighbouring prefix of the same bucket stays closed
    let res = f.app.call(Method::POST, &path, &f.member, Some(json!({"source_uri": "s3://external/private/"}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    // and so does the allowance for another team
    let other = f.app.call(Method::GET, "/api/v1/teams/other", &f.outsider, None).await.json();
    assert_eq!(other["allowed_sources"], json!([]));
    assert_eq!(f.app.audit_count("team.updated").await, 1);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn bad_sources_are_refused_with_the_reason_and_write_nothing(pool: PgPool) {
    let f = fixture(pool).await;
    f.app.put("capstan", "datasets/other/secret/v1/a.csv", "secret\n").await;
    let path = format!("/api/v1/datasets/{}/versions", f.dataset);
    let cases = [
        ("https://example.com/data", "s3://bucket/prefix/"),
        ("s3://Bad_Bucket/x/", "not a valid bucket name"),
        // outside Capstan's bucket: one answer whether the bucket exists or not (no oracle)
        ("s3://no-such-bucket/data/", "is not open to this team"),
        ("s3://external/private/", "is not open to this team"),
        ("s3://capstan/nothing-here/", "no objects under s3://capstan/nothing-here/"),
        // another team's area of Capstan's bucket cannot be named
        ("s3://capstan/datasets/other/secret/v1/", "use s3://capstan/datasets/ml/"),
        ("s3://capstan/datasets/", "use s3://capstan/datasets/ml/"),
        ("s3://capstan/", "not the whole bucket"),
        // dot segments stepped from one's own area into another's, or to the whole bucket
        ("s3://capstan/datasets/ml/../other/secret/v1/", "\"..\" segments"),
        ("s3://capstan/jobs/ml/../../", "\"..\" segments"),
        ("s3://capstan/datasets/ml/./x/", "\"..\" segments"),
        ("s3://capstan/datasets\\other/secret/", "backslashes"),
    ];
    for (uri, expected) in cases {
        let res = f.app.call(Method::POST, &path, &f.member, Some(json!({"source_uri": uri}))).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {}", res.text());
        let body = res.json();
        assert_eq!(body["errors"][0]["field"], "source_uri");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains(expected), "{uri}: {message}");
    }
    assert_eq!(f.app.count("select count(*) from dataset_version").await, 0);
    assert_eq!(f.app.audit_count("dataset_version.created").await, 0);

    // every route is in the OpenAPI document
    let doc = f.app.call(Method::GET, "/api/v1/openapi.json", &Auth::None, None).await.json();
    for path in [
        "/api/v1/datasets/{id}/versions",
        "/api/v1/dataset-versions/{id}",
        "/api/v1/dataset-versions/{id}/manifest",
        "/api/v1/dataset-versions/{id}/preview",
        "/api/v1/dataset-versions/{id}/verify",
        "/api/v1/dataset-versions/{id}/drift",
        "/api/v1/datasets/{id}/uploads",
        "/api/v1/dataset-versions/{id}/upload/parts",
        "/api/v1/dataset-versions/{id}/upload/complete",
        "/api/v1/dataset-versions/{id}/upload/abort",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }

    f.app.put("capstan", "ok/a.csv", "a\n1\n").await;
    let res = f.app.call(Method::POST, &path, &f.viewer, Some(json!({"source_uri": "s3://capstan/ok/"}))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "viewers read only");
    let res = f.app.call(Method::POST, &path, &f.outsider, Some(json!({"source_uri": "s3://capstan/ok/"}))).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "another team's dataset does not exist for them");
    let v = f.register("s3://capstan/ok/", false).await;
    let res = f
        .app
        .call(Method::GET, &format!("/api/v1/dataset-versions/{}", v["id"].as_str().expect("id")), &f.outsider, None)
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_scan_that_fails_midway_keeps_nothing_and_says_why(pool: PgPool) {
    let f = fixture(pool).await;
    f.app.put("capstan", "gone/a.csv", "a\n1\n").await;
    let path = format!("/api/v1/datasets/{}/versions", f.dataset);
    // the prefix exists when probed; the scan then finds the bucket gone
    let res = f.app.call(Method::POST, &path, &f.member, Some(json!({"source_uri": "s3://capstan/gone/"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    let id: uuid::Uuid = res.json()["id"].as_str().expect("id").parse().expect("uuid");
    // Simulate a resumed scan whose source has vanished.
    f.app.wait_for(&format!("/api/v1/dataset-versions/{id}"), &f.member, |v| v["status"] == "ready").await;
    sqlx::query("alter table dataset_version disable trigger dataset_version_frozen")
        .execute(&f.app.pool)
        .await
        .expect("sql");
    sqlx::query("update dataset_version set status = 'scanning', prefix = 'vanished/' where version_id = $1")
        .bind(id)
        .execute(&f.app.pool)
        .await
        .expect("sql");
    sqlx::query("alter table dataset_version enable trigger dataset_version_frozen")
        .execute(&f.app.pool)
        .await
        .expect("sql");
    app::datasets::versions::scan(f.app.state.clone(), id).await;
    let v = f.app.call(Method::GET, &format!("/api/v1/dataset-versions/{id}"), &f.member, None).await.json();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["failure"], "no objects under s3://capstan/vanished/");
    assert_eq!(v["object_count"], 0);
    assert_eq!(f.app.count(&format!("select count(*) from dataset_object where version_id = '{id}'")).await, 0);
}

/// Uploads `files` through the REST upload endpoints as a client would.
async fn upload(f: &Fixture, files: &[(&str, Vec<u8>)]) -> Value {
    let start = f
        .app
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{}/uploads", f.dataset),
            &f.member,
            Some(json!({"files": files.iter().map(|(p, b)| json!({"path": p, "size": b.len()})).collect::<Vec<_>>()})),
        )
        .await;
    assert_eq!(start.status, StatusCode::CREATED, "{}", start.text());
    let started = start.json();
    let id = started["version"]["id"].as_str().expect("id").to_owned();
    assert_eq!(started["version"]["status"], "uploading");
    let mut done = Vec::new();
    for (plan, (path, body)) in started["files"].as_array().expect("files").iter().zip(files) {
        let part_size = usize::try_from(plan["part_size"].as_i64().expect("part size")).expect("usize");
        let count = plan["part_count"].as_i64().expect("count");
        let urls = f
            .app
            .call(
                Method::POST,
                &format!("/api/v1/dataset-versions/{id}/upload/parts"),
                &f.member,
                Some(json!({"path": path, "parts": (1..=count).collect::<Vec<_>>()})),
            )
            .await
            .json();
        let mut parts = Vec::new();
        for (i, u) in urls.as_array().expect("urls").iter().enumerate() {
            let chunk = &body[i * part_size..((i + 1) * part_size).min(body.len())];
            let (status, etag) = presigned_put(u["url"].as_str().expect("url"), chunk).await;
            assert_eq!(status, 200);
            parts.push(json!({"number": u["number"], "etag": etag.expect("etag")}));
        }
        done.push(json!({"path": path, "parts": parts}));
    }
    json!({"id": id, "files": done})
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn browser_upload_through_presigned_parts_becomes_a_version(pool: PgPool) {
    let f = fixture(pool).await;
    let big: Vec<u8> = (0..9 * 1024 * 1024).map(|i| u8::try_from(i % 251).expect("byte")).collect();
    let csv = b"id,label\n1,yes\n2,no\n".to_vec();
    let up = upload(&f, &[("blob.bin", big.clone()), ("train/data.csv", csv.clone())]).await;
    let id = up["id"].as_str().expect("id");
    let complete = format!("/api/v1/dataset-versions/{id}/upload/complete");

    // a missing part is a field error and completes nothing
    let mut partial = up["files"].clone();
    partial[0]["parts"].as_array_mut().expect("parts").pop();
    let res = f.app.call(Method::POST, &complete, &f.member, Some(json!({"files": partial}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "files[0].parts");
    assert!(res.json()["errors"][0]["message"].as_str().expect("message").contains("part 2 of 2 missing"));

    let res = f.app.call(Method::POST, &complete, &f.member, Some(json!({"files": up["files"]}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let v = f.app.wait_for(&format!("/api/v1/dataset-versions/{id}"), &f.member, |v| v["status"] != "scanning").await;
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["source"], "upload");
    assert_eq!(v["object_count"], 2);
    assert_eq!(v["byte_count"], i64::try_from(big.len() + csv.len()).expect("i64"));
    assert_eq!(v["location"], "s3://capstan/datasets/ml/churn/v1/");
    let stored =
        f.app.s3().get_object().bucket("capstan").key("datasets/ml/churn/v1/blob.bin").send().await.expect("get");
    assert!(
        stored.body.collect().await.expect("body").into_bytes().as_ref() == big.as_slice(),
        "the parts were joined in order"
    );
    let preview = f
        .app
        .call(Method::GET, &format!("/api/v1/dataset-versions/{id}/preview?key=train/data.csv"), &f.viewer, None)
        .await
        .json();
    assert_eq!(preview["rows"], json!([["1", "yes"], ["2", "no"]]));
    assert_eq!(f.app.audit_count("dataset_version.uploaded").await, 1);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn uploads_refuse_bad_files_and_can_be_cancelled_or_expire(pool: PgPool) {
    let f = fixture(pool).await;
    let path = format!("/api/v1/datasets/{}/uploads", f.dataset);
    let res = f
        .app
        .call(Method::POST, &path, &f.member, Some(json!({"files": [
            {"path": "ok.csv", "size": 10}, {"path": "empty.csv", "size": 0}, {"path": "../escape", "size": 5}, {"path": "ok.csv", "size": 3}
        ]})))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = res.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("f").to_owned())
        .collect();
    assert_eq!(fields, ["files[1].size", "files[2].path", "files[3].path"]);
    assert_eq!(f.app.count("select count(*) from dataset_version").await, 0);

    // cancel: the version fails with the reason; its parts can no longer be signed
    let up = upload(&f, &[("a.csv", b"a\n1\n".to_vec())]).await;
    let id = up["id"].as_str().expect("id");
    let res = f.app.call(Method::POST, &format!("/api/v1/dataset-versions/{id}/upload/abort"), &f.member, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["status"], "failed");
    assert_eq!(res.json()["failure"], "Upload cancelled by member@example.com.");
    let res = f
        .app
        .call(
            Method::POST,
            &format!("/api/v1/dataset-versions/{id}/upload/complete"),
            &f.member,
            Some(json!({"files": up["files"]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);

    // two cancels at once: one cancels (with one audit event), the other is told
    let up = upload(&f, &[("c.csv", b"c\n3\n".to_vec())]).await;
    let id = up["id"].as_str().expect("id");
    let path = format!("/api/v1/dataset-versions/{id}/upload/abort");
    let (a, b) = tokio::join!(
        f.app.call(Method::POST, &path, &f.member, None),
        f.app.call(Method::POST, &path, &f.member, None)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{} / {}", a.text(), b.text());
    let events = f
        .app
        .count(&format!(
            "select count(*) from audit_event where action = 'dataset_version.upload_cancelled' and target_id = '{id}'"
        ))
        .await;
    assert_eq!(events, 1, "one cancel, one audit event");

    // a day-old unfinished upload is aborted by housekeeping
    let stale = upload(&f, &[("b.csv", b"b\n2\n".to_vec())]).await;
    let stale_id: uuid::Uuid = stale["id"].as_str().expect("id").parse().expect("uuid");
    sqlx::query("update dataset_version set created_at = now() - interval '25 hours' where version_id = $1")
        .bind(stale_id)
        .execute(&f.app.pool)
        .await
        .expect("age it");
    let cleaned = app::datasets::upload::clean_stale(&f.app.state, time::Duration::days(1)).await.expect("clean");
    assert_eq!(cleaned, 1);
    let v = f.app.call(Method::GET, &format!("/api/v1/dataset-versions/{stale_id}"), &f.member, None).await.json();
    assert_eq!(v["status"], "failed");
    let upload_id: String = sqlx::query_scalar("select s3_upload_id from dataset_upload_file where version_id = $1")
        .bind(stale_id)
        .fetch_one(&f.app.pool)
        .await
        .expect("row");
    let part = f
        .app
        .s3()
        .upload_part()
        .bucket("capstan")
        .key("datasets/ml/churn/v3/b.csv")
        .upload_id(upload_id)
        .part_number(2)
        .body(b"more".to_vec().into())
        .send()
        .await;
    assert!(part.is_err(), "the multipart upload was aborted");
}

fn parquet_bytes() -> Vec<u8> {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type("message m { required int64 id; required binary name (UTF8); }")
            .expect("schema"),
    );
    let mut out = Vec::new();
    let mut writer =
        SerializedFileWriter::new(&mut out, schema, Arc::new(WriterProperties::builder().build())).expect("writer");
    for group in 0..2 {
        let mut rg = writer.next_row_group().expect("row group");
        let ids: Vec<i64> = (0..100).map(|i| group * 100 + i).collect();
        let mut col = rg.next_column().expect("col").expect("id");
        col.typed::<Int64Type>().write_batch(&ids, None, None).expect("ids");
        col.close().expect("close");
        let names: Vec<ByteArray> = ids.iter().map(|i| ByteArray::from(format!("row-{i}").as_str())).collect();
        let mut col = rg.next_column().expect("col").expect("name");
        col.typed::<ByteArrayType>().write_batch(&names, None, None).expect("names");
        col.close().expect("close");
        rg.close().expect("close rg");
    }
    writer.close().expect("close");
    out
}

/// A real file whose first page header claims 1 GiB uncompressed (the page
/// itself is tiny): parquet-rs would allocate the claim before decompressing.
#[allow(deprecated)] // parquet::format: see app::datasets::preview::oversized_page
fn parquet_lying_page() -> Vec<u8> {
    use parquet::thrift::TSerializable as _;
    let mut bytes = parquet_bytes();
    let mut cursor = std::io::Cursor::new(&bytes[4..]);
    let mut input = thrift::protocol::TCompactInputProtocol::new(&mut cursor);
    let mut header = parquet::format::PageHeader::read_from_in_protocol(&mut input).expect("first page header");
    let old_len = usize::try_from(cursor.position()).expect("len");
    header.uncompressed_page_size = 1 << 30;
    let mut out = Vec::new();
    let mut output = thrift::protocol::TCompactOutputProtocol::new(&mut out);
    header.write_to_out_protocol(&mut output).expect("write header");
    thrift::protocol::TOutputProtocol::flush(&mut output).expect("flush");
    drop(output);
    bytes.splice(4..4 + old_len, out);
    bytes
}

/// One row holding `len` zero bytes, zstd-compressed to almost nothing.
fn parquet_zeros(len: usize) -> Vec<u8> {
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    let schema =
        Arc::new(parquet::schema::parser::parse_message_type("message m { required binary blob; }").expect("schema"));
    let props = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, Arc::new(props)).expect("writer");
    let mut rg = writer.next_row_group().expect("row group");
    let mut col = rg.next_column().expect("col").expect("blob");
    col.typed::<ByteArrayType>().write_batch(&[ByteArray::from(vec![0_u8; len])], None, None).expect("write");
    col.close().expect("close");
    rg.close().expect("close rg");
    writer.close().expect("close");
    out
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn previews_read_the_head_or_footer_of_each_format(pool: PgPool) {
    let f = fixture(pool).await;
    let mut big_csv = String::from("n,text\n");
    for i in 0..40_000 {
        big_csv.push_str(&format!("{i},some text for row {i}\n"));
    }
    f.app.put("capstan", "p/table.csv", big_csv.clone()).await;
    f.app.put("capstan", "p/table.tsv", "a\tb\n1\tx\n2\ty\n").await;
    f.app.put("capstan", "p/rows.jsonl", "{\"a\":1,\"b\":true}\n{\"a\":2,\"c\":\"z\"}\n").await;
    f.app.put("capstan", "p/data.parquet", parquet_bytes()).await;
    f.app.put("capstan", "p/broken.parquet", b"PAR1 this is not parquet at all PAR1".to_vec()).await;
    f.app.put("capstan", "p/image.png", vec![137, 80, 78, 71]).await;
    let mut huge_footer = vec![0_u8; 17 << 20];
    let n = huge_footer.len();
    huge_footer[n - 8..n - 4].copy_from_slice(&u32::try_from(n - 12).expect("u32").to_le_bytes());
    huge_footer[n - 4..].copy_from_slice(b"PAR1");
    f.app.put("capstan", "p/huge-footer.parquet", huge_footer).await;
    f.app.put("capstan", "p/zeros.parquet", parquet_zeros(70 << 20)).await;
    f.app.put("capstan", "p/lying.parquet", parquet_lying_page()).await;
    let v = f.register("s3://capstan/p/", false).await;
    let id = v["id"].as_str().expect("id");
    let preview = |key: &str| {
        let path = format!("/api/v1/dataset-versions/{id}/preview?key={key}");
        let app = &f.app;
        let auth = &f.viewer;
        async move { app.call(Method::GET, &path, auth, None).await }
    };

    let csv = preview("table.csv").await.json();
    assert_eq!(csv["format"], "csv");
    assert_eq!(csv["rows"].as_array().expect("rows").len(), 50);
    assert_eq!(csv["columns"], json!([{"name": "n", "type": "integer"}, {"name": "text", "type": "string"}]));
    assert!(csv["bytes_read"].as_i64().expect("read") <= 256 * 1024, "only the head is fetched");
    assert!(i64::try_from(big_csv.len()).expect("i64") > 256 * 1024);

    let tsv = preview("table.tsv").await.json();
    assert_eq!(tsv["rows"], json!([["1", "x"], ["2", "y"]]));
    let jsonl = preview("rows.jsonl").await.json();
    assert_eq!(
        jsonl["columns"],
        json!([{"name": "a", "type": "integer"}, {"name": "b", "type": "boolean"}, {"name": "c", "type": "string"}])
    );

    let pq = preview("data.parquet").await.json();
    assert_eq!(pq["format"], "parquet");
    assert_eq!(pq["row_count"], 200, "the footer gives the row count");
    assert_eq!(pq["columns"], json!([{"name": "id", "type": "int64"}, {"name": "name", "type": "string"}]));
    assert_eq!(pq["rows"].as_array().expect("rows").len(), 50);
    assert_eq!(pq["rows"][3], json!(["3", "row-3"]));

    let broken = preview("broken.parquet").await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", broken.text());
    assert!(broken.json()["errors"][0]["message"].as_str().expect("m").starts_with("Could not read this Parquet file"));
    // A footer that claims 17 MiB is refused before it is read.
    let footer = preview("huge-footer.parquet").await;
    assert_eq!(footer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", footer.text());
    assert!(footer.text().contains("previews read at most 16.8 MB"), "{}", footer.text());
    // A small file whose row group decodes to 70 MiB of zeros: schema and
    // count are shown, the rows are not decoded.
    let bomb = preview("zeros.parquet").await.json();
    assert_eq!(bomb["row_count"], 1, "{bomb}");
    assert_eq!(bomb["rows"], json!([]));
    assert!(bomb["note"].as_str().is_some_and(|n| n.contains("previews decode at most 67.1 MB")), "{bomb}");
    let lying = preview("lying.parquet").await.json();
    assert_eq!(lying["rows"], json!([]), "{lying}");
    assert!(lying["note"].as_str().is_some_and(|n| n.contains("a page declares 1.1 GB uncompressed")), "{lying}");
    let png = preview("image.png").await.json();
    assert_eq!(png["format"], Value::Null);
    assert_eq!(png["note"], "Preview not available for this format.");
    assert_eq!(png["size"], 4);
    assert_eq!(preview("missing.csv").await.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_referenced_version_cannot_be_deleted_and_a_deleted_one_takes_its_copy_along(pool: PgPool) {
    let f = fixture(pool).await;
    f.app.put("capstan", "keep/a.csv", "a\n1\n").await;
    let v = f.register("s3://capstan/keep/", true).await;
    let id = v["id"].as_str().expect("id");
    let path = format!("/api/v1/dataset-versions/{id}");
    // anything referencing a version (training jobs, models) protects it
    sqlx::query("create table lineage_probe (version_id uuid references dataset_version)")
        .execute(&f.app.pool)
        .await
        .expect("sql");
    sqlx::query("insert into lineage_probe values ($1::uuid)").bind(id).execute(&f.app.pool).await.expect("sql");
    let res = f.app.call(Method::DELETE, &path, &f.admin, None).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    let detail = res.json()["detail"].as_str().expect("detail").to_owned();
    assert!(detail.contains("cannot be deleted") && !detail.contains("lineage_probe"), "no table names: {detail}");
    assert_eq!(f.app.call(Method::DELETE, &path, &f.member, None).await.status, StatusCode::FORBIDDEN, "admins delete");

    sqlx::query("delete from lineage_probe").execute(&f.app.pool).await.expect("sql");
    let res = f.app.call(Method::DELETE, &path, &f.admin, None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert_eq!(f.app.call(Method::GET, &path, &f.admin, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(f.app.audit_count("dataset_version.deleted").await, 1);
    let mut left = usize::MAX;
    for _ in 0..100 {
        let out =
            f.app.s3().list_objects_v2().bucket("capstan").prefix("datasets/ml/churn/v1/").send().await.expect("list");
        left = out.contents().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "the managed copy is removed");
    let source = f.app.s3().head_object().bucket("capstan").key("keep/a.csv").send().await;
    assert!(source.is_ok(), "the registered source is never touched");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_scan_cut_short_by_a_restart_starts_over_and_counts_each_object_once(pool: PgPool) {
    let f = fixture(pool).await;
    for i in 0..5 {
        f.app.put("capstan", &format!("resume/{i}.csv"), format!("x\n{i}\n")).await;
    }
    let v = f.register("s3://capstan/resume/", false).await;
    let id: uuid::Uuid = v["id"].as_str().expect("id").parse().expect("uuid");
    let digest = v["digest"].clone();
    // what a crash mid-scan leaves behind: status scanning, part of the manifest, stale counts
    let second = sqlx::query_scalar::<_, uuid::Uuid>(
        "insert into dataset_version (version_id, dataset_id, team_id, number, source, source_uri, snapshot, bucket,
                                      prefix, status, object_count, byte_count, created_by)
         select gen_random_uuid(), dataset_id, team_id, 2, source, source_uri, snapshot, bucket, prefix, 'scanning', 2, 8, created_by
         from dataset_version where version_id = $1 returning version_id",
    )
    .bind(id)
    .fetch_one(&f.app.pool)
    .await
    .expect("row");
    sqlx::query("insert into dataset_object select $1, key, size, etag, last_modified from dataset_object where version_id = $2 limit 2")
        .bind(second)
        .bind(id)
        .execute(&f.app.pool)
        .await
        .expect("partial manifest");
    let check = sqlx::query_scalar::<_, uuid::Uuid>(
        "insert into dataset_check (check_id, version_id, status, checked_by)
         select gen_random_uuid(), $1, 'running', created_by from dataset_version where version_id = $1 returning check_id",
    )
    .bind(id)
    .fetch_one(&f.app.pool)
    .await
    .expect("check");
    app::datasets::versions::resume_scans(f.app.state.clone()).await;
    let (status, failure): (String, Option<String>) =
        sqlx::query_as("select status, failure from dataset_check where check_id = $1")
            .bind(check)
            .fetch_one(&f.app.pool)
            .await
            .expect("row");
    assert_eq!((status.as_str(), failure.as_deref()), ("failed", Some("Interrupted (Capstan stopped): verify again.")));
    let resumed =
        f.app.wait_for(&format!("/api/v1/dataset-versions/{second}"), &f.member, |v| v["status"] != "scanning").await;
    assert_eq!(resumed["status"], "ready", "{resumed}");
    assert_eq!(resumed["object_count"], 5);
    assert_eq!(resumed["digest"], digest, "the same objects give the same digest");
}

/// Versions left `scanning` by nobody (as a crash leaves them), numbered
/// from `from`, on the same location as version `like`.
async fn orphan_scans(f: &Fixture, like: uuid::Uuid, from: i32, n: i32) -> Vec<uuid::Uuid> {
    sqlx::query_scalar::<_, uuid::Uuid>(
        "insert into dataset_version (version_id, dataset_id, team_id, number, source, source_uri, snapshot, bucket,
                                      prefix, status, created_by)
         select gen_random_uuid(), dataset_id, team_id, n, source, source_uri, snapshot, bucket, prefix, 'scanning',
                created_by
         from dataset_version, generate_series($2::int, $2::int + $3::int - 1) n where version_id = $1
         returning version_id",
    )
    .bind(like)
    .bind(from)
    .bind(n)
    .fetch_all(&f.app.pool)
    .await
    .expect("rows")
}

async fn wait_ready(f: &Fixture, ids: &[uuid::Uuid]) {
    for _ in 0..300 {
        let ready: i64 =
            sqlx::query_scalar("select count(*) from dataset_version where version_id = any($1) and status = 'ready'")
                .bind(ids)
                .fetch_one(&f.app.pool)
                .await
                .expect("count");
        if ready == ids.len() as i64 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("scans did not finish");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn two_processes_on_one_database_run_each_scan_once_and_take_over_a_dead_ones(pool: PgPool) {
    let f = fixture(pool).await;
    for i in 0..3 {
        f.app.put("capstan", &format!("shared/{i}.csv"), format!("x\n{i}\n")).await;
    }
    let v = f.register("s3://capstan/shared/", false).await;
    let first: uuid::Uuid = v["id"].as_str().expect("id").parse().expect("uuid");
    // two Capstan processes: the same database and bucket, each its own leases
    let here = f.app.state.clone();
    let there = app::kernel::state::AppState { instance: uuid::Uuid::now_v7(), ..here.clone() };

    // 20 scans nobody holds: both processes look for work at once, each scan starts once
    let orphans = orphan_scans(&f, first, 2, 20).await;
    let (a, b) = tokio::join!(
        app::datasets::versions::resume_scans(here.clone()),
        app::datasets::versions::resume_scans(there.clone())
    );
    assert_eq!(a + b, 20, "each scan started once: {a} here, {b} there");
    wait_ready(&f, &orphans).await;
    let counts: Vec<i64> = sqlx::query_scalar("select object_count from dataset_version where version_id = any($1)")
        .bind(&orphans)
        .fetch_all(&f.app.pool)
        .await
        .expect("counts");
    assert!(counts.iter().all(|c| *c == 3), "{counts:?}");

    // a scan a live process holds is left alone; once its lease runs out
    // (the process died), the other process takes it over and finishes it
    let held = orphan_scans(&f, first, 22, 1).await;
    sqlx::query(
        "update dataset_version set lease_owner = $2, lease_until = now() + interval '1 minute' where version_id = $1",
    )
    .bind(held[0])
    .bind(here.instance)
    .execute(&f.app.pool)
    .await
    .expect("lease");
    assert_eq!(app::datasets::versions::resume_scans(there.clone()).await, 0, "a live lease is respected");
    sqlx::query("update dataset_version set lease_until = now() - interval '1 second' where version_id = $1")
        .bind(held[0])
        .execute(&f.app.pool)
        .await
        .expect("lapse");
    // the process whose lease it is not does nothing with it, even asked directly
    app::datasets::versions::scan(there.clone(), held[0]).await;
    let status: String = sqlx::query_scalar("select status::text from dataset_version where version_id = $1")
        .bind(held[0])
        .fetch_one(&f.app.pool)
        .await
        .expect("status");
    assert_eq!(status, "scanning", "only the lease holder scans");
    assert_eq!(app::datasets::versions::resume_scans(there.clone()).await, 1, "a lapsed lease is taken over");
    wait_ready(&f, &held).await;
    let owner: Option<uuid::Uuid> = sqlx::query_scalar("select lease_owner from dataset_version where version_id = $1")
        .bind(held[0])
        .fetch_one(&f.app.pool)
        .await
        .expect("owner");
    assert_eq!(owner, Some(there.instance));
}
