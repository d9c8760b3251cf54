//! The access audit trail (`cph_store::audit`).

use super::*;
use cph_store::audit::{self, AuditFilter, AuditRow};

fn event(n: i64, project: &str, server: &str, accepted: bool) -> AuditRow {
    AuditRow {
        event_id: format!("{n:020}"),
        at_ms: 1_000 + n / 2,
        project_id: project.into(),
        server_id: server.into(),
        phone_id: String::new(),
        kind: if accepted { "ssh_login" } else { "ssh_refused" }.into(),
        peer: "127.0.0.1:5000".into(),
        user_name: "root".into(),
        key_fingerprint: format!("SHA256:{n}"),
        accepted,
        detail: format!("event {n}"),
    }
}

fn ids(rows: &[AuditRow]) -> Vec<i64> {
    rows.iter().map(|r| r.event_id.parse().unwrap()).collect()
}

#[tokio::test]
async fn audit_events_are_listed_newest_first_filtered_and_pruned() {
    both(|store| async move {
        let rows: Vec<AuditRow> = (0..45)
            .map(|n| {
                event(
                    n,
                    if n % 3 == 0 { "q" } else { "p" },
                    if n % 2 == 0 { "s1" } else { "s2" },
                    n % 5 != 0,
                )
            })
            .collect();
        let mut tx = store.write().await.unwrap();
        audit::insert_many(&mut tx, &rows).await.unwrap();
        tx.commit().await.unwrap();

        let mut c = store.read().await.unwrap();
        assert_eq!(audit::count(&mut c).await.unwrap(), 45);
        let all = audit::list(&mut c, &AuditFilter::default(), 1000)
            .await
            .unwrap();
        assert_eq!(ids(&all), (0..45).rev().collect::<Vec<_>>());
        assert_eq!(all[0], rows[44]);

        let p = AuditFilter {
            project_id: Some("p"),
            ..Default::default()
        };
        let page = audit::list(&mut c, &p, 5).await.unwrap();
        assert_eq!(ids(&page), vec![44, 43, 41, 40, 38]);

        let f = AuditFilter {
            project_id: Some("p"),
            server_id: Some("s2"),
            accepted: Some(false),
            since_ms: Some(1_005),
        };
        // p: n % 3 != 0; s2: odd; refused: n % 5 == 0; at_ms >= 1005: n >= 10
        let want: Vec<i64> = (10..45)
            .rev()
            .filter(|n| n % 3 != 0 && n % 2 == 1 && n % 5 == 0)
            .collect();
        assert_eq!(ids(&audit::list(&mut c, &f, 100).await.unwrap()), want);
        drop(c);

        let mut tx = store.write().await.unwrap();
        assert_eq!(audit::prune_before(&mut tx, 1_010).await.unwrap(), 20);
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        assert_eq!(audit::count(&mut c).await.unwrap(), 25);
        let left = audit::list(&mut c, &AuditFilter::default(), 1000)
            .await
            .unwrap();
        assert_eq!(*ids(&left).last().unwrap(), 20);
    })
    .await;
}

#[tokio::test]
async fn every_server_of_every_project_is_walked_in_id_order() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        for (p, id) in [
            ("p", "s3"),
            ("q", "s1"),
            ("p", "s2"),
            ("r", "s5"),
            ("q", "s4"),
        ] {
            cph_store::servers::insert(&mut tx, &server(p, id, 1))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let page = cph_store::servers::ids_after(&mut c, &after, 2)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2);
            after = page.last().unwrap().0.clone();
            seen.extend(page);
        }
        let want: Vec<(String, String)> = [
            ("s1", "q"),
            ("s2", "p"),
            ("s3", "p"),
            ("s4", "q"),
            ("s5", "r"),
        ]
        .iter()
        .map(|(s, p)| (s.to_string(), p.to_string()))
        .collect();
        assert_eq!(seen, want);
    })
    .await;
}
