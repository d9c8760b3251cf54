//! Phone connections (`cph_store::connect`): the shared ticket key and single-use sessions.

use super::*;
use cph_store::connect;

#[tokio::test]
async fn the_first_stored_key_wins() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        let k1 = connect::key_get_or_insert(&mut tx, "k", "aa", 1)
            .await
            .unwrap();
        let k2 = connect::key_get_or_insert(&mut tx, "k", "bb", 2)
            .await
            .unwrap();
        let other = connect::key_get_or_insert(&mut tx, "other", "cc", 3)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            (k1.as_str(), k2.as_str(), other.as_str()),
            ("aa", "aa", "cc")
        );
    })
    .await;
}

#[tokio::test]
async fn a_session_is_claimed_once_until_it_expires() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        assert!(
            connect::claim_session(&mut tx, "s1", 1_000, 500)
                .await
                .unwrap()
        );
        assert!(
            !connect::claim_session(&mut tx, "s1", 1_000, 600)
                .await
                .unwrap()
        );
        assert!(
            connect::claim_session(&mut tx, "s2", 2_000, 600)
                .await
                .unwrap()
        );
        // Once s1's ticket has expired its record is pruned (the ticket itself is refused by
        // then); s2's is kept.
        assert!(
            connect::claim_session(&mut tx, "s3", 3_000, 1_500)
                .await
                .unwrap()
        );
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM connect_sessions")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert!(
            !connect::claim_session(&mut tx, "s2", 2_000, 1_600)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
    })
    .await;
}
