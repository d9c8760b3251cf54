//! Tag queries of ListProjectTags, ListResourceInstances and the tag actions.

use super::*;
use cph_store::tags::InstanceFilter;
use cph_store::{servers, tags};

const RT: &str = "cph-server";

fn ids(v: &[(String, String)]) -> Vec<&str> {
    v.iter().map(|(id, _)| id.as_str()).collect()
}

fn filter(tags: &[(&str, &[&str])]) -> InstanceFilter {
    InstanceFilter {
        tags: tags
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn tag_queries_filter_page_and_isolate() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        for (n, id) in ["s1", "s2", "s3", "s4"].iter().enumerate() {
            servers::insert(&mut tx, &server("p", id, 1000 + n as i64))
                .await
                .unwrap();
        }
        servers::insert(&mut tx, &server("q", "x1", 5000))
            .await
            .unwrap();
        for (rid, k, v) in [
            ("s1", "env", "dev"),
            ("s1", "team", "a"),
            ("s2", "env", "prod"),
            ("s2", "team", "a"),
            ("s3", "env", "test"),
        ] {
            tags::upsert(&mut tx, "p", RT, rid, k, v).await.unwrap();
        }
        tags::upsert(&mut tx, "q", RT, "x1", "env", "dev")
            .await
            .unwrap();
        // A tag whose server is gone is not a project tag.
        tags::upsert(&mut tx, "p", RT, "gone", "old", "1")
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut c = store.read().await.unwrap();
        let pairs = tags::pairs_of_project_servers(&mut c, "p", RT)
            .await
            .unwrap();
        let want: Vec<(String, String)> = [
            ("env", "dev"),
            ("env", "prod"),
            ("env", "test"),
            ("team", "a"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs, want);
        assert_eq!(
            tags::pairs_of_project_servers(&mut c, "q", RT)
                .await
                .unwrap()
                .len(),
            1
        );

        let page = Some((0, 100));
        // No condition: every server of the project, newest first; other projects excluded.
        let (all, total) = tags::find_servers(&mut c, "p", RT, &InstanceFilter::default(), page)
            .await
            .unwrap();
        assert_eq!(total, 4);
        assert_eq!(ids(&all), ["s4", "s3", "s2", "s1"]);
        assert_eq!(all[0].1, "srv-s4");
        // Values of one key are OR-ed.
        let (r, n) =
            tags::find_servers(&mut c, "p", RT, &filter(&[("env", &["dev", "prod"])]), page)
                .await
                .unwrap();
        assert_eq!((ids(&r), n), (vec!["s2", "s1"], 2));
        // Keys are AND-ed; no values means any value.
        let (r, _) = tags::find_servers(
            &mut c,
            "p",
            RT,
            &filter(&[("env", &[]), ("team", &["a"])]),
            page,
        )
        .await
        .unwrap();
        assert_eq!(ids(&r), ["s2", "s1"]);
        let (r, _) = tags::find_servers(
            &mut c,
            "p",
            RT,
            &filter(&[("env", &["test"]), ("team", &[])]),
            page,
        )
        .await
        .unwrap();
        assert!(r.is_empty());
        // Without any tag.
        let wat = InstanceFilter {
            without_any_tag: true,
            ..Default::default()
        };
        let (r, n) = tags::find_servers(&mut c, "p", RT, &wat, page)
            .await
            .unwrap();
        assert_eq!((ids(&r), n), (vec!["s4"], 1));
        // Exact name match, combined with tags.
        let by_name = InstanceFilter {
            resource_name: Some("srv-s2".into()),
            ..filter(&[("env", &[])])
        };
        let (r, _) = tags::find_servers(&mut c, "p", RT, &by_name, page)
            .await
            .unwrap();
        assert_eq!(ids(&r), ["s2"]);
        let partial = InstanceFilter {
            resource_name: Some("srv-s".into()),
            ..Default::default()
        };
        assert_eq!(
            tags::find_servers(&mut c, "p", RT, &partial, page)
                .await
                .unwrap()
                .1,
            0
        );
        // Paging and count-only.
        let (r, n) = tags::find_servers(&mut c, "p", RT, &InstanceFilter::default(), Some((1, 2)))
            .await
            .unwrap();
        assert_eq!((ids(&r), n), (vec!["s3", "s2"], 4));
        let (r, n) = tags::find_servers(&mut c, "p", RT, &filter(&[("team", &[])]), None)
            .await
            .unwrap();
        assert!(r.is_empty());
        assert_eq!(n, 2);
        // Tags of several resources at once.
        let rows = tags::of_resources(&mut c, RT, &["s1".into(), "s3".into()])
            .await
            .unwrap();
        let got: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|t| (t.resource_id.as_str(), t.key.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("s1", "env", "dev"),
                ("s1", "team", "a"),
                ("s3", "env", "test")
            ]
        );
        // Existence is per project.
        assert!(tags::server_exists(&mut c, "p", "s1").await.unwrap());
        assert!(!tags::server_exists(&mut c, "q", "s1").await.unwrap());
        drop(c);

        let mut tx = store.write().await.unwrap();
        assert!(tags::lock_server(&mut tx, "p", "s1").await.unwrap());
        assert!(!tags::lock_server(&mut tx, "p", "x1").await.unwrap());
        assert!(!tags::lock_server(&mut tx, "p", "nope").await.unwrap());
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        // The lock changes nothing.
        assert_eq!(
            servers::get(&mut c, "p", "s1").await.unwrap().unwrap(),
            server("p", "s1", 1000)
        );
    })
    .await;
}
