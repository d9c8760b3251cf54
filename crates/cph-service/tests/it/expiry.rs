//! Charging periods: servers past their period freeze, or renew when set to.

use crate::{DAY_MS, World};
use chrono::Duration;
use cph_service::lifecycle::ExpiryReport;
use cph_service::phones::PhoneItem;

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_server_freezes_with_its_phones() {
    let w = World::new().await;
    let id = w.buy_running(2, 1, false).await;
    let bought = w.server(&id).await;
    assert_eq!(bought.expires_at - bought.created_at, 30 * DAY_MS);

    // Within the period nothing happens.
    w.clock.advance(Duration::days(29));
    assert_eq!(
        w.service.expire_once().await.unwrap(),
        ExpiryReport::default()
    );
    assert_eq!(w.server(&id).await.status, 5);

    // Past it, server and phones freeze, in one pass.
    w.clock.advance(Duration::days(2));
    let r = w.service.expire_once().await.unwrap();
    assert_eq!(r.renewed, 0);
    assert_eq!(r.frozen_servers, 1);
    assert_eq!(r.frozen_phones, 20);
    let s = w.server(&id).await;
    assert_eq!(s.status, 8);
    assert_eq!(s.expires_at, bought.expires_at);
    let phones = w.phones(&id).await;
    assert_eq!(phones.len(), 20);
    assert!(phones.iter().all(|p| p.status == 6), "{phones:?}");
    // Frozen phones are powered off on their host.
    assert!(
        phones
            .iter()
            .all(|p| w.agent.power(&p.phone_id) == Some(cph_runtime::PhonePower::Stopped)),
        "frozen phones still run on the host"
    );

    // A second pass has nothing left to do.
    assert_eq!(
        w.service.expire_once().await.unwrap(),
        ExpiryReport::default()
    );

    // Frozen resources refuse operations.
    let items = w
        .service
        .restart_servers(&w.caller, "req-frozen-server", Some(vec![id.clone()]))
        .await
        .unwrap();
    assert_eq!(items[0].error.as_ref().unwrap().0, "CPS.0317");
    let items = w
        .service
        .restart_phones(
            &w.caller,
            "req-frozen-phone",
            None,
            Some(vec![PhoneItem {
                phone_id: Some(phones[0].phone_id.clone()),
                ..PhoneItem::default()
            }]),
        )
        .await
        .unwrap();
    assert_eq!(items[0].error.as_ref().unwrap().0, "CPS.0053");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_renewing_server_gets_further_periods() {
    let w = World::new().await;
    let renewing = w.buy_running(2, 1, true).await;
    let lapsing = w.buy_running(2, 2, false).await;
    let start = w.server(&renewing).await.expires_at;

    // One day past the first month: one more month, nothing frozen.
    w.clock.advance(Duration::days(31));
    let r = w.service.expire_once().await.unwrap();
    assert_eq!(
        r,
        ExpiryReport {
            renewed: 1,
            frozen_servers: 0,
            frozen_phones: 0
        }
    );
    let s = w.server(&renewing).await;
    assert_eq!(s.status, 5);
    assert_eq!(s.expires_at, start + 30 * DAY_MS);
    assert!(w.phones(&renewing).await.iter().all(|p| p.status == 2));
    assert_eq!(w.server(&lapsing).await.status, 5);

    // Long past (the control plane was down): renewed by whole periods up to past now; the
    // two-month server without renewal freezes.
    w.clock.advance(Duration::days(100));
    let r = w.service.expire_once().await.unwrap();
    assert_eq!(r.renewed, 1);
    assert_eq!(r.frozen_servers, 1);
    let now = start - 30 * DAY_MS + 131 * DAY_MS;
    let s = w.server(&renewing).await;
    assert_eq!(s.status, 5);
    assert!(s.expires_at > now, "{} <= {now}", s.expires_at);
    assert!(s.expires_at <= now + 30 * DAY_MS);
    assert_eq!((s.expires_at - start) % (30 * DAY_MS), 0);
    assert_eq!(w.server(&lapsing).await.status, 8);
    assert!(w.phones(&lapsing).await.iter().all(|p| p.status == 6));
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_being_created_is_left_for_a_later_pass() {
    let w = World::new().await;
    let p = w
        .service
        .buy_servers(&w.caller, "req-unfinished", &w.purchase(2, 1, false))
        .await
        .unwrap();
    let id = p.server_ids[0].clone();
    // The creation job has not run: the server is still being created.
    w.clock.advance(Duration::days(45));
    assert_eq!(
        w.service.expire_once().await.unwrap(),
        ExpiryReport::default()
    );
    assert_eq!(w.server(&id).await.status, 1);
    // Once created, the next pass freezes it.
    w.run_jobs_until(|s| s.status == 5).await;
    let r = w.service.expire_once().await.unwrap();
    assert_eq!(r.frozen_servers, 1);
    assert_eq!(w.server(&id).await.status, 8);
    w.finish().await;
}
