//! Bandwidths: ShowBandwidthDetail and UpdateBandwidth.
//!
//! A purchase creates one dedicated bandwidth per server (`band_width_share_type` 0) or
//! references a shared one (1). Shared bandwidths are bought outside the CPH API (on Huawei
//! Cloud through the VPC service); here an operator creates them with `cph admin bandwidth
//! create`. Only a shared bandwidth can be resized (`CPS.0160`), in the documented steps
//! (`CPS.0036`); an unknown id is `CPS.0115`.

use crate::network::bandwidth_size_ok;
use crate::validate::{is_valid_id, pagination};
use crate::{Caller, Result, Service, ServiceError};
use cph_store::network::Bandwidth;

/// `band_width_share_type` of a shared ("whole") bandwidth.
pub const SHARED: i64 = 1;

impl Service {
    /// ShowBandwidthDetail: the project's bandwidths, newest first.
    pub async fn list_bandwidths(
        &self,
        caller: &Caller,
        offset: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Vec<Bandwidth>> {
        let (offset, limit) = pagination(offset, limit, 100)?;
        let mut c = self.store().read().await?;
        Ok(cph_store::network::list_bandwidths(&mut c, &caller.project_id, offset, limit).await?)
    }

    /// UpdateBandwidth: a shared bandwidth takes a new size.
    pub async fn update_bandwidth(
        &self,
        caller: &Caller,
        band_width_id: &str,
        size: Option<i64>,
    ) -> Result<()> {
        let size = size.ok_or_else(|| {
            ServiceError::cps_msg("CPS.0036", "Parameter: band_width_size is missing.")
        })?;
        if !bandwidth_size_ok(size) {
            return Err(ServiceError::cps_msg(
                "CPS.0036",
                format!(
                    "Parameter: band_width_size {size} is invalid: up to 300 Mbit/s in steps of 1, \
                     up to 1000 in steps of 50, above in steps of 500."
                ),
            ));
        }
        if !is_valid_id(band_width_id, 64) {
            return Err(ServiceError::cps("CPS.0115"));
        }
        let mut tx = self.store().write().await?;
        let b = cph_store::network::get_bandwidth(&mut tx, &caller.project_id, band_width_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0115"))?;
        if b.share_type != SHARED {
            return Err(ServiceError::cps("CPS.0160"));
        }
        cph_store::network::set_bandwidth_size(&mut tx, &b.band_width_id, size, self.now_ms())
            .await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }

    /// `cph admin bandwidth create`: a shared bandwidth in a project, for purchases to reference.
    pub async fn admin_create_shared_bandwidth(
        &self,
        project_id: &str,
        name: &str,
        size: i64,
        charge_mode: i64,
    ) -> Result<Bandwidth> {
        if !bandwidth_size_ok(size) {
            return Err(ServiceError::cps("CPS.0036"));
        }
        if charge_mode != 0 && charge_mode != 1 {
            return Err(ServiceError::cps("CPS.0035"));
        }
        if !crate::validate::is_valid_name(name, 64) {
            return Err(ServiceError::cps("CPS.0138"));
        }
        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        if cph_store::iam::project_by_id(&mut tx, project_id)
            .await?
            .is_none()
        {
            return Err(ServiceError::cps("CPS.0046"));
        }
        let b = self
            .create_bandwidth(
                &mut tx,
                project_id,
                crate::network::BandwidthSpec {
                    name,
                    size,
                    charge_mode,
                    share_type: SHARED,
                },
                now,
            )
            .await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(b)
    }
}
