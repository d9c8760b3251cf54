use super::*;
use cph_store::{iam, jobs, network, phones, servers, tags};

#[tokio::test]
async fn migrations_are_idempotent() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let f = Fresh::new(backend).await;
        let mut c = f.store.read().await.unwrap();
        let n = phones::count_all(&mut c).await.unwrap();
        assert_eq!(n, 0);
        drop(c);
        f.finish().await;
    }
}

#[tokio::test]
async fn servers_round_trip_filter_and_page() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        for (n, id) in ["a1", "a2", "a3"].iter().enumerate() {
            servers::insert(&mut tx, &server("p1", id, 1000 + n as i64))
                .await
                .unwrap();
        }
        servers::insert(&mut tx, &server("p2", "b1", 5000))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        let got = servers::get(&mut c, "p1", "a2").await.unwrap().unwrap();
        assert_eq!(got, server("p1", "a2", 1001));
        // Another project's server is invisible.
        assert!(servers::get(&mut c, "p2", "a2").await.unwrap().is_none());
        let (page, total) = servers::list(&mut c, "p1", &Default::default(), 0, 2)
            .await
            .unwrap();
        assert_eq!(total, 3);
        assert_eq!(
            page.iter()
                .map(|s| s.server_id.as_str())
                .collect::<Vec<_>>(),
            ["a3", "a2"]
        );
        let (page, _) = servers::list(&mut c, "p1", &Default::default(), 2, 2)
            .await
            .unwrap();
        assert_eq!(page.len(), 1);
        let f = servers::ServerFilter {
            server_name_like: Some("rv-a".into()),
            ..Default::default()
        };
        assert_eq!(servers::list(&mut c, "p1", &f, 0, 10).await.unwrap().1, 3);
        // LIKE wildcards in the filter are literal.
        let f = servers::ServerFilter {
            server_name_like: Some("%".into()),
            ..Default::default()
        };
        assert_eq!(servers::list(&mut c, "p1", &f, 0, 10).await.unwrap().1, 0);
        assert_eq!(
            servers::hosts_in_use(&mut c, "physical.rx1.xlarge")
                .await
                .unwrap(),
            4
        );
    })
    .await;
}

#[tokio::test]
async fn phones_list_filter_rename_and_status() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        servers::insert(&mut tx, &server("p1", "s1", 1000))
            .await
            .unwrap();
        let ps: Vec<PhoneRow> = (0..450)
            .map(|i| phone("p1", "s1", &format!("ph{i:04}"), i, 1000))
            .collect();
        phones::insert_many(&mut tx, &ps).await.unwrap();
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        let (page, total) = phones::list(&mut c, "p1", &Default::default(), 0, 200)
            .await
            .unwrap();
        assert_eq!(total, 450);
        assert_eq!(page.len(), 200);
        assert_eq!(page[0].slot, 0);
        assert_eq!(page[0].order_id, "CS1", "server fields are joined");
        let f = phones::PhoneFilter {
            status: Some(8),
            ..Default::default()
        };
        assert_eq!(phones::list(&mut c, "p1", &f, 0, 10).await.unwrap().1, 0);
        drop(c);
        let mut tx = store.write().await.unwrap();
        phones::set_status(&mut tx, "ph0001", 8, 2000)
            .await
            .unwrap();
        phones::rename(&mut tx, "ph0002", "renamed", 2000)
            .await
            .unwrap();
        assert!(
            phones::name_taken(&mut tx, "s1", "renamed", "ph0003")
                .await
                .unwrap()
        );
        assert!(
            !phones::name_taken(&mut tx, "s1", "renamed", "ph0002")
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        let f = phones::PhoneFilter {
            status: Some(8),
            ..Default::default()
        };
        let (got, n) = phones::list(&mut c, "p1", &f, 0, 10).await.unwrap();
        assert_eq!((n, got[0].phone_id.as_str()), (1, "ph0001"));
        let many = phones::get_many(
            &mut c,
            "p1",
            &["ph0001".into(), "nope".into(), "ph0449".into()],
        )
        .await
        .unwrap();
        assert_eq!(many.len(), 2);
        assert!(
            phones::get_many(&mut c, "p2", &["ph0001".into()])
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(phones::count_of_project(&mut c, "p1").await.unwrap(), 450);
        assert_eq!(phones::count_of_project(&mut c, "p2").await.unwrap(), 0);
        // Pages come back in order: newest first, then by server and slot.
        let (page, _) = phones::list(&mut c, "p1", &Default::default(), 198, 5)
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|p| p.slot).collect::<Vec<_>>(),
            [198, 199, 200, 201, 202]
        );
        drop(c);
        // Deleting a server's phones keeps the project's count (the unfiltered total) true.
        let mut tx = store.write().await.unwrap();
        assert_eq!(phones::delete_of_server(&mut tx, "s1").await.unwrap(), 450);
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        assert_eq!(phones::count_of_project(&mut c, "p1").await.unwrap(), 0);
        let (page, total) = phones::list(&mut c, "p1", &Default::default(), 0, 10)
            .await
            .unwrap();
        assert_eq!((page.len(), total), (0, 0));
    })
    .await;
}

#[tokio::test]
async fn writes_roll_back_on_drop() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        servers::insert(&mut tx, &server("p1", "gone", 1))
            .await
            .unwrap();
        drop(tx);
        let mut c = store.read().await.unwrap();
        assert!(servers::get(&mut c, "p1", "gone").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn claims_one_job_per_lock_in_order() {
    both(|store| async move {
        let backend = store.backend();
        let mut tx = store.write().await.unwrap();
        jobs::insert(
            &mut tx,
            &[
                job("p1", "r1", "j1", "phone:a"),
                job("p1", "r1", "j2", "phone:a"),
                job("p1", "r1", "j3", "phone:b"),
            ],
            100,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.write().await.unwrap();
        let got = jobs::claim(&mut tx, backend, "w1", 200, 10_000, 10)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            got.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
            ["j1", "j3"]
        );
        assert!(got.iter().all(|j| j.state == "running" && j.attempts == 1));

        // j2 waits for j1 (same lock).
        let mut tx = store.write().await.unwrap();
        assert!(
            jobs::claim(&mut tx, backend, "w1", 300, 10_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Only the owner may finish.
        assert!(!jobs::finish(&mut tx, "j1", "w2", &ok(), 400).await.unwrap());
        assert!(jobs::finish(&mut tx, "j1", "w1", &ok(), 400).await.unwrap());
        let next = jobs::claim(&mut tx, backend, "w1", 500, 10_000, 10)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].job_id, "j2");

        let mut c = store.read().await.unwrap();
        let j1 = jobs::get(&mut c, "p1", "j1").await.unwrap().unwrap();
        assert_eq!(
            (j1.status, j1.state.as_str(), j1.end_time),
            (2, "done", Some(400))
        );
        assert!(jobs::get(&mut c, "p2", "j1").await.unwrap().is_none());
        let (list, total) = jobs::list_by_requests(&mut c, "p1", &["r1".into()], 0, 2)
            .await
            .unwrap();
        assert_eq!(total, 3);
        assert_eq!(
            list.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
            ["j1", "j2"]
        );
    })
    .await;
}

#[tokio::test]
async fn lapsed_leases_requeue_then_exhaust() {
    both(|store| async move {
        let backend = store.backend();
        let mut tx = store.write().await.unwrap();
        jobs::insert(&mut tx, &[job("p1", "r", "j", "phone:x")], 0)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for attempt in 1..=2 {
            let mut tx = store.write().await.unwrap();
            let got = jobs::claim(&mut tx, backend, "dead", 10, 100, 10)
                .await
                .unwrap();
            assert_eq!(got.len(), 1, "attempt {attempt}");
            // The worker dies; its lease lapses at 100.
            let (requeued, exhausted) = jobs::requeue_expired(&mut tx, 50, 2).await.unwrap();
            assert_eq!((requeued, exhausted.len()), (0, 0), "lease still valid");
            let (requeued, exhausted) = jobs::requeue_expired(&mut tx, 150, 2).await.unwrap();
            tx.commit().await.unwrap();
            if attempt < 2 {
                assert_eq!((requeued, exhausted.len()), (1, 0));
            } else {
                assert_eq!((requeued, exhausted.len()), (0, 1));
                let mut tx = store.write().await.unwrap();
                assert!(
                    jobs::take_over(&mut tx, "j", "reaper", 1000, 150)
                        .await
                        .unwrap()
                );
                let failed = Outcome {
                    status: -1,
                    error_code: Some("CPS.0054".into()),
                    error_msg: Some("x".into()),
                    execute_msg: None,
                };
                assert!(
                    jobs::finish(&mut tx, "j", "reaper", &failed, 160)
                        .await
                        .unwrap()
                );
                tx.commit().await.unwrap();
            }
        }
        let mut c = store.read().await.unwrap();
        let j = jobs::get(&mut c, "p1", "j").await.unwrap().unwrap();
        assert_eq!((j.status, j.attempts), (-1, 2));
    })
    .await;
}

#[tokio::test]
async fn identities_and_grants() {
    both(|store| async move {
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
        iam::insert_access_key(
            &mut tx,
            &cph_store::secrets::MasterKey::from_bytes(&[9; 32]).unwrap(),
            &iam::AccessKey {
                access_key: "AK".into(),
                user_id: "u".into(),
                secret_key: "SK".into(),
                description: String::new(),
                active: true,
                created_at: 1,
            },
        )
        .await
        .unwrap();
        let g = iam::Grant {
            user_id: "u".into(),
            project_id: "p".into(),
            action: "cph:servers:list".into(),
        };
        iam::insert_grant(&mut tx, &g, 1).await.unwrap();
        iam::insert_grant(&mut tx, &g, 2).await.unwrap(); // idempotent
        tx.commit().await.unwrap();
        let mut tx = store.write().await.unwrap();
        // A duplicate user name in one domain violates the unique key.
        let dup = iam::insert_user(
            &mut tx,
            &iam::User {
                user_id: "u2".into(),
                domain_id: "d".into(),
                name: "alice".into(),
                password_hash: None,
                created_at: 1,
            },
        )
        .await
        .unwrap_err();
        assert!(dup.is_unique_violation());
        drop(tx);
        let mut c = store.read().await.unwrap();
        assert_eq!(
            iam::grants_for(&mut c, "u", "p").await.unwrap(),
            vec!["cph:servers:list".to_string()]
        );
        assert!(
            iam::grants_for(&mut c, "u", "other")
                .await
                .unwrap()
                .is_empty()
        );
        // Project and grants in one query: the project-specific and the domain-wide grants.
        drop(c);
        let mut tx = store.write().await.unwrap();
        iam::insert_project(
            &mut tx,
            &iam::Project {
                project_id: "p".into(),
                domain_id: "d".into(),
                name: "proj".into(),
                description: String::new(),
                created_at: 1,
            },
        )
        .await
        .unwrap();
        let wide = iam::Grant {
            user_id: "u".into(),
            project_id: "*".into(),
            action: "cph:jobs:*".into(),
        };
        iam::insert_grant(&mut tx, &wide, 1).await.unwrap();
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        let (p, mut grants) = iam::project_with_grants(&mut c, "u", "p")
            .await
            .unwrap()
            .unwrap();
        grants.sort();
        assert_eq!(
            (p.name.as_str(), grants),
            (
                "proj",
                vec!["cph:jobs:*".to_string(), "cph:servers:list".to_string()]
            )
        );
        let (_, none) = iam::project_with_grants(&mut c, "nobody", "p")
            .await
            .unwrap()
            .unwrap();
        assert!(none.is_empty());
        assert!(
            iam::project_with_grants(&mut c, "u", "missing")
                .await
                .unwrap()
                .is_none()
        );
        drop(c);
        let mut tx = store.write().await.unwrap();
        assert!(iam::revoke_access_key(&mut tx, "AK", 5).await.unwrap());
        assert!(!iam::revoke_access_key(&mut tx, "AK", 6).await.unwrap());
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        assert!(
            !iam::access_key_by_id(
                &mut c,
                &cph_store::secrets::MasterKey::from_bytes(&[9; 32]).unwrap(),
                "AK"
            )
            .await
            .unwrap()
            .unwrap()
            .active
        );
    })
    .await;
}

#[tokio::test]
async fn tags_and_addresses() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        tags::upsert(&mut tx, "p", "cph-server", "s1", "env", "dev")
            .await
            .unwrap();
        tags::upsert(&mut tx, "p", "cph-server", "s1", "env", "prod")
            .await
            .unwrap();
        tags::upsert(&mut tx, "p", "cph-server", "s2", "team", "a")
            .await
            .unwrap();
        network::allocate_ips(
            &mut tx,
            "sub",
            "p",
            &[("10.0.0.2".into(), "server", "s1".into())],
            1,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        assert_eq!(
            tags::of_resource(&mut c, "cph-server", "s1").await.unwrap(),
            vec![("env".into(), "prod".into())]
        );
        assert_eq!(
            tags::of_project(&mut c, "p", "cph-server")
                .await
                .unwrap()
                .len(),
            2
        );
        drop(c);
        let mut tx = store.write().await.unwrap();
        // An address is allocated at most once per subnet.
        let e = network::allocate_ips(
            &mut tx,
            "sub",
            "p",
            &[("10.0.0.2".into(), "phone", "x".into())],
            1,
        )
        .await
        .unwrap_err();
        assert!(e.is_unique_violation());
        drop(tx);
        let mut tx = store.write().await.unwrap();
        assert!(
            !tags::delete(&mut tx, "cph-server", "s1", "env", Some("dev"))
                .await
                .unwrap()
        );
        assert!(
            tags::delete(&mut tx, "cph-server", "s1", "env", Some("prod"))
                .await
                .unwrap()
        );
        network::release_ips(&mut tx, &["s1".into()]).await.unwrap();
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        assert_eq!(
            tags::count_of_resource(&mut c, "cph-server", "s1")
                .await
                .unwrap(),
            0
        );
        assert!(
            network::allocated_ips(&mut c, "sub")
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn orphaned_transitional_phones_settle() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        servers::insert(&mut tx, &server("p", "s", 1))
            .await
            .unwrap();
        let mut a = phone("p", "s", "pa", 0, 1);
        a.status = 4; // restarting, with a pending job: stays
        let mut b = phone("p", "s", "pb", 1, 1);
        b.status = 7; // stopping, no job: settled
        phones::insert_many(&mut tx, &[a, b]).await.unwrap();
        jobs::insert(&mut tx, &[job("p", "r", "j", "phone:pa")], 1)
            .await
            .unwrap();
        assert_eq!(phones::settle_orphans(&mut tx, 9).await.unwrap(), 1);
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        assert_eq!(
            phones::get_any(&mut c, "pa").await.unwrap().unwrap().status,
            4
        );
        assert_eq!(
            phones::get_any(&mut c, "pb").await.unwrap().unwrap().status,
            -7
        );
    })
    .await;
}

/// The data version once it is trustworthy (on PostgreSQL, once the commit listener is up).
async fn settled_version(store: &Store) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(v) = store.data_version() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the data version never settled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn data_version_moves_with_every_commit() {
    both(|store| async move {
        let before = settled_version(&store).await;
        let mut tx = store.write().await.unwrap();
        servers::insert(&mut tx, &server("p", "dv", 1))
            .await
            .unwrap();
        // Not committed yet: the version has not moved (on PostgreSQL, notifications of
        // earlier commits, such as the migrations', may still arrive and move it).
        if store.backend() == Backend::Sqlite {
            assert_eq!(store.data_version(), Some(before));
        }
        tx.commit().await.unwrap();
        // This process's own commit counts as soon as it returns.
        let after = store.data_version().expect("a version after the commit");
        assert_ne!(before, after);
        // A rolled-back transaction changes nothing (on PostgreSQL the commit's own
        // notification may still arrive and advance it once more; that is harmless).
        let tx = store.write().await.unwrap();
        drop(tx);
        if store.backend() == Backend::Sqlite {
            assert_eq!(store.data_version(), Some(after));
        }
    })
    .await;
}

#[tokio::test]
async fn data_version_sees_commits_of_another_process() {
    both(|store| async move {
        // Another replica on PostgreSQL, `cph admin` beside the server on SQLite.
        let replica = store.reopen().await.unwrap();
        let seen = settled_version(&store).await;
        settled_version(&replica).await;
        let mut tx = replica.write().await.unwrap();
        servers::insert(&mut tx, &server("p", "other-replica", 1))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // The other store's commit reaches this one (a notification on PostgreSQL, a poll of
        // `PRAGMA data_version` on SQLite).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(v) = store.data_version()
                && v != seen
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "another process's commit never moved the data version"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        replica.close().await;
        // A closed store's listener is gone: its version is no longer trusted.
        assert_eq!(replica.data_version(), None);
    })
    .await;
}
