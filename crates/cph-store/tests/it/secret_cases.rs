//! Secret keys at rest (`cph_store::secrets`, `iam::*access_key*`, `iam::seal_stored_secrets`).

use super::*;
use cph_store::StoreError;
use cph_store::iam::{self, AccessKey};
use cph_store::secrets::{MasterKey, Secret};
use sqlx::Row;

fn master(b: u8) -> MasterKey {
    MasterKey::from_bytes(&[b; 32]).unwrap()
}

async fn identity(store: &Store) {
    let mut tx = store.write().await.unwrap();
    iam::insert_domain(
        &mut tx,
        &iam::Domain {
            domain_id: "d".into(),
            name: "dom".into(),
            created_at: 1,
        },
    )
    .await
    .unwrap();
    iam::insert_user(
        &mut tx,
        &iam::User {
            user_id: "u".into(),
            domain_id: "d".into(),
            name: "alice".into(),
            password_hash: None,
            created_at: 1,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

fn key(ak: &str, sk: &str) -> AccessKey {
    AccessKey {
        access_key: ak.into(),
        user_id: "u".into(),
        secret_key: Secret::new(sk),
        description: String::new(),
        active: true,
        created_at: 1,
    }
}

async fn stored(store: &Store, ak: &str) -> String {
    let mut c = store.read().await.unwrap();
    sqlx::query("SELECT secret_key FROM access_keys WHERE access_key = $1")
        .bind(ak)
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .try_get::<String, _>(0)
        .unwrap()
}

/// Inserts rows the way earlier versions did: the secret in clear.
async fn insert_clear(store: &Store, keys: &[(String, String)]) {
    let mut tx = store.write().await.unwrap();
    for (ak, sk) in keys {
        sqlx::query(
            "INSERT INTO access_keys (access_key, user_id, secret_key, description, active, created_at) VALUES ($1, 'u', $2, '', 1, 1)",
        )
        .bind(ak)
        .bind(sk)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn secret_keys_are_stored_sealed_and_round_trip() {
    both(|store| async move {
        identity(&store).await;
        let m = master(1);
        let sk = "Zq8SECRETvalue0123456789abcdefghijklmnop";
        let mut tx = store.write().await.unwrap();
        iam::insert_access_key(&mut tx, &m, &key("AKONE", sk))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let raw = stored(&store, "AKONE").await;
        assert!(raw.starts_with("v1:"), "{raw}");
        assert!(!raw.contains(sk) && !raw.contains("SECRET"), "{raw}");
        let mut c = store.read().await.unwrap();
        let k = iam::access_key_by_id(&mut c, &m, "AKONE")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(k.secret_key.expose(), sk);
        assert!(!format!("{k:?}").contains(sk));
        assert!(
            iam::access_key_by_id(&mut c, &m, "NOPE")
                .await
                .unwrap()
                .is_none()
        );
        // Listing carries no secret at all.
        let listed = iam::access_keys_of(&mut c, "u").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!format!("{listed:?}").contains(sk));
        // Another master key does not open it.
        match iam::access_key_by_id(&mut c, &master(2), "AKONE").await {
            Err(StoreError::Undecryptable(ak)) => assert_eq!(ak, "AKONE"),
            other => panic!("expected Undecryptable, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn a_sealed_secret_copied_to_another_access_key_does_not_decrypt() {
    both(|store| async move {
        identity(&store).await;
        let m = master(3);
        let mut tx = store.write().await.unwrap();
        iam::insert_access_key(&mut tx, &m, &key("AKVICTIM", "victim-secret"))
            .await
            .unwrap();
        iam::insert_access_key(&mut tx, &m, &key("AKATTACKER", "attacker-secret"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let victim = stored(&store, "AKVICTIM").await;
        let mut tx = store.write().await.unwrap();
        sqlx::query("UPDATE access_keys SET secret_key = $1 WHERE access_key = 'AKATTACKER'")
            .bind(&victim)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        match iam::access_key_by_id(&mut c, &m, "AKATTACKER").await {
            Err(StoreError::Undecryptable(ak)) => assert_eq!(ak, "AKATTACKER"),
            other => panic!("expected Undecryptable, got {other:?}"),
        }
        // The original row still opens.
        let v = iam::access_key_by_id(&mut c, &m, "AKVICTIM")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.secret_key.expose(), "victim-secret");
        drop(c);
        // The start-up pass reports the copied row, but the key is right for the others.
        let r = iam::seal_stored_secrets(&store, &m).await.unwrap();
        assert_eq!((r.sealed, r.verified, r.undecryptable), (0, 1, 1));
        assert_eq!(r.undecryptable_keys, vec!["AKATTACKER".to_string()]);
        assert!(!r.wrong_master_key());
    })
    .await;
}

#[tokio::test]
async fn start_up_pass_seals_clear_rows_once_and_detects_a_wrong_master_key() {
    both(|store| async move {
        identity(&store).await;
        // More rows than one page of the pass.
        let legacy: Vec<(String, String)> = (0..1001)
            .map(|n| (format!("AKLEGACY{n:05}"), format!("legacy-secret-{n:05}")))
            .collect();
        insert_clear(&store, &legacy).await;
        let m = master(4);
        // A clear row still authenticates before the pass has run.
        let mut c = store.read().await.unwrap();
        let before = iam::access_key_by_id(&mut c, &m, "AKLEGACY00007")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(before.secret_key.expose(), "legacy-secret-00007");
        drop(c);

        let r = iam::seal_stored_secrets(&store, &m).await.unwrap();
        assert_eq!((r.sealed, r.verified, r.undecryptable), (1001, 0, 0));
        let mut c = store.read().await.unwrap();
        let leaked: i64 = sqlx::query(
            "SELECT COUNT(*) FROM access_keys WHERE secret_key LIKE '%legacy-secret%' OR secret_key NOT LIKE 'v1:%'",
        )
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
        assert_eq!(leaked, 0);
        for n in [0usize, 499, 500, 1000] {
            let (ak, sk) = &legacy[n];
            let k = iam::access_key_by_id(&mut c, &m, ak)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(k.secret_key.expose(), sk);
        }
        drop(c);
        let snapshot = stored(&store, "AKLEGACY00500").await;

        // Idempotent: a second pass seals nothing and changes nothing.
        let again = iam::seal_stored_secrets(&store, &m).await.unwrap();
        assert_eq!((again.sealed, again.verified, again.undecryptable), (0, 1001, 0));
        assert_eq!(stored(&store, "AKLEGACY00500").await, snapshot);

        // Another master key: nothing decrypts, nothing is rewritten.
        let wrong = iam::seal_stored_secrets(&store, &master(5)).await.unwrap();
        assert!(wrong.wrong_master_key());
        assert_eq!((wrong.sealed, wrong.verified, wrong.undecryptable), (0, 0, 1001));
        assert_eq!(wrong.undecryptable_keys.len(), 20);
        assert_eq!(stored(&store, "AKLEGACY00500").await, snapshot);

        // A clear row next to rows of another key: a wrong key seals nothing, the right one does.
        insert_clear(&store, &[("AKLATE".into(), "late-secret".into())]).await;
        let wrong = iam::seal_stored_secrets(&store, &master(5)).await.unwrap();
        assert!(wrong.wrong_master_key());
        assert_eq!(wrong.sealed, 0);
        assert_eq!(stored(&store, "AKLATE").await, "late-secret");
        let right = iam::seal_stored_secrets(&store, &m).await.unwrap();
        assert_eq!((right.sealed, right.verified), (1, 1001));
        let mut c = store.read().await.unwrap();
        let late = iam::access_key_by_id(&mut c, &m, "AKLATE")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(late.secret_key.expose(), "late-secret");
    })
    .await;
}

/// On SQLite, sealing legacy rows leaves no clear secret in the database file or its WAL.
#[tokio::test]
async fn sqlite_files_hold_no_clear_secret_after_the_pass() {
    let dir = std::env::temp_dir().join(format!(
        "cph-store-secrets-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("t.db");
    let url = format!("sqlite://{}", db.display());
    let secret = "PlainTextLegacySecretXYZ0123456789abcdef";
    {
        let store = Store::open(&url).await.unwrap();
        identity(&store).await;
        insert_clear(&store, &[("AKLEGACY".into(), secret.into())]).await;
        store.close().await;
    }
    let grep = |needle: &str| -> bool {
        ["t.db", "t.db-wal"].iter().any(|f| {
            std::fs::read(dir.join(f))
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
    };
    assert!(grep(secret), "the legacy row holds the secret in clear");
    let store = Store::open(&url).await.unwrap();
    let m = master(6);
    let r = iam::seal_stored_secrets(&store, &m).await.unwrap();
    assert_eq!(r.sealed, 1);
    // While the store is open (WAL present) and after it is closed.
    assert!(
        !grep(secret),
        "a clear secret is left in the database files"
    );
    let mut tx = store.write().await.unwrap();
    let fresh = "FreshlyIssuedSecretABCDEFGHIJ0123456789";
    iam::insert_access_key(&mut tx, &m, &key("AKFRESH", fresh))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!grep(fresh));
    store.close().await;
    assert!(!grep(secret) && !grep(fresh));
    let _ = std::fs::remove_dir_all(&dir);
}
