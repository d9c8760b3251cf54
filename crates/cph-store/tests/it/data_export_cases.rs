//! Registered data exports (`cph_store::data_exports`).

use super::*;
use cph_store::data_exports::{self, DataExportRow};
use std::collections::HashSet;

fn export(project: &str, bucket: &str, path: &str, job: &str, at: i64) -> DataExportRow {
    DataExportRow {
        project_id: project.into(),
        bucket_name: bucket.into(),
        object_path: path.into(),
        phone_id: "phone-1".into(),
        job_id: job.into(),
        exported_at: at,
    }
}

fn pair(b: &str, p: &str) -> (String, String) {
    (b.to_string(), p.to_string())
}

#[tokio::test]
async fn exports_are_registered_per_project_bucket_and_path() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        data_exports::register(&mut tx, &export("p", "b1", "d/a.tar", "j1", 10))
            .await
            .unwrap();
        data_exports::register(&mut tx, &export("p", "b2", "d/b.tar", "j2", 11))
            .await
            .unwrap();
        data_exports::register(&mut tx, &export("q", "b1", "d/c.tar", "j3", 12))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut c = store.read().await.unwrap();
        let asked = [
            pair("b1", "d/a.tar"),
            pair("b1", "d/a.tar"),
            pair("b2", "d/b.tar"),
            // Right path, other bucket; other project's object; never exported.
            pair("b2", "d/a.tar"),
            pair("b1", "d/c.tar"),
            pair("b1", "d/x.tar"),
        ];
        let got = data_exports::registered(&mut c, "p", &asked).await.unwrap();
        assert_eq!(
            got,
            HashSet::from([pair("b1", "d/a.tar"), pair("b2", "d/b.tar")])
        );
        let got = data_exports::registered(&mut c, "q", &asked).await.unwrap();
        assert_eq!(got, HashSet::from([pair("b1", "d/c.tar")]));
        assert!(
            data_exports::registered(&mut c, "p", &[])
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            data_exports::get(&mut c, "p", "b1", "d/a.tar")
                .await
                .unwrap(),
            Some(export("p", "b1", "d/a.tar", "j1", 10))
        );
        assert_eq!(
            data_exports::get(&mut c, "q", "b1", "d/a.tar")
                .await
                .unwrap(),
            None
        );
        drop(c);

        // A later export to the same path replaces the registration.
        let mut tx = store.write().await.unwrap();
        data_exports::register(&mut tx, &export("p", "b1", "d/a.tar", "j9", 20))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        assert_eq!(
            data_exports::get(&mut c, "p", "b1", "d/a.tar")
                .await
                .unwrap(),
            Some(export("p", "b1", "d/a.tar", "j9", 20))
        );
    })
    .await;
}

#[tokio::test]
async fn many_paths_are_looked_up_in_chunks() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        for n in (0..600).step_by(2) {
            data_exports::register(&mut tx, &export("p", "b", &format!("o/{n}.tar"), "j", n))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let asked: Vec<(String, String)> =
            (0..600).map(|n| pair("b", &format!("o/{n}.tar"))).collect();
        let mut c = store.read().await.unwrap();
        let got = data_exports::registered(&mut c, "p", &asked).await.unwrap();
        let want: HashSet<(String, String)> = (0..600)
            .step_by(2)
            .map(|n| pair("b", &format!("o/{n}.tar")))
            .collect();
        assert_eq!(got, want);
    })
    .await;
}
