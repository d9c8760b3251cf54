//! Server changes: the store is rewritten at acceptance and the job finishes the work, so no
//! phone stays in a transitional status across a crash.

use crate::{IMAGE, PHONE_MODEL, SERVER_MODEL, World};
use cph_runtime::{HostAgent, PhonePower};
use cph_service::ServiceError;
use cph_service::lifecycle::{ChangeServer, ChangeServerModel};
use cph_service::phones::PhoneItem;
use std::collections::HashSet;

/// Another image of the phone model's label.
const OTHER_IMAGE: &str = "7a9da264b83837967730db9283620a2c";

fn code(e: ServiceError) -> String {
    e.code_and_message().0
}

fn change_body(w: &World, image: &str) -> ChangeServer {
    let mut body = w.purchase(2, 1, false);
    body.image_id = Some(image.into());
    ChangeServer {
        body,
        property: Some(r#"{"ro.product.manufacturer":"CphTest"}"#.into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_survives_a_crash_and_recreates_the_phones() {
    let w = World::new().await;
    let id = w.buy_running(2, 1, false).await;
    let old: HashSet<String> = w
        .phones(&id)
        .await
        .into_iter()
        .map(|p| p.phone_id)
        .collect();
    assert_eq!(old.len(), 20);

    // A restart queued before the change is stopped by it.
    let one = old.iter().next().unwrap().clone();
    let queued = w
        .service
        .restart_phones(
            &w.caller,
            "req-restart",
            None,
            Some(vec![PhoneItem {
                phone_id: Some(one.clone()),
                ..PhoneItem::default()
            }]),
        )
        .await
        .unwrap();
    let restart_job = queued[0].job_id.clone().unwrap();

    let accepted = w
        .service
        .change_server(&w.caller, "req-change", &id, &change_body(&w, OTHER_IMAGE))
        .await
        .unwrap();
    let stopped = w.service.show_job(&w.caller, &restart_job).await.unwrap();
    assert_eq!(stopped.status, -1);
    assert_eq!(stopped.error_code.as_deref(), Some("CPS.1105"));

    // Accepted: new phone rows in "creating", the server "creating", the old rows gone.
    let s = w.server(&id).await;
    assert_eq!(s.status, 1);
    assert_eq!(s.image_id, OTHER_IMAGE);
    let fresh = w.phones(&id).await;
    assert_eq!(fresh.len(), 20);
    assert!(
        fresh
            .iter()
            .all(|p| p.status == 1 && !old.contains(&p.phone_id))
    );
    assert!(fresh.iter().all(|p| p.image_id == OTHER_IMAGE));

    // A crash before the job ran: recovery leaves the phones to the unfinished job.
    w.service.recover().await.unwrap();
    assert!(w.phones(&id).await.iter().all(|p| p.status == 1));

    // Further changes and restarts of the server wait for this one.
    let e = w
        .service
        .change_server(&w.caller, "req-again", &id, &change_body(&w, IMAGE))
        .await
        .unwrap_err();
    assert_eq!(code(e), "CPS.1102");
    let items = w
        .service
        .restart_servers(&w.caller, "req-restart-server", Some(vec![id.clone()]))
        .await
        .unwrap();
    assert_eq!(items[0].error.as_ref().unwrap().0, "CPS.0099");

    // The job runs: the host drops the old phones and runs the new ones on the new image.
    w.run_jobs_until(|s| s.status == 5).await;
    let job = w
        .service
        .show_job(&w.caller, &accepted.job_id)
        .await
        .unwrap();
    assert_eq!(job.status, 2, "{job:?}");
    let phones = w.phones(&id).await;
    assert!(phones.iter().all(|p| p.status == 2));
    assert!(
        phones
            .iter()
            .all(|p| p.properties.contains("CphTest") && p.imei.len() == 15)
    );
    let inventory = w.agent.inventory().await;
    let on_host: HashSet<&str> = inventory
        .phones
        .iter()
        .map(|p| p.phone_id.as_str())
        .collect();
    assert!(old.iter().all(|o| !on_host.contains(o.as_str())));
    for p in &phones {
        assert_eq!(w.agent.power(&p.phone_id), Some(PhonePower::Running));
        let st = inventory
            .phones
            .iter()
            .find(|x| x.phone_id == p.phone_id)
            .unwrap();
        assert_eq!(st.image_id, OTHER_IMAGE);
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_servers_of_a_period_order_change() {
    let w = World::new().await;
    let id = w.buy_running(2, 1, false).await;
    // A server whose order is not a paid period order (here: recorded pay-per-use).
    let mut s = w.server(&id).await;
    s.server_id = cph_domain::ids::hex_id();
    s.charging_mode = 1;
    s.order_id = "not-an-order".into();
    {
        let mut tx = w.service.store().write().await.unwrap();
        cph_store::servers::insert(&mut tx, &s).await.unwrap();
        tx.commit().await.unwrap();
    }
    let e = w
        .service
        .change_server(&w.caller, "req-1103", &s.server_id, &change_body(&w, IMAGE))
        .await
        .unwrap_err();
    assert_eq!(code(e), "CPS.1103");
    let e = w
        .service
        .change_server_model(
            &w.caller,
            "req-0245",
            &ChangeServerModel {
                server_id: Some(s.server_id.clone()),
                server_model_name: Some("physical.kg1.4xlarge.cg".into()),
                phone_model_name: Some("kg1.cg.c40.d30SSD.e1v1".into()),
                is_auto_pay: Some(1),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), "CPS.0245");
    // The real server: another phone count is refused (20 phones vs 40).
    let e = w
        .service
        .change_server_model(
            &w.caller,
            "req-0257",
            &ChangeServerModel {
                server_id: Some(id.clone()),
                server_model_name: Some("physical.kg1.4xlarge.cg".into()),
                phone_model_name: Some("kg1.cg.c40.d30SSD.e1v1".into()),
                is_auto_pay: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), "CPS.0257");
    let s = w.server(&id).await;
    assert_eq!(
        (s.server_model_name.as_str(), s.phone_model_name.as_str()),
        (SERVER_MODEL, PHONE_MODEL)
    );
    w.finish().await;
}
