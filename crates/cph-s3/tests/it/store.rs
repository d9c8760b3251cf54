//! The server-side store API: streaming, limits, atomicity, tenancy, key safety, listing
//! order and multipart rules.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cph_s3::{ListRequest, ObjError, ObjectAttrs, ObjectStore, PutChecks, S3Config};
use futures::stream;
use md5::{Digest, Md5};
use tokio::io::AsyncReadExt;

const P1: &str = "project-one";
const P2: &str = "project-two";

fn open(tweak: impl FnOnce(&mut S3Config)) -> (tempfile::TempDir, ObjectStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = S3Config::new(dir.path().join("s3"));
    tweak(&mut config);
    let store = ObjectStore::with_config(&config).unwrap();
    (dir, store)
}

fn body(chunks: Vec<Vec<u8>>) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))))
}

async fn put(
    store: &ObjectStore,
    project: &str,
    bucket: &str,
    key: &str,
    data: &[u8],
) -> Result<cph_s3::ObjectMeta, ObjError> {
    store
        .put_stream(
            project,
            bucket,
            key,
            ObjectAttrs::default(),
            PutChecks::default(),
            body(vec![data.to_vec()]),
        )
        .await
}

async fn read_all(store: &ObjectStore, project: &str, bucket: &str, key: &str) -> Vec<u8> {
    let (meta, mut reader) = store.get(project, bucket, key).await.unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.unwrap();
    assert_eq!(out.len() as u64, meta.size);
    out
}

fn tmp_entries(store: &ObjectStore) -> usize {
    std::fs::read_dir(store.root().join(".tmp"))
        .unwrap()
        .count()
}

fn tmp_bytes(root: &Path) -> u64 {
    std::fs::read_dir(root.join(".tmp"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn put_writes_the_body_to_disk_as_it_arrives() {
    let (_dir, store) = open(|_| {});
    store.create_bucket(P1, "u1", "stream").await.unwrap();
    const CHUNK: usize = 64 * 1024;
    const TOTAL: u64 = 16 << 20;
    let root = store.root().to_path_buf();
    let max_lag = Arc::new(AtomicU64::new(0));
    let lag = max_lag.clone();
    // Before yielding each chunk, compare what was sent with what is already in the
    // temporary file: a PUT that buffered the body would fall behind by the whole body.
    let chunks = stream::unfold(0u64, move |sent| {
        let root = root.clone();
        let lag = lag.clone();
        async move {
            if sent >= TOTAL {
                return None;
            }
            tokio::task::yield_now().await;
            let on_disk = tmp_bytes(&root);
            lag.fetch_max(sent.saturating_sub(on_disk), Ordering::Relaxed);
            let chunk = vec![(sent / CHUNK as u64) as u8; CHUNK];
            Some((
                Ok::<_, std::io::Error>(Bytes::from(chunk)),
                sent + CHUNK as u64,
            ))
        }
    });
    let meta = store
        .put_stream(
            P1,
            "stream",
            "big",
            ObjectAttrs::default(),
            PutChecks {
                expected_len: Some(TOTAL),
                content_md5: None,
            },
            chunks,
        )
        .await
        .unwrap();
    assert_eq!(meta.size, TOTAL);
    let lag = max_lag.load(Ordering::Relaxed);
    assert!(
        lag <= 1 << 20,
        "the body lagged {lag} bytes behind the disk"
    );
    let (_, reader) = store.get(P1, "stream", "big").await.unwrap();
    assert_eq!(reader.remaining(), TOTAL);
}

#[tokio::test]
async fn limits_and_length_checks_publish_nothing() {
    let (_dir, store) = open(|c| c.max_object_bytes = 1 << 20);
    store.create_bucket(P1, "u1", "limits").await.unwrap();
    // Declared too large: refused before reading.
    let r = store
        .put_stream(
            P1,
            "limits",
            "k",
            ObjectAttrs::default(),
            PutChecks {
                expected_len: Some(2 << 20),
                content_md5: None,
            },
            body(vec![]),
        )
        .await;
    assert!(matches!(r, Err(ObjError::EntityTooLarge(_))), "{r:?}");
    // Undeclared, but the stream goes past the limit.
    let r = store
        .put_stream(
            P1,
            "limits",
            "k",
            ObjectAttrs::default(),
            PutChecks::default(),
            body(vec![vec![0; 700 << 10]; 2]),
        )
        .await;
    assert!(matches!(r, Err(ObjError::EntityTooLarge(_))), "{r:?}");
    // Shorter or longer than declared, or another MD5.
    for (declared, data) in [(10u64, vec![1u8; 5]), (3, vec![1u8; 5])] {
        let r = store
            .put_stream(
                P1,
                "limits",
                "k",
                ObjectAttrs::default(),
                PutChecks {
                    expected_len: Some(declared),
                    content_md5: None,
                },
                body(vec![data]),
            )
            .await;
        assert!(matches!(r, Err(ObjError::BadDigest(_))), "{r:?}");
    }
    let r = store
        .put_stream(
            P1,
            "limits",
            "k",
            ObjectAttrs::default(),
            PutChecks {
                expected_len: None,
                content_md5: Some([0; 16]),
            },
            body(vec![b"abc".to_vec()]),
        )
        .await;
    assert!(matches!(r, Err(ObjError::BadDigest(_))), "{r:?}");
    let good: [u8; 16] = Md5::digest(b"abc").into();
    store
        .put_stream(
            P1,
            "limits",
            "ok",
            ObjectAttrs::default(),
            PutChecks {
                expected_len: Some(3),
                content_md5: Some(good),
            },
            body(vec![b"abc".to_vec()]),
        )
        .await
        .unwrap();
    assert!(matches!(
        store.head(P1, "limits", "k").await,
        Err(ObjError::NoSuchKey)
    ));
    assert_eq!(tmp_entries(&store), 0, "temporary files left behind");
}

#[tokio::test]
async fn a_failed_upload_keeps_the_previous_object() {
    let (_dir, store) = open(|_| {});
    store.create_bucket(P1, "u1", "atomic").await.unwrap();
    put(&store, P1, "atomic", "k", b"version one")
        .await
        .unwrap();
    let broken = stream::iter(vec![
        Ok(Bytes::from_static(b"version two, part")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ]);
    let r = store
        .put_stream(
            P1,
            "atomic",
            "k",
            ObjectAttrs::default(),
            PutChecks::default(),
            broken,
        )
        .await;
    assert!(matches!(r, Err(ObjError::Body(_))), "{r:?}");
    assert_eq!(read_all(&store, P1, "atomic", "k").await, b"version one");
    assert_eq!(tmp_entries(&store), 0);

    // A reader keeps the version it opened while the object is replaced.
    let (_, mut old) = store.get(P1, "atomic", "k").await.unwrap();
    put(&store, P1, "atomic", "k", b"version three")
        .await
        .unwrap();
    let mut got = Vec::new();
    old.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"version one");
    assert_eq!(read_all(&store, P1, "atomic", "k").await, b"version three");
}

#[tokio::test]
async fn reads_report_missing_and_foreign_objects() {
    let (_dir, store) = open(|_| {});
    store.create_bucket(P1, "u1", "mine").await.unwrap();
    let attrs = ObjectAttrs {
        content_type: Some("application/vnd.android.package-archive".into()),
        metadata: [("origin".to_owned(), "upload".to_owned())].into(),
        ..ObjectAttrs::default()
    };
    let meta = store
        .put_reader(P1, "mine", "app.apk", attrs.clone(), &b"0123456789"[..])
        .await
        .unwrap();
    assert_eq!(meta.etag, hex::encode(Md5::digest(b"0123456789")));
    assert_eq!(
        store.head(P1, "mine", "app.apk").await.unwrap().attrs,
        attrs
    );
    let (_, mut r) = store
        .get_range(P1, "mine", "app.apk", Some(2..5))
        .await
        .unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"234");
    assert!(matches!(
        store.get_range(P1, "mine", "app.apk", Some(5..11)).await,
        Err(ObjError::InvalidArgument(_))
    ));

    assert!(matches!(
        store.get(P1, "nobucket", "app.apk").await,
        Err(ObjError::NoSuchBucket)
    ));
    assert!(matches!(
        store.get(P1, "mine", "other.apk").await,
        Err(ObjError::NoSuchKey)
    ));
    assert!(matches!(
        store.get(P2, "mine", "app.apk").await,
        Err(ObjError::AccessDenied)
    ));
    assert!(matches!(
        put(&store, P2, "mine", "x", b"x").await,
        Err(ObjError::AccessDenied)
    ));
    assert!(matches!(
        store.delete(P2, "mine", "app.apk").await,
        Err(ObjError::AccessDenied)
    ));
    assert!(matches!(
        store.list(P2, "mine", &ListRequest::default()).await,
        Err(ObjError::AccessDenied)
    ));
    assert!(matches!(
        store.get(P1, "Bad_Name", "k").await,
        Err(ObjError::InvalidBucketName(_))
    ));
    assert!(matches!(
        store.get(P1, "mine", "").await,
        Err(ObjError::InvalidKey(_))
    ));
    assert_eq!(read_all(&store, P1, "mine", "app.apk").await, b"0123456789");
}

#[tokio::test]
async fn hostile_keys_never_leave_the_bucket() {
    let (dir, store) = open(|_| {});
    store.create_bucket(P1, "u1", "safe").await.unwrap();
    let long = format!("{}/../{}", "a".repeat(500), "b".repeat(519));
    let keys = [
        "../x",
        "/abs",
        "a/../../b",
        "..",
        ".cph-bucket.json",
        "../../../../etc/passwd",
        "a\0b",
        long.as_str(),
    ];
    for k in keys {
        put(&store, P1, "safe", k, k.as_bytes()).await.unwrap();
    }
    // Every file is either bucket metadata or below the bucket's object directory.
    let objects = store.root().join("safe/objects");
    let mut files = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    let meta = store.root().join("safe/.cph-bucket.json");
    for f in &files {
        assert!(
            f.starts_with(&objects) || *f == meta,
            "{} outside the object directory",
            f.display()
        );
    }
    assert_eq!(files.len(), keys.len() + 1);
    for k in keys {
        assert_eq!(read_all(&store, P1, "safe", k).await, k.as_bytes());
    }
    let page = store
        .list(
            P1,
            "safe",
            &ListRequest {
                max_keys: 1000,
                ..ListRequest::default()
            },
        )
        .await
        .unwrap();
    let listed: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    let mut want: Vec<&str> = keys.to_vec();
    want.sort();
    assert_eq!(listed, want);
    // Deleting the long key removes the directories it needed.
    store.delete(P1, "safe", &long).await.unwrap();
    for k in keys.iter().filter(|k| **k != long) {
        store.delete(P1, "safe", k).await.unwrap();
    }
    assert_eq!(std::fs::read_dir(&objects).unwrap().count(), 0);
    store.delete_bucket(P1, "safe").await.unwrap();
}

/// The listing S3 specifies, computed naively over a sorted key set.
fn model(
    keys: &BTreeSet<String>,
    prefix: &str,
    delimiter: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let mut objects = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    for k in keys.iter().filter(|k| k.starts_with(prefix)) {
        match delimiter.and_then(|d| {
            k[prefix.len()..]
                .find(d)
                .map(|i| k[..prefix.len() + i + d.len()].to_owned())
        }) {
            Some(cp) => {
                if prefixes.last() != Some(&cp) {
                    prefixes.push(cp);
                }
            }
            None => objects.push(k.clone()),
        }
    }
    (objects, prefixes)
}

#[tokio::test]
async fn paginated_listings_match_the_s3_model() {
    let (_dir, store) = open(|_| {});
    store.create_bucket(P1, "u1", "listing").await.unwrap();
    // Short and long keys (long ones live in nested directories), shared prefixes, keys that
    // sort around the delimiter, non-ASCII.
    let mut keys = BTreeSet::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let parts = ["a", "b", "a-", "a0", "dir", "x/y", "é", "z"];
    while keys.len() < 150 {
        let depth = 1 + next() % 4;
        let mut k = String::new();
        for i in 0..depth {
            if i > 0 {
                k.push('/');
            }
            k.push_str(parts[(next() % parts.len() as u64) as usize]);
        }
        if next() % 5 == 0 {
            k.push_str(&"L".repeat(90 + (next() % 120) as usize));
        }
        keys.insert(k);
    }
    for k in &keys {
        put(&store, P1, "listing", k, b"").await.unwrap();
    }
    for prefix in ["", "a", "a/", "dir/", "x/y/", "nothing"] {
        for delimiter in [None, Some("/"), Some("-")] {
            let (want_objects, want_prefixes) = model(&keys, prefix, delimiter);
            for page_size in [1usize, 2, 7, 1000] {
                let mut objects = Vec::new();
                let mut prefixes = Vec::new();
                let mut start_after = None;
                for _ in 0..1000 {
                    let page = store
                        .list(
                            P1,
                            "listing",
                            &ListRequest {
                                prefix: prefix.to_owned(),
                                delimiter: delimiter.map(str::to_owned),
                                start_after: start_after.clone(),
                                max_keys: page_size,
                            },
                        )
                        .await
                        .unwrap();
                    assert!(page.objects.len() + page.common_prefixes.len() <= page_size);
                    objects.extend(page.objects.into_iter().map(|o| o.key));
                    prefixes.extend(page.common_prefixes);
                    if !page.is_truncated {
                        break;
                    }
                    start_after = page.next_start_after;
                    assert!(start_after.is_some());
                }
                let ctx = format!("prefix {prefix:?} delimiter {delimiter:?} page {page_size}");
                assert_eq!(objects, want_objects, "{ctx}");
                assert_eq!(prefixes, want_prefixes, "{ctx}");
            }
        }
    }
}

#[tokio::test]
async fn upload_listings_page_by_key_and_upload_id() {
    let (_dir, store) = open(|_| {});
    store.create_bucket(P1, "u1", "uploads").await.unwrap();
    store.create_bucket(P2, "u2", "theirs").await.unwrap();
    // Several uploads of some keys (started in order), keys under "dir/", and keys around the
    // delimiter.
    let keys = [
        "a", "a", "a", "b", "dir/x", "dir/x", "dir/y", "dir-z", "e/f/g", "z",
    ];
    let mut all: Vec<(String, String)> = Vec::new();
    for k in keys {
        let id = store
            .create_upload(P1, "u1", "uploads", k, ObjectAttrs::default())
            .await
            .unwrap();
        all.push((k.to_owned(), id));
        // Upload ids start with the start time in milliseconds.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // Ids of one key sort in the order the uploads were started.
    let mut sorted = all.clone();
    sorted.sort();
    let by_start: Vec<_> = {
        let mut v = all.clone();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(sorted, by_start);

    for prefix in ["", "a", "dir/", "dir", "nothing"] {
        for delimiter in [None, Some("/")] {
            let mut want_uploads = Vec::new();
            let mut want_prefixes: Vec<String> = Vec::new();
            for (k, id) in sorted.iter().filter(|(k, _)| k.starts_with(prefix)) {
                match delimiter.and_then(|d| {
                    k[prefix.len()..]
                        .find(d)
                        .map(|i| k[..prefix.len() + i + d.len()].to_owned())
                }) {
                    Some(cp) => {
                        if !want_prefixes.contains(&cp) {
                            want_prefixes.push(cp);
                        }
                    }
                    None => want_uploads.push((k.clone(), id.clone())),
                }
            }
            for page_size in [1usize, 2, 3, 1000] {
                let mut req = cph_s3::UploadsRequest {
                    prefix: prefix.to_owned(),
                    delimiter: delimiter.map(str::to_owned),
                    max_uploads: page_size,
                    ..Default::default()
                };
                let (mut uploads, mut prefixes) = (Vec::new(), Vec::new());
                for _ in 0..100 {
                    let page = store.list_uploads_page(P1, "uploads", &req).await.unwrap();
                    assert!(page.uploads.len() + page.common_prefixes.len() <= page_size);
                    uploads.extend(page.uploads.into_iter().map(|u| (u.key, u.upload_id)));
                    prefixes.extend(page.common_prefixes);
                    if !page.is_truncated {
                        assert!(page.next_key_marker.is_none());
                        break;
                    }
                    req.key_marker = page.next_key_marker;
                    req.upload_id_marker = page.next_upload_id_marker;
                    assert!(req.key_marker.is_some());
                }
                let ctx = format!("prefix {prefix:?} delimiter {delimiter:?} page {page_size}");
                assert_eq!(uploads, want_uploads, "{ctx}");
                assert_eq!(prefixes, want_prefixes, "{ctx}");
            }
        }
    }
    // A key marker alone skips every upload of that key; with an upload-id marker, the later
    // uploads of the key follow.
    let req = cph_s3::UploadsRequest {
        key_marker: Some("a".into()),
        max_uploads: 1000,
        ..Default::default()
    };
    let page = store.list_uploads_page(P1, "uploads", &req).await.unwrap();
    assert_eq!(page.uploads[0].key, "b");
    let req = cph_s3::UploadsRequest {
        key_marker: Some("a".into()),
        upload_id_marker: Some(sorted[0].1.clone()),
        max_uploads: 1000,
        ..Default::default()
    };
    let page = store.list_uploads_page(P1, "uploads", &req).await.unwrap();
    let got: Vec<_> = page.uploads.iter().map(|u| u.upload_id.clone()).collect();
    assert_eq!(got[..2], [sorted[1].1.clone(), sorted[2].1.clone()]);
    // Completed and aborted uploads leave the listing; another project's bucket is refused.
    store
        .abort_upload(P1, "uploads", "b", &sorted[3].1)
        .await
        .unwrap();
    let all_now = store.list_uploads(P1, "uploads").await.unwrap();
    assert_eq!(all_now.len(), keys.len() - 1);
    assert!(all_now.iter().all(|u| u.key != "b"));
    assert!(matches!(
        store
            .list_uploads_page(P2, "uploads", &cph_s3::UploadsRequest::default())
            .await,
        Err(ObjError::AccessDenied)
    ));
}

#[tokio::test]
async fn multipart_uploads_follow_s3_rules() {
    let (_dir, store) = open(|c| {
        c.min_part_bytes = 1024;
        c.max_object_bytes = 10 * 1024;
    });
    store.create_bucket(P1, "u1", "parts").await.unwrap();
    let id = store
        .create_upload(P1, "u1", "parts", "obj", ObjectAttrs::default())
        .await
        .unwrap();
    let up = |n: i32, data: Vec<u8>| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .upload_part(
                    P1,
                    "parts",
                    "obj",
                    &id,
                    n,
                    PutChecks::default(),
                    body(vec![data]),
                )
                .await
        }
    };
    let p1 = up(1, vec![1; 2048]).await.unwrap();
    let p2 = up(2, vec![2; 100]).await.unwrap();
    let p3 = up(3, vec![3; 10]).await.unwrap();
    assert!(matches!(
        up(0, vec![0]).await,
        Err(ObjError::InvalidArgument(_))
    ));
    assert!(matches!(
        up(10_001, vec![0]).await,
        Err(ObjError::InvalidArgument(_))
    ));
    let other = store
        .upload_part(
            P1,
            "parts",
            "another-key",
            &id,
            1,
            PutChecks::default(),
            body(vec![vec![0]]),
        )
        .await;
    assert!(matches!(other, Err(ObjError::NoSuchUpload)), "{other:?}");
    let foreign = store
        .upload_part(
            P2,
            "parts",
            "obj",
            &id,
            1,
            PutChecks::default(),
            body(vec![vec![0]]),
        )
        .await;
    assert!(
        matches!(foreign, Err(ObjError::AccessDenied)),
        "{foreign:?}"
    );

    let page = store
        .list_parts(P1, "parts", "obj", &id, None, 2)
        .await
        .unwrap();
    assert_eq!(
        page.parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(page.is_truncated);
    let page = store
        .list_parts(P1, "parts", "obj", &id, page.next_marker, 2)
        .await
        .unwrap();
    assert_eq!(
        page.parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [3]
    );
    assert!(!page.is_truncated);

    let complete = |parts: Vec<(i32, String)>| {
        let store = store.clone();
        let id = id.clone();
        async move { store.complete_upload(P1, "parts", "obj", &id, &parts).await }
    };
    // Part 2 (100 bytes) is below the minimum unless it is the last.
    let r = complete(vec![
        (1, p1.etag.clone()),
        (2, p2.etag.clone()),
        (3, p3.etag.clone()),
    ])
    .await;
    assert!(matches!(r, Err(ObjError::EntityTooSmall(2))), "{r:?}");
    let r = complete(vec![(2, p2.etag.clone()), (1, p1.etag.clone())]).await;
    assert!(matches!(r, Err(ObjError::InvalidPartOrder)), "{r:?}");
    let r = complete(vec![(1, "0".repeat(32)), (2, p2.etag.clone())]).await;
    assert!(matches!(r, Err(ObjError::InvalidPart(1))), "{r:?}");
    let r = complete(vec![(1, p1.etag.clone()), (4, p3.etag.clone())]).await;
    assert!(matches!(r, Err(ObjError::InvalidPart(4))), "{r:?}");
    let meta = complete(vec![(1, format!("\"{}\"", p1.etag)), (2, p2.etag.clone())])
        .await
        .unwrap();
    let mut md5s = Md5::new();
    md5s.update(Md5::digest(vec![1u8; 2048]));
    md5s.update(Md5::digest(vec![2u8; 100]));
    assert_eq!(meta.etag, format!("{}-2", hex::encode(md5s.finalize())));
    assert_eq!(meta.parts_count, Some(2));
    let mut want = vec![1u8; 2048];
    want.extend(vec![2u8; 100]);
    assert_eq!(read_all(&store, P1, "parts", "obj").await, want);
    // The upload is gone, with its unused part.
    assert!(matches!(
        store.list_parts(P1, "parts", "obj", &id, None, 10).await,
        Err(ObjError::NoSuchUpload)
    ));
    assert!(matches!(
        complete(vec![(1, p1.etag.clone())]).await,
        Err(ObjError::NoSuchUpload)
    ));

    // The assembled object may not exceed the object limit.
    let id2 = store
        .create_upload(P1, "parts", "parts", "big", ObjectAttrs::default())
        .await
        .unwrap();
    let mut listed = Vec::new();
    for n in 1..=3 {
        let p = store
            .upload_part(
                P1,
                "parts",
                "big",
                &id2,
                n,
                PutChecks::default(),
                body(vec![vec![n as u8; 4096]]),
            )
            .await
            .unwrap();
        listed.push((n, p.etag));
    }
    let r = store
        .complete_upload(P1, "parts", "big", &id2, &listed)
        .await;
    assert!(matches!(r, Err(ObjError::EntityTooLarge(_))), "{r:?}");
    assert_eq!(store.list_uploads(P1, "parts").await.unwrap().len(), 1);
    store.abort_upload(P1, "parts", "big", &id2).await.unwrap();
    assert!(store.list_uploads(P1, "parts").await.unwrap().is_empty());
    assert!(matches!(
        store.abort_upload(P1, "parts", "big", &id2).await,
        Err(ObjError::NoSuchUpload)
    ));
    assert!(matches!(
        store.abort_upload(P1, "parts", "big", "../../x").await,
        Err(ObjError::NoSuchUpload)
    ));
    assert_eq!(tmp_entries(&store), 0);
}

#[tokio::test]
async fn buckets_are_global_names_owned_by_projects() {
    let (_dir, store) = open(|c| c.max_buckets_per_project = 2);
    store.create_bucket(P1, "u1", "shared-name").await.unwrap();
    assert!(matches!(
        store.create_bucket(P1, "u1", "shared-name").await,
        Err(ObjError::BucketAlreadyOwnedByYou)
    ));
    assert!(matches!(
        store.create_bucket(P2, "u2", "shared-name").await,
        Err(ObjError::BucketAlreadyExists)
    ));
    assert!(matches!(
        store.create_bucket(P1, "u1", "Bad").await,
        Err(ObjError::InvalidBucketName(_))
    ));
    store.create_bucket(P1, "u1", "second").await.unwrap();
    assert!(matches!(
        store.create_bucket(P1, "u1", "third").await,
        Err(ObjError::TooManyBuckets(2))
    ));
    store.create_bucket(P2, "u2", "theirs").await.unwrap();
    let names = |v: Vec<cph_s3::BucketInfo>| v.into_iter().map(|b| b.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_buckets(P1).await.unwrap()),
        ["second", "shared-name"]
    );
    assert_eq!(names(store.list_buckets(P2).await.unwrap()), ["theirs"]);
    assert!(matches!(
        store.head_bucket(P2, "shared-name").await,
        Err(ObjError::AccessDenied)
    ));
    assert!(matches!(
        store.delete_bucket(P2, "shared-name").await,
        Err(ObjError::AccessDenied)
    ));

    put(&store, P1, "shared-name", "k", b"v").await.unwrap();
    assert!(matches!(
        store.delete_bucket(P1, "shared-name").await,
        Err(ObjError::BucketNotEmpty)
    ));
    store.delete(P1, "shared-name", "k").await.unwrap();
    store.delete(P1, "shared-name", "k").await.unwrap();
    store.delete_bucket(P1, "shared-name").await.unwrap();
    assert!(matches!(
        store.head_bucket(P1, "shared-name").await,
        Err(ObjError::NoSuchBucket)
    ));
    // Once deleted, the name is free for another project.
    store.create_bucket(P2, "u2", "shared-name").await.unwrap();
    assert!(matches!(
        store.get(P1, "shared-name", "k").await,
        Err(ObjError::AccessDenied)
    ));

    // Copies stay within the caller's project.
    put(&store, P2, "theirs", "src", b"data").await.unwrap();
    let r = store.copy(P1, "theirs", "src", "second", "dst", None).await;
    assert!(matches!(r, Err(ObjError::AccessDenied)), "{r:?}");
    let meta = store
        .copy(P2, "theirs", "src", "shared-name", "dst", None)
        .await
        .unwrap();
    assert_eq!(meta.etag, hex::encode(Md5::digest(b"data")));
    assert_eq!(read_all(&store, P2, "shared-name", "dst").await, b"data");
}
