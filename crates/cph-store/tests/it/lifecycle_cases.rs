//! Server lifecycle SQL: orders, unfinished jobs by lock key and kind, failing queued jobs,
//! expiry selection, renewal and freezing.

use super::*;
use cph_store::{jobs, lifecycle, network, phones, servers};

fn order(id: &str, period_num: i64) -> network::Order {
    network::Order {
        order_id: id.into(),
        product_id: format!("P-{id}"),
        project_id: "p1".into(),
        kind: "server".into(),
        charging_mode: 0,
        period_type: 2,
        period_num,
        auto_pay: true,
        auto_renew: false,
        detail: "{}".into(),
        created_at: 1,
    }
}

#[tokio::test]
async fn orders_and_unfinished_jobs() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        network::insert_order(&mut tx, &order("o1", 1))
            .await
            .unwrap();
        network::insert_order(&mut tx, &order("o2", 3))
            .await
            .unwrap();
        let mut change = job("p1", "r1", "j-change", "server:s1");
        change.kind = "server.change_model".into();
        change.payload = r#"{"server_model_name":"m2"}"#.into();
        jobs::insert(
            &mut tx,
            &[
                job("p1", "r1", "j-a", "phone:a"),
                job("p1", "r1", "j-b", "phone:b"),
                change,
                job("p1", "r1", "j-other", "phone:z"),
            ],
            10,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let mut c = store.read().await.unwrap();
        assert_eq!(
            lifecycle::get_order(&mut c, "o2").await.unwrap().unwrap(),
            order("o2", 3)
        );
        assert!(
            lifecycle::get_order(&mut c, "nope")
                .await
                .unwrap()
                .is_none()
        );
        let mut got = lifecycle::get_orders(&mut c, &["o1".into(), "o2".into(), "x".into()])
            .await
            .unwrap();
        got.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        assert_eq!(got, vec![order("o1", 1), order("o2", 3)]);
        let keys: Vec<String> = ["phone:a", "phone:b", "server:s1"].map(String::from).into();
        let pending = lifecycle::unfinished_jobs_on(&mut c, &keys).await.unwrap();
        assert_eq!(
            pending
                .iter()
                .map(|j| j.job_id.as_str())
                .collect::<Vec<_>>(),
            ["j-a", "j-b", "j-change"]
        );
        let changes = lifecycle::unfinished_jobs_of_kind(&mut c, "server.change_model")
            .await
            .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].payload, r#"{"server_model_name":"m2"}"#);
        drop(c);

        // Only queued jobs are ended; a claimed one is left alone.
        let mut tx = store.write().await.unwrap();
        let claimed = jobs::claim(&mut tx, store.backend(), "w", 20, 1000, 1)
            .await
            .unwrap();
        assert_eq!(claimed[0].job_id, "j-a");
        let n = lifecycle::fail_queued(
            &mut tx,
            &["j-a".into(), "j-b".into()],
            "CPS.1105",
            "Stop restarting during server changing.",
            30,
        )
        .await
        .unwrap();
        assert_eq!(n, 1);
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        let b = jobs::get(&mut c, "p1", "j-b").await.unwrap().unwrap();
        assert_eq!((b.state.as_str(), b.status), ("done", -1));
        assert_eq!(b.error_code.as_deref(), Some("CPS.1105"));
        assert_eq!(b.end_time, Some(30));
        let a = jobs::get(&mut c, "p1", "j-a").await.unwrap().unwrap();
        assert_eq!(a.state, "running");
        let pending = lifecycle::unfinished_jobs_on(&mut c, &keys).await.unwrap();
        assert_eq!(pending.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn expiry_selects_renews_and_freezes() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        // expires_at = created_at + 1000
        servers::insert(&mut tx, &server("p1", "due", 0))
            .await
            .unwrap();
        servers::insert(&mut tx, &server("p1", "later", 5000))
            .await
            .unwrap();
        let mut creating = server("p1", "creating", 0);
        creating.status = 1;
        servers::insert(&mut tx, &creating).await.unwrap();
        let mut frozen = server("p1", "frozen", 0);
        frozen.status = 8;
        servers::insert(&mut tx, &frozen).await.unwrap();
        servers::insert(&mut tx, &server("p1", "busy", 0))
            .await
            .unwrap();
        jobs::insert(&mut tx, &[job("p1", "r", "j-busy", "server:busy")], 1)
            .await
            .unwrap();
        phones::insert_many(
            &mut tx,
            &[
                phone("p1", "due", "ph1", 0, 0),
                phone("p1", "due", "ph2", 1, 0),
                phone("p1", "later", "ph3", 0, 0),
            ],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.write().await.unwrap();
        let due = lifecycle::due_for_expiry(&mut tx, 2000, 100).await.unwrap();
        assert_eq!(
            due.iter().map(|s| s.server_id.as_str()).collect::<Vec<_>>(),
            ["due"]
        );
        assert_eq!(
            lifecycle::due_for_expiry(&mut tx, 999, 100)
                .await
                .unwrap()
                .len(),
            0
        );
        // The boundary counts as ended.
        assert_eq!(
            lifecycle::due_for_expiry(&mut tx, 1000, 100)
                .await
                .unwrap()
                .len(),
            1
        );

        lifecycle::set_expiry(&mut tx, "due", 9000, 2000)
            .await
            .unwrap();
        assert!(
            lifecycle::due_for_expiry(&mut tx, 2000, 100)
                .await
                .unwrap()
                .is_empty()
        );
        let (ns, np) = lifecycle::freeze(&mut tx, &["due".into()], 2100)
            .await
            .unwrap();
        assert_eq!((ns, np), (1, 2));
        // Freezing twice changes nothing.
        assert_eq!(
            lifecycle::freeze(&mut tx, &["due".into()], 2200)
                .await
                .unwrap(),
            (0, 0)
        );
        tx.commit().await.unwrap();
        let mut c = store.read().await.unwrap();
        let s = servers::get(&mut c, "p1", "due").await.unwrap().unwrap();
        assert_eq!((s.status, s.expires_at, s.updated_at), (8, 9000, 2100));
        let ps = phones::of_server(&mut c, "due").await.unwrap();
        assert!(ps.iter().all(|p| p.status == 6));
        assert_eq!(
            phones::of_server(&mut c, "later").await.unwrap()[0].status,
            2
        );
    })
    .await;
}

#[tokio::test]
async fn change_writes_network_bandwidth_eips_and_phone_models() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        servers::insert(&mut tx, &server("p1", "s1", 0))
            .await
            .unwrap();
        phones::insert_many(&mut tx, &[phone("p1", "s1", "ph1", 0, 0)])
            .await
            .unwrap();
        network::insert_bandwidth(
            &mut tx,
            &network::Bandwidth {
                band_width_id: "bw".into(),
                project_id: "p1".into(),
                name: "bw".into(),
                size: 10,
                charge_mode: 0,
                share_type: 0,
                created_at: 0,
                updated_at: 0,
            },
        )
        .await
        .unwrap();
        network::insert_eip(
            &mut tx,
            &network::Eip {
                eip_id: "e1".into(),
                project_id: "p1".into(),
                public_ip: "127.1.0.9".into(),
                eip_type: "5_bgp".into(),
                server_id: "s1".into(),
                band_width_id: "bw".into(),
                created_at: 0,
            },
        )
        .await
        .unwrap();
        lifecycle::set_server_network(&mut tx, "s1", "vpc2", "subnet2", "10.1.0.5", 50)
            .await
            .unwrap();
        lifecycle::set_enterprise_project(&mut tx, "s1", "ep-1", 50)
            .await
            .unwrap();
        lifecycle::set_bandwidth(&mut tx, "bw", 250, 1, 50)
            .await
            .unwrap();
        lifecycle::unbind_eips(&mut tx, &["e1".into()])
            .await
            .unwrap();
        lifecycle::set_phones_model(&mut tx, "s1", "pm2", "img2", 50)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut c = store.read().await.unwrap();
        let s = servers::get(&mut c, "p1", "s1").await.unwrap().unwrap();
        assert_eq!(
            (
                s.vpc_id.as_str(),
                s.subnet_id.as_str(),
                s.server_ip.as_str()
            ),
            ("vpc2", "subnet2", "10.1.0.5")
        );
        assert_eq!(s.enterprise_project_id, "ep-1");
        let b = network::get_bandwidth(&mut c, "p1", "bw")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((b.size, b.charge_mode), (250, 1));
        let e = network::get_eip(&mut c, "p1", "e1").await.unwrap().unwrap();
        assert_eq!((e.server_id.as_str(), e.band_width_id.as_str()), ("", ""));
        assert!(
            network::eips_of_server(&mut c, "s1")
                .await
                .unwrap()
                .is_empty()
        );
        let p = &phones::of_server(&mut c, "s1").await.unwrap()[0];
        assert_eq!(
            (p.phone_model_name.as_str(), p.image_id.as_str()),
            ("pm2", "img2")
        );
    })
    .await;
}

#[tokio::test]
async fn server_lock_serialises_writers_on_postgres() {
    let f = Fresh::new(Backend::Postgres).await;
    let store = f.store.clone();
    let mut tx = store.write().await.unwrap();
    servers::insert(&mut tx, &server("p1", "s1", 0))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut first = store.write().await.unwrap();
    lifecycle::lock_server(&mut first, "s1").await.unwrap();
    let mut second = store.write().await.unwrap();
    let waited = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        lifecycle::lock_server(&mut second, "s1"),
    )
    .await;
    assert!(waited.is_err(), "the second writer must wait for the first");
    drop(second);
    first.commit().await.unwrap();
    let mut third = store.write().await.unwrap();
    lifecycle::lock_server(&mut third, "s1").await.unwrap();
    third.commit().await.unwrap();
    f.finish().await;
}
