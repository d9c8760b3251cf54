//! Phones hosted in a benchmark's own process, made to look as the control plane makes them.

use anyhow::Context;
use cph_runtime::virtual_host::{Durations, VirtualHostAgent};
use cph_runtime::{AgentCommand, CommandEnvelope, CommandResult, HostAgent, PhoneSpec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Phone model and image of every phone (a catalog entry, so the phones look real).
pub const PHONE_MODEL: &str = "rx1.cp.c60.d10.e1v1";

/// Boot, stop and reset take no simulated time: the benchmarks measure the phones, not waits.
pub fn instant_durations() -> Durations {
    Durations {
        boot: Duration::ZERO,
        stop: Duration::ZERO,
        reset: Duration::ZERO,
    }
}

/// A phone of the catalog's [`PHONE_MODEL`] in `slot` of its server, looking as the control
/// plane would make it look (720x1280 at 320 dpi where the catalog does not say).
pub fn phone_spec(catalog: &cph_catalog::Catalog, phone_id: &str, slot: usize) -> PhoneSpec {
    let model = catalog.phone_model(PHONE_MODEL);
    let image = model.and_then(|m| {
        catalog
            .phone_images
            .iter()
            .find(|i| i.image_label == m.image_label)
    });
    let (width, height) = model
        .and_then(|m| {
            let (w, h) = m.resolution.split_once('x')?;
            Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
        })
        .unwrap_or((720, 1280));
    PhoneSpec {
        phone_id: phone_id.to_string(),
        server_id: "bench-server".into(),
        phone_model_name: PHONE_MODEL.into(),
        image_id: image.map(|i| i.image_id.clone()).unwrap_or_default(),
        imei: cph_service::servers::new_imei(),
        phone_ip: cph_service::servers::phone_ip(slot as i64),
        properties: BTreeMap::new(),
        profile: cph_runtime::PhoneProfile {
            product_name: "cloudphone".into(),
            model: PHONE_MODEL.into(),
            device: "cloudphone".into(),
            brand: "cph".into(),
            manufacturer: "cph".into(),
            width,
            height,
            density: model.and_then(|m| u32::try_from(m.dpi).ok()).unwrap_or(320),
            android_version: image.map(|i| i.android_version.clone()).unwrap_or_default(),
            sdk: image.map(|i| i.sdk).unwrap_or(0),
            image_name: image.map(|i| i.image_name.clone()).unwrap_or_default(),
            os_name: image.map(|i| i.os_name.clone()).unwrap_or_default(),
            default_properties: BTreeMap::new(),
        },
        adb_keys: Vec::new(),
        ports: Vec::new(),
    }
}

/// Creates a running phone; fails unless the agent reports success and its endpoint is up.
pub async fn create_phone(agent: &VirtualHostAgent, spec: PhoneSpec) -> anyhow::Result<SocketAddr> {
    let id = spec.phone_id.clone();
    let r = agent
        .execute(CommandEnvelope {
            command_id: format!("create-{id}"),
            command: AgentCommand::CreatePhone { spec },
        })
        .await;
    if let CommandResult::Failed { code, message } = r {
        anyhow::bail!("creating phone {id} failed: {code} {message}");
    }
    agent
        .adb_endpoint(&id)
        .with_context(|| format!("phone {id} runs without an ADB endpoint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_the_catalog_model() {
        let catalog = cph_catalog::Catalog::builtin();
        let s = phone_spec(&catalog, "p1", 3);
        assert_eq!(s.phone_id, "p1");
        assert_eq!(s.phone_model_name, PHONE_MODEL);
        assert_eq!(s.profile.model, PHONE_MODEL);
        assert_eq!((s.profile.width, s.profile.height), (720, 1280));
        assert_eq!(s.profile.density, 320);
        assert!(!s.image_id.is_empty());
        assert!(s.profile.sdk > 0);
        assert_eq!(s.phone_ip, cph_service::servers::phone_ip(3));
    }
}
